"""ReplayFunction (scheduled, and on the intake alarm's state changes): recovers outages with X's replay."""

from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from xrelay.config import Settings
from xrelay.observability import M, count, count_run, make_logger, make_metrics, make_tracer
from xrelay.recovery.replay import metric_values, run_for_stack
from xrelay.storage.lease import exclusive

SETTINGS = Settings.from_env()
logger = make_logger("replay")
metrics = make_metrics("replay")
tracer = make_tracer("replay")
# The core logs through the standard "xrelay.replay" logger: give it the same JSON output.
copy_config_to_registered_loggers(source_logger=logger, include={"xrelay.replay"})


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def _handle(event, context):
    # One run at a time (X runs one replay job per webhook; two runs could both start one). A run
    # that finds the lease taken still records its alarm change, then leaves the jobs to the holder.
    seconds = context.get_remaining_time_in_millis() / 1000
    with exclusive(SETTINGS.state_table, "replay", context.aws_request_id, seconds) as held:
        # a ledger failure raises: Lambda retries the alarm change
        run = run_for_stack(SETTINGS, event, record_only=not held)
    if run.report is not None:
        count_run(metrics, metric_values(run.report), run.report.errors)
    count(metrics, M.REPLAY_FAILED, 1 if run.error else 0)
    summary = run.summary()
    if run.error:
        logger.error("replay could not reach X: %s", run.error, extra={"summary": summary})
    elif run.idle:
        logger.info("replay had nothing to do: %s", run.idle)
    else:
        logger.info("replay run finished", extra={"summary": summary})
    return summary


handler = tracer.capture_lambda_handler(_handle) if tracer else _handle

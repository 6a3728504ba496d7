"""ReconcileFunction (scheduled): keeps X's webhook and subscriptions matching the declared state."""

from datetime import UTC, datetime

from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from xrelay.config import Settings
from xrelay.observability import M, count, count_run, make_logger, make_metrics, make_tracer
from xrelay.reconcile import metric_values, run_for_stack
from xrelay.store import StateStore

SETTINGS = Settings.from_env()
logger = make_logger("reconcile")
metrics = make_metrics("reconcile")
tracer = make_tracer("reconcile")
# The core logs through the standard "xrelay.reconcile" logger: give it the same JSON output.
copy_config_to_registered_loggers(source_logger=logger, include={"xrelay.reconcile"})


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def _handle(event, context):
    run = run_for_stack(SETTINGS, seconds_left=lambda: context.get_remaining_time_in_millis() / 1000)
    if run.report is not None:
        count_run(metrics, metric_values(run.report), run.report.errors)
    count(metrics, M.RECONCILE_FAILED, 1 if run.error else 0)
    summary = run.report.summary() if run.report else {}
    if run.error:
        logger.error("reconcile did not run: %s", run.error, extra={"summary": summary})
    elif run.idle:
        logger.info("reconcile had nothing to do: %s", run.idle)
    else:
        logger.info("reconcile finished", extra={"summary": summary})
    outcome = {"ok": run.error is None, "error": run.error, "idle": run.idle, **summary}
    # What `xrelay status` judges the reconcile by, without asking X.
    StateStore(SETTINGS.state_table).record_reconcile_run(datetime.now(UTC), outcome)
    return outcome


handler = tracer.capture_lambda_handler(_handle) if tracer else _handle

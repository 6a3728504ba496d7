"""ReconcileFunction (scheduled): keeps X's webhook and subscriptions matching the declared state."""

from datetime import UTC, datetime

from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from xrelay.config import Settings
from xrelay.observability import M, count, count_run, make_logger, make_metrics, make_tracer
from xrelay.storage.lease import exclusive
from xrelay.storage.store import StateStore
from xrelay.subscriptions.reconcile import metric_values, run_for_stack

SETTINGS = Settings.from_env()
logger = make_logger("reconcile")
metrics = make_metrics("reconcile")
tracer = make_tracer("reconcile")
# The core logs through the standard "xrelay.reconcile" logger: give it the same JSON output.
copy_config_to_registered_loggers(source_logger=logger, include={"xrelay.reconcile"})


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def _handle(event, context):
    def seconds_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    # Two overlapping runs would race on X: the one that finds the lease taken does nothing, and
    # leaves the last run's record for `xrelay status` as it is. The next scheduled run is on time.
    with exclusive(SETTINGS.state_table, "reconcile", context.aws_request_id, seconds_left()) as held:
        if not held:
            logger.info("another reconcile run is still running: this one does nothing")
            count(metrics, M.RECONCILE_FAILED, 0)
            return {"ok": True, "error": None, "idle": "another reconcile run is still running"}
        return _reconcile(seconds_left)


def _reconcile(seconds_left):
    run = run_for_stack(SETTINGS, seconds_left=seconds_left)
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

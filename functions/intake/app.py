"""IntakeFunction: receives X's signed event deliveries (POST /webhook)."""

from dataclasses import replace

from xrelay.config import Settings
from xrelay.credentials import load_signing_secrets
from xrelay.observability import compact_lambda_context, make_logger, make_metrics, make_tracer
from xrelay.receiving.apigw import raw_body
from xrelay.receiving.intake import Intake
from xrelay.storage.store import EventStore, StateStore

SETTINGS = Settings.from_env()
logger = make_logger("intake")
metrics = make_metrics("intake")
tracer = make_tracer("intake")

intake = Intake(
    events=EventStore(SETTINGS.events_table, SETTINGS.retention_days, index_users=SETTINGS.index_users),
    state=StateStore(SETTINGS.state_table),
    load_secrets=lambda: load_signing_secrets(SETTINGS.app_secret_arn, SETTINGS.secret_cache_seconds),
    log=logger,
    metrics=metrics,
)


@metrics.log_metrics
@compact_lambda_context(logger, metrics)  # one line per delivery: its EMF document; more at DEBUG
def _handle(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    # Writes stop in time to answer before the function's timeout (what is left is quarantined).
    timed = replace(intake, remaining_ms=context.get_remaining_time_in_millis)
    return timed.handle(raw_body(event), headers).to_proxy()


handler = tracer.capture_lambda_handler(_handle) if tracer else _handle

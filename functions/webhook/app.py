"""WebhookFunction (Endpoint=FunctionUrl): X's CRC (GET /webhook) and deliveries (POST /webhook)
behind one Lambda function URL, in place of CrcFunction and IntakeFunction behind the HTTP API.

GET is as light as CrcFunction (no boto3 or pydantic: X allows about 3 seconds, cold start
included). The intake (boto3, pydantic, the store) is imported on the first POST. Each path logs
and counts under its own service (crc, intake), so the alarms and the dashboard read the metrics
they read with the HTTP API.
"""

from dataclasses import replace

from xrelay.config import Settings
from xrelay.credentials import load_signing_secrets
from xrelay.observability import compact_lambda_context, make_logger, make_metrics, make_tracer
from xrelay.receiving.apigw import raw_body
from xrelay.receiving.function_url import CRC, route
from xrelay.receiving.webhook import answer_crc_event

SETTINGS = Settings.from_env()
crc_logger = make_logger("crc")
crc_metrics = make_metrics("crc")
intake_logger = make_logger("intake")
intake_metrics = make_metrics("intake")
_deliveries = None  # the intake's handler, made by the first POST


def _secrets():
    return load_signing_secrets(SETTINGS.app_secret_arn, SETTINGS.secret_cache_seconds)


@crc_metrics.log_metrics
@crc_logger.inject_lambda_context(clear_state=True)
def _crc(event, context):
    return answer_crc_event(event, _secrets, crc_logger, crc_metrics, SETTINGS.crc_signing_secret)


def _deliveries_handler():
    global _deliveries
    if _deliveries is None:
        from xrelay.receiving.intake import Intake
        from xrelay.storage.store import EventStore, StateStore

        intake = Intake(
            events=EventStore(SETTINGS.events_table, SETTINGS.retention_days, index_users=SETTINGS.index_users),
            state=StateStore(SETTINGS.state_table),
            load_secrets=_secrets,
            log=intake_logger,
            metrics=intake_metrics,
        )

        @intake_metrics.log_metrics
        @compact_lambda_context(intake_logger, intake_metrics)  # one line per delivery: its EMF document
        def handle(event, context):
            headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
            # Writes stop in time to answer before the function's timeout (what is left is quarantined).
            timed = replace(intake, remaining_ms=context.get_remaining_time_in_millis)
            return timed.handle(raw_body(event), headers).to_proxy()

        tracer = make_tracer("intake")
        _deliveries = tracer.capture_lambda_handler(handle) if tracer else handle
    return _deliveries


def handler(event, context):
    routed = route(event)
    if routed == CRC:
        return _crc(event, context)
    if isinstance(routed, str):
        return _deliveries_handler()(event, context)
    return routed.to_proxy()  # not GET or POST /webhook: answered as the HTTP API would

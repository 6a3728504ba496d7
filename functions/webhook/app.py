"""WebhookFunction (Endpoint=FunctionUrl): X's CRC (GET /webhook) and deliveries (POST /webhook)
behind one Lambda function URL, in place of CrcFunction and IntakeFunction behind the HTTP API.

GET is as light as CrcFunction (no boto3 or pydantic: X allows about 3 seconds, cold start
included). The intake (boto3, pydantic, the store) is imported on the first POST. Each path logs
and counts under its own service (crc, intake), so the alarms and the dashboard read the metrics
they read with the HTTP API.
"""

from xrelay.config import Settings
from xrelay.credentials import load_signing_secrets
from xrelay.observability import make_logger, make_metrics
from xrelay.receiving.function_url import CRC, route
from xrelay.receiving.webhook import crc_lambda_handler

SETTINGS = Settings.from_env()
intake_logger = make_logger("intake")
intake_metrics = make_metrics("intake")
_deliveries = None  # the intake's handler, made by the first POST


def _secrets():
    return load_signing_secrets(SETTINGS.app_secret_arn, SETTINGS.secret_cache_seconds)


_crc = crc_lambda_handler(SETTINGS.crc_signing_secret, _secrets, make_logger("crc"), make_metrics("crc"))


def _deliveries_handler():
    global _deliveries
    if _deliveries is None:
        from xrelay.receiving.intake import lambda_handler

        _deliveries = lambda_handler(SETTINGS, _secrets, intake_logger, intake_metrics)
    return _deliveries


def handler(event, context):
    routed = route(event)
    if routed == CRC:
        return _crc(event, context)
    if isinstance(routed, str):
        return _deliveries_handler()(event, context)
    return routed.to_proxy()  # not GET or POST /webhook: answered as the HTTP API would

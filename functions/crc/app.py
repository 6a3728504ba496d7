"""CrcFunction: answers X's Challenge-Response Check (GET /webhook?crc_token=...).

Kept deliberately light (no pydantic, no boto3 beyond the Secrets Manager read done through
Powertools parameters): X allows about 3 seconds, cold start included.
"""

from xrelay.config import Settings
from xrelay.credentials import load_signing_secrets
from xrelay.observability import make_logger, make_metrics
from xrelay.receiving.webhook import crc_lambda_handler

SETTINGS = Settings.from_env()
logger = make_logger("crc")
metrics = make_metrics("crc")

handler = crc_lambda_handler(
    SETTINGS.crc_signing_secret, lambda: load_signing_secrets(SETTINGS.app_secret_arn, SETTINGS.secret_cache_seconds),
    logger, metrics)

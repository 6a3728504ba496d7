"""IntakeFunction: receives X's signed event deliveries (POST /webhook)."""

from xrelay.config import Settings
from xrelay.credentials import load_signing_secrets
from xrelay.observability import make_logger, make_metrics
from xrelay.receiving.intake import lambda_handler

SETTINGS = Settings.from_env()
logger = make_logger("intake")
metrics = make_metrics("intake")

handler = lambda_handler(
    SETTINGS, lambda: load_signing_secrets(SETTINGS.app_secret_arn, SETTINGS.secret_cache_seconds), logger, metrics)

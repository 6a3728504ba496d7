"""CrcFunction: answers X's Challenge-Response Check (GET /webhook?crc_token=...).

Kept deliberately light (no pydantic, no boto3 beyond the Secrets Manager read done through
Powertools parameters): X allows about 3 seconds, cold start included.
"""

from xrelay.config import Settings
from xrelay.credentials import load_signing_secrets
from xrelay.observability import M, count, make_logger, make_metrics
from xrelay.receiving.apigw import query
from xrelay.receiving.webhook import answer_crc

SETTINGS = Settings.from_env()
logger = make_logger("crc")
metrics = make_metrics("crc")


def _secrets():
    return load_signing_secrets(SETTINGS.app_secret_arn, SETTINGS.secret_cache_seconds)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event, context):
    response = answer_crc(query(event, "crc_token"), _secrets, logger, SETTINGS.crc_signing_secret)
    # 4xx: a token we would not sign; 5xx: we could not read the secret (X's CRC then fails).
    count(metrics, M.CRC_ANSWERED if response.status == 200 else M.CRC_REFUSED if response.status < 500
          else M.SECRET_FAILURES)
    return response.to_proxy()

"""PublisherFunction: the event store's stream to the SQS events queue (the outbox relay)."""

from xrelay.aws import client
from xrelay.config import Settings
from xrelay.observability import M, count, make_logger, make_metrics, make_tracer
from xrelay.publisher import publish

SETTINGS = Settings.from_env()
logger = make_logger("publisher")
metrics = make_metrics("publisher")
tracer = make_tracer("publisher")
sqs = client("sqs")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def _handle(event, context):
    result = publish(event, sqs, SETTINGS.events_queue_url, SETTINGS.events_table, logger)
    count(metrics, M.EVENTS_PUBLISHED, result.published)
    if result.pointers:
        count(metrics, M.OVERSIZE_POINTERS, result.pointers)
    if result.failed_sequences:
        count(metrics, M.FANOUT_FAILURES, len(result.failed_sequences))
        logger.warning("fan-out incomplete; Lambda will retry from the first failed record",
                       extra={"failed": len(result.failed_sequences)})
    return result.lambda_response()


handler = tracer.capture_lambda_handler(_handle) if tracer else _handle

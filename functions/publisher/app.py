"""PublisherFunction: the event store's stream to the SQS events queue and/or an EventBridge bus
(the outbox relay), with deletions and revocations applied to the store first (xrelay.publishing.compliance)."""

import os

from xrelay.aws import client
from xrelay.config import Settings
from xrelay.observability import M, compact_lambda_context, count, make_logger, make_metrics, make_tracer
from xrelay.publishing.bus import BusMode, BusTarget
from xrelay.publishing.compliance import Compliance
from xrelay.publishing.publisher import publish
from xrelay.storage.store import EventStore

SETTINGS = Settings.from_env()
# The PurgeOnRevoke Parameter: redact a user's private events when they revoke the app.
PURGE_ON_REVOKE = os.environ.get("PURGE_ON_REVOKE", "false").lower() == "true"
# Where a record that can never be published is set aside (xrelay.publishing.publisher.FailureQueue).
FAILURES_URL = os.environ.get("PUBLISH_FAILURES_QUEUE_URL") or None
logger = make_logger("publisher")
metrics = make_metrics("publisher")
tracer = make_tracer("publisher")
# The EventBusMode and EventBusName Parameters: the queue, the bus, or both (xrelay.publishing.bus).
BUS_MODE = BusMode(os.environ.get("EVENT_BUS_MODE") or "off")
BUS = BusTarget(client("events"), os.environ["EVENT_BUS_NAME"], BUS_MODE) if BUS_MODE.bus else None
sqs = client("sqs")
events = EventStore(SETTINGS.events_table, SETTINGS.retention_days, ddb=client("dynamodb"))


# At INFO an ordinary batch writes its EMF document only; a warning or an error carries the request id,
# not Powertools' whole Lambda context (which comes back at DEBUG).
@metrics.log_metrics
@compact_lambda_context(logger)
def _handle(event, context):
    compliance = Compliance(events, PURGE_ON_REVOKE, logger)
    result = publish(event, sqs, SETTINGS.events_queue_url, compliance, logger, failures_url=FAILURES_URL,
                     bus=BUS)
    count(metrics, M.EVENTS_PUBLISHED, result.published - result.compliance_messages)
    if result.bus_published:
        count(metrics, M.EVENTS_PUBLISHED_TO_BUS, result.bus_published)
    if result.bus_failures:
        count(metrics, M.EVENT_BUS_FAILURES, result.bus_failures)
    if result.bus_retried:  # throttling on the bus shows here before it fails a record
        logger.warning("PutEvents entries retried", extra={"retried": result.bus_retried})
    if result.pointers:
        count(metrics, M.OVERSIZE_POINTERS, result.pointers)
    for name, value in sorted(compliance.counts.items()):
        count(metrics, name, value)
    if result.set_aside:
        count(metrics, M.EVENTS_SET_ASIDE, result.set_aside)
    if result.compliance_messages:
        count(metrics, M.COMPLIANCE_MESSAGES_SENT, result.compliance_messages)
    if result.failed_sequences:
        count(metrics, M.FANOUT_FAILURES, len(result.failed_sequences))
        logger.warning("fan-out incomplete; Lambda will retry from the first failed record",
                       extra={"failed": len(result.failed_sequences)})
    return result.lambda_response()


handler = tracer.capture_lambda_handler(_handle) if tracer else _handle

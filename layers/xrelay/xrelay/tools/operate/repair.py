"""Put stored events back on the queue after the publisher gave up on them.

The publisher's event source mapping retries a failing stream batch 100 times, then sends a
description of the batch (not its records) to the PublishFailuresQueue and moves on: those
events are in the store but not on the queue. This module turns each such description into a
time window and republishes the stored events received in it. Consumers may see some of them
twice (the rest of a batch that partly succeeded): they dedupe on ``event_key`` as always.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from xrelay.events.normalize import parse_time
from xrelay.publishing.publisher import send_records
from xrelay.storage.store import EventStore

# Stream arrival times are approximate and received_at is stamped just before the write: widen.
WINDOW_MARGIN = timedelta(minutes=1)
# A batch being republished stays hidden from other runs this long; if it fails, it is retried after.
RETRY_AFTER_SECONDS = 300


@dataclass(frozen=True)
class FailedBatch:
    receipt_handle: str
    since: datetime
    until: datetime
    size: int


def failed_batch(message: dict[str, Any]) -> FailedBatch | None:
    """The window of a Lambda on-failure record for a DynamoDB stream batch (None if it is not one)."""
    try:
        info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    except (KeyError, TypeError, ValueError):
        return None
    first = parse_time(info.get("approximateArrivalOfFirstRecord"))
    last = parse_time(info.get("approximateArrivalOfLastRecord")) or first
    if first is None:
        return None
    return FailedBatch(message["ReceiptHandle"], first - WINDOW_MARGIN, last + WINDOW_MARGIN,
                       int(info.get("batchSize", 0)))


@dataclass
class RepublishResult:
    found: int
    published: int
    failed: int


def republish(store: EventStore, sqs: Any, queue_url: str, since: datetime, until: datetime,
              log: Any) -> RepublishResult:
    """Send every stored event received in [since, until] to the events queue again."""
    records = sorted(store.received_between(since, until), key=lambda r: (r.received_at, r.event_key))
    keyed = [(r.event_key, r) for r in records]
    result = send_records(keyed, [k for k, _ in keyed], sqs, queue_url, store.table, log)
    return RepublishResult(found=len(records), published=result.published, failed=len(result.failed_sequences))


def republish_failed_batches(store: EventStore, sqs: Any, queue_url: str, failures_url: str,
                             log: Any) -> Iterator[tuple[FailedBatch | None, RepublishResult | None]]:
    """Republish the window of every batch in the publisher's failure queue, one at a time.

    A batch's message is deleted only when all its events went out; otherwise it reappears after
    RETRY_AFTER_SECONDS for the next run. Yields (batch, result) as it goes, and (None, None) for
    a message that is not a stream batch failure (left in the queue for a person to look at, and
    visible again once the run ends: a set-aside note is for `xrelay events set-aside list`).
    """
    left: list[str] = []
    try:
        yield from _republish_batches(store, sqs, queue_url, failures_url, log, left)
    finally:
        for receipt in left:  # hidden only while this run went on, so that it ends
            sqs.change_message_visibility(QueueUrl=failures_url, ReceiptHandle=receipt, VisibilityTimeout=0)


def _republish_batches(store: EventStore, sqs: Any, queue_url: str, failures_url: str, log: Any,
                       left: list[str]) -> Iterator[tuple[FailedBatch | None, RepublishResult | None]]:
    while True:
        messages = sqs.receive_message(QueueUrl=failures_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=RETRY_AFTER_SECONDS).get("Messages", [])
        if not messages:
            return
        for message in messages:
            batch = failed_batch(message)
            if batch is None:
                left.append(message["ReceiptHandle"])
                yield None, None
                continue
            result = republish(store, sqs, queue_url, batch.since, batch.until, log)
            if not result.failed:
                sqs.delete_message(QueueUrl=failures_url, ReceiptHandle=batch.receipt_handle)
            yield batch, result

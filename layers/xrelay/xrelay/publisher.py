"""Fan-out: the event store's stream (new events only) to the SQS events queue.

A conditional write that fails (a duplicate) produces no stream record, so only new events reach
the queue. Messages go out in ``SendMessageBatch`` calls of up to 10 entries and 256 KiB; an event
whose record does not fit one message travels as a pointer to its stored item instead.

Deletions and revocations are applied before anything is sent (compliance.py): an event a
deletion or a revocation covers goes out redacted, a post's tombstone becomes a compliance message
on the same queue, and a revocation purges the user's private events (with PurgeOnRevoke). Only
INSERTs are news: the MODIFY records redactions produce are never published, and the table's other
items (tombstones, references, revocation markers) carry no record.

Failure handling follows Lambda's stream checkpointing: we stop at the first failure and report
it and every later record as failed, so Lambda resumes from that record. An entry that succeeded
inside a partly failed batch is sent again on the retry: consumers see an event *at least* once
and dedupe on ``event_key`` (docs/event-record.md).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .compliance import Compliance, Tombstone
from .models import EventRecord, Source
from .store import StoreUnavailable

SQS_MAX_BYTES = 262_144  # per message and per batch, body and attributes together
ATTRIBUTE_NAMES = ("source", "event_type", "user_id", "known_type", "replay", "schema_version", "event_key")


@dataclass(frozen=True)
class Outgoing:
    sequence: str
    body: str
    attributes: dict[str, dict[str, str]]
    pointer: bool

    @property
    def size(self) -> int:
        return len(self.body.encode()) + sum(len(k) + len(v["DataType"]) + len(v["StringValue"].encode())
                                             for k, v in self.attributes.items())


def message_attributes(record: EventRecord) -> dict[str, dict[str, str]]:
    values = {
        "source": record.source.value,
        "event_type": record.event_type,
        "user_id": record.user_id,
        "known_type": "true" if record.known_type else "false",
        "replay": "true" if record.replay else "false",
        "event_key": record.event_key,
    }
    attrs = {k: {"DataType": "String", "StringValue": v} for k, v in values.items() if v}
    attrs["schema_version"] = {"DataType": "Number", "StringValue": str(record.schema_version)}
    return attrs


def outgoing(sequence: str, record: EventRecord, table: str) -> Outgoing:
    attrs = message_attributes(record)
    full = Outgoing(sequence, record.model_dump_json(), attrs, pointer=False)
    if full.size <= SQS_MAX_BYTES:
        return full
    return Outgoing(sequence, record.as_pointer(table).model_dump_json(), attrs, pointer=True)


def _blob(value: Any) -> bytes:
    # Lambda's stream events carry binary attributes base64-encoded; boto3 hands us bytes.
    return value if isinstance(value, (bytes, bytearray)) else base64.b64decode(value)


def inserts(stream_event: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(sequence number, new image) of each INSERT: TTL expiries and updates (redactions) are not news."""
    for rec in stream_event.get("Records", []):
        if rec.get("eventName") == "INSERT":
            yield rec["dynamodb"]["SequenceNumber"], rec["dynamodb"].get("NewImage") or {}


def decode_image(image: dict[str, Any]) -> EventRecord:
    return EventRecord.model_validate_json(zlib.decompress(_blob(image["record"]["B"])))


def batches(messages: list[Outgoing]) -> list[list[Outgoing]]:
    out: list[list[Outgoing]] = []
    size = 0
    for message in messages:
        if not out or len(out[-1]) == 10 or size + message.size > SQS_MAX_BYTES:
            out.append([])
            size = 0
        out[-1].append(message)
        size += message.size
    return out


@dataclass
class PublishResult:
    published: int
    pointers: int
    failed_sequences: list[str]
    compliance_messages: int = 0

    def lambda_response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failed_sequences]}


def publish(stream_event: dict[str, Any], sqs: Any, queue_url: str, compliance: Compliance,
            log: Any) -> PublishResult:
    """The publisher Lambda's job: every new event of a stream batch onto the queue, deletions and
    revocations applied first, and a compliance message for each new tombstone, in stream order."""
    order = [r["dynamodb"]["SequenceNumber"] for r in stream_event.get("Records", [])]
    news = list(inserts(stream_event))
    try:
        prepared = compliance.prepare([(seq, decode_image(image)) for seq, image in news if "record" in image])
    except StoreUnavailable as exc:
        log.error("compliance checks failed; Lambda will retry the whole batch", extra={"reason": str(exc)})
        return PublishResult(0, 0, order)
    messages: list[tuple[str, EventRecord]] = []
    failed_from: str | None = None
    for seq, image in news:
        try:
            if seq in prepared:
                compliance.apply_revocation(prepared[seq])  # before the revoke goes out: a retry redoes both
                messages.append((seq, prepared[seq]))
            elif tombstone := Tombstone.from_item(image):
                messages.append((seq, compliance.apply_deletion(tombstone)))
        except StoreUnavailable as exc:
            log.error("compliance work failed; Lambda will retry from this record", extra={"reason": str(exc)})
            failed_from = seq
            break
    result = send_records(messages, order, sqs, queue_url, compliance.store.table, log)
    if failed_from and not result.failed_sequences:
        result.failed_sequences = order[order.index(failed_from):]
    sent = set(order) - set(result.failed_sequences)
    result.compliance_messages = sum(1 for seq, record in messages if record.source is Source.XRELAY and seq in sent)
    return result


def send_records(records: list[tuple[str, EventRecord]], order: list[str], sqs: Any, queue_url: str, table: str,
                 log: Any) -> PublishResult:
    """Send ``records`` (id, record) in batches; stop at the first failure.

    ``order`` lists every id of the input in order (stream sequence numbers, which may include
    records that are not events): the failure reported is that id and everything after it.
    """
    messages = [outgoing(ident, record, table) for ident, record in records]
    published = pointers = 0
    for batch in batches(messages):
        failed: set[str] = set()
        try:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "MessageBody": m.body, "MessageAttributes": m.attributes} for i, m in enumerate(batch)])
            failed = {batch[int(f["Id"])].sequence for f in response.get("Failed", [])}
            if failed:
                log.error("SQS refused entries", extra={"codes": sorted({f.get("Code", "?") for f in
                                                                          response.get("Failed", [])})})
        except Exception as exc:
            log.error("SendMessageBatch failed", extra={"error": type(exc).__name__})
            failed = {m.sequence for m in batch}
        for m in batch:
            if m.sequence in failed:
                first = order.index(m.sequence)
                return PublishResult(published, pointers, order[first:])
            published += 1
            pointers += m.pointer
    return PublishResult(published, pointers, [])


def decode_message(body: str) -> EventRecord:
    """For consumers and tests: the record an events-queue message carries."""
    return EventRecord.model_validate(json.loads(body))

"""Fan-out: the event store's stream (new events only) to the SQS events queue.

A conditional write that fails (a duplicate) produces no stream record, so only new events reach
the queue. Messages go out in ``SendMessageBatch`` calls of up to 10 entries and 256 KiB; an event
whose record does not fit one message travels as a pointer to its stored item instead.

Failure handling follows Lambda's stream checkpointing: we stop at the first failure and report
it and every later record as failed, so Lambda resumes from that record. An entry that succeeded
inside a partly failed batch is sent again on the retry: consumers see an event *at least* once
and dedupe on ``event_key`` (docs/event-record.md).
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from typing import Any

from .models import EventRecord

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


def new_events(stream_event: dict[str, Any]) -> list[tuple[str, EventRecord]]:
    """The INSERT records of a DynamoDB stream event (TTL expiries and updates are not news)."""
    found = []
    for rec in stream_event.get("Records", []):
        if rec.get("eventName") != "INSERT":
            continue
        image = rec["dynamodb"].get("NewImage") or {}
        if "record" not in image:
            continue
        record = EventRecord.model_validate_json(zlib.decompress(_blob(image["record"]["B"])))
        found.append((rec["dynamodb"]["SequenceNumber"], record))
    return found


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

    def lambda_response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failed_sequences]}


def publish(stream_event: dict[str, Any], sqs: Any, queue_url: str, table: str, log: Any) -> PublishResult:
    """The publisher Lambda's job: every INSERT of a stream batch onto the queue."""
    all_sequences = [r["dynamodb"]["SequenceNumber"] for r in stream_event.get("Records", [])]
    return send_records(new_events(stream_event), all_sequences, sqs, queue_url, table, log)


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

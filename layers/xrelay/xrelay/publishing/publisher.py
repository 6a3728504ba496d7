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

A failure that will recur on every retry (DynamoDB refusing a redaction or a reference as
invalid or too large, SQS refusing a message as a sender's fault, a stored record that cannot be
decoded) is not a failure of the batch: that one record is *set aside*, a small note naming it
and why on the PublishFailuresQueue (alarmed: PublishFailuresAlarm), counted (EventsSetAside),
and the rest of the batch and every later record flow on. Only when the note itself cannot be
sent does the record fail the batch as before.

With an EventBridge bus (``EventBusMode`` ``also`` or ``only``, xrelay.publishing.bus) each record also (or
only) goes to the bus, compliance messages included, under the same rules: in ``also`` the bus
gets what the queue took, so a record set aside or failed on the queue is not on the bus either
and the first failure of either fails that stream record and every later one. A record the queue
took but the bus did not therefore goes to the queue again on the retry: the same at-least-once
duplicate as an entry of a partly failed batch, which consumers dedupe on ``event_key``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xrelay.aws import error_code
from xrelay.events.bounds import loggable_fields, packed, safe_text
from xrelay.events.models import EventRecord, Source
from xrelay.publishing.bus import BusMode, BusTarget, SetAsideSink, put_records
from xrelay.publishing.compliance import Compliance, Tombstone
from xrelay.storage.store import StoreRefused, StoreUnavailable, decompress_record, iso

SQS_MAX_BYTES = 262_144  # per message and per batch, body and attributes together
SQS_MAX_ENTRIES = 10  # per SendMessageBatch call
# SQS error codes of a request that can never succeed (the JSON protocol may prefix them with
# "AWS.SimpleQueueService."): one bad entry refuses its whole batch.
SQS_REFUSALS = frozenset({"InvalidMessageContents", "BatchRequestTooLong", "InvalidParameterValue",
                          "InvalidAttributeName", "InvalidAttributeValue", "MessageTooLong"})
SET_ASIDE_KIND = "xrelay.publish.set_aside"


def _sqs_refusal(exc: BaseException) -> bool:
    return (error_code(exc) or "").rsplit(".", 1)[-1] in SQS_REFUSALS


@dataclass
class FailureQueue:
    """Sets records aside on the PublishFailuresQueue: a note an operator reads (never the content)."""

    sqs: Any
    queue_url: str | None
    table: str
    log: Any
    count: int = 0
    notes: list[str] = field(default_factory=list)

    def __call__(self, ident: str, event_key: str, reason: str) -> bool:
        if not self.queue_url:  # not deployed with one: fail the batch, Lambda's own retries decide
            return False
        note = {"kind": SET_ASIDE_KIND, "sequence": ident, "event_key": safe_text(event_key, 2048),
                "stored": {"table": self.table, "key": {"pk": safe_text(event_key, 2048)}},
                "reason": safe_text(reason, 1000), "at": iso(datetime.now(UTC))}
        try:  # ASCII JSON: whatever the key holds, SQS accepts the note
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(note))
        except Exception as exc:
            self.log.error("could not set a record aside on the failure queue", extra=loggable_fields(
                {"event_key": event_key, "error": error_code(exc) or type(exc).__name__}))
            return False
        self.count += 1
        self.log.error("record set aside on the failure queue: it can never be published as it is",
                       extra=loggable_fields({"event_key": event_key, "reason": reason, "sequence": ident}))
        return True
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
    return EventRecord.model_validate_json(decompress_record(_blob(image["record"]["B"])))


@dataclass
class PublishResult:
    published: int
    pointers: int
    failed_sequences: list[str]
    compliance_messages: int = 0
    set_aside: int = 0
    bus_published: int = 0  # entries on the EventBridge bus (compliance messages included)
    bus_retried: int = 0  # entries PutEvents was asked again for, inside this invocation
    bus_failures: int = 0  # stream records failed because the bus did not take one of them

    def lambda_response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failed_sequences]}


def publish(stream_event: dict[str, Any], sqs: Any, queue_url: str, compliance: Compliance,
            log: Any, failures_url: str | None = None, bus: BusTarget | None = None) -> PublishResult:
    """The publisher Lambda's job: every new event of a stream batch onto the queue (and/or the
    ``bus``), deletions and revocations applied first, and a compliance message for each new
    tombstone, in stream order. What can never be published is set aside on ``failures_url`` (see
    the module's docstring)."""
    order = [r["dynamodb"]["SequenceNumber"] for r in stream_event.get("Records", [])]
    news = list(inserts(stream_event))
    table = compliance.store.table
    set_aside = FailureQueue(sqs, failures_url, table, log)
    decoded: list[tuple[str, EventRecord]] = []
    for seq, image in news:
        if "record" in image:
            try:
                decoded.append((seq, decode_image(image)))
            except Exception as exc:  # it will not decode on a retry either
                key = (image.get("pk") or {}).get("S", "?")
                compliance.refused[seq] = (key, f"its stored record cannot be decoded ({type(exc).__name__})")
    try:
        prepared = compliance.prepare(decoded)
    except StoreUnavailable as exc:
        log.error("compliance checks failed; Lambda will retry the whole batch", extra={"reason": str(exc)})
        return PublishResult(0, 0, order)
    messages: list[tuple[str, EventRecord]] = []
    failed_from: str | None = None
    for seq, image in news:
        if seq in compliance.refused:
            continue
        try:
            if seq in prepared:
                compliance.apply_revocation(prepared[seq])  # before the revoke goes out: a retry redoes both
                messages.append((seq, prepared[seq]))
            elif tombstone := Tombstone.from_item(image):
                messages.append((seq, compliance.apply_deletion(tombstone)))
        except StoreRefused as exc:
            compliance.refused[seq] = ((image.get("pk") or {}).get("S", "?"), f"its compliance work was refused: {exc}")
        except StoreUnavailable as exc:
            log.error("compliance work failed; Lambda will retry from this record", extra={"reason": str(exc)})
            failed_from = seq
            break
    for ident, (key, reason) in list(compliance.refused.items()):
        if ident not in order:  # a copy a deletion could not redact: reported, it does not hold the batch
            set_aside(ident, key, reason)
        elif failed_from is None or order.index(ident) < order.index(failed_from):
            if not set_aside(ident, key, reason):
                failed_from = ident if failed_from is None else min(ident, failed_from, key=order.index)
    if failed_from is not None:
        messages = [(seq, record) for seq, record in messages if order.index(seq) < order.index(failed_from)]
    result = deliver(messages, order, sqs, queue_url, table, log, set_aside, bus)
    if failed_from and not result.failed_sequences:
        result.failed_sequences = order[order.index(failed_from):]
    sent = set(order) - set(result.failed_sequences)
    result.compliance_messages = sum(1 for seq, record in messages if record.source is Source.XRELAY and seq in sent)
    result.set_aside = set_aside.count
    return result


def deliver(messages: list[tuple[str, EventRecord]], order: list[str], sqs: Any, queue_url: str, table: str,
            log: Any, set_aside: SetAsideSink, bus: BusTarget | None) -> PublishResult:
    """``messages`` to the queue, the bus, or the queue then the bus (``bus.mode``)."""
    if bus is None or not bus.mode.bus:
        return send_records(messages, order, sqs, queue_url, table, log, set_aside=set_aside)
    aside: set[str] = set()

    def recording(ident: str, event_key: str, reason: str) -> bool:
        if done := set_aside(ident, event_key, reason):
            aside.add(ident)
        return done

    if bus.mode.queue:
        result = send_records(messages, order, sqs, queue_url, table, log, set_aside=recording)
        cut = order.index(result.failed_sequences[0]) if result.failed_sequences else len(order)
        # The bus gets what the queue took: never a record the retry will send again anyway.
        messages = [(seq, record) for seq, record in messages if seq not in aside and order.index(seq) < cut]
    else:
        result = PublishResult(0, 0, [])
    on_bus = put_records(messages, order, bus.events, bus.name, table, log, set_aside=recording)
    result.bus_published, result.bus_retried = on_bus.published, on_bus.retried
    if on_bus.failed_sequences:  # earlier than the queue's first failure, if any: the bus got only what came before
        result.bus_failures = len(on_bus.failed_sequences)
        result.failed_sequences = on_bus.failed_sequences
    if bus.mode is BusMode.ONLY:
        result.published, result.pointers = on_bus.published, on_bus.pointers
    return result


def send_records(records: list[tuple[str, EventRecord]], order: list[str], sqs: Any, queue_url: str, table: str,
                 log: Any, set_aside: SetAsideSink | None = None) -> PublishResult:
    """Send ``records`` (id, record) in batches; stop at the first failure.

    ``order`` lists every id of the input in order (stream sequence numbers, which may include
    records that are not events): the failure reported is that id and everything after it. With
    ``set_aside``, an entry SQS refuses as the sender's fault is handed to it instead of failing.
    """
    messages = [outgoing(ident, record, table) for ident, record in records]
    keys = {ident: record.event_key for ident, record in records}
    published = pointers = 0
    for batch in packed(messages, SQS_MAX_ENTRIES, SQS_MAX_BYTES):
        failed, refused = _send_batch(batch, sqs, queue_url, log, refusals=set_aside is not None)
        for sequence, reason in refused.items():
            if not set_aside(sequence, keys[sequence], reason):
                failed.add(sequence)
        for m in batch:
            if m.sequence in failed:
                first = order.index(m.sequence)
                return PublishResult(published, pointers, order[first:])
            if m.sequence in refused:
                continue
            published += 1
            pointers += m.pointer
    return PublishResult(published, pointers, [])


def _send_batch(batch: list[Outgoing], sqs: Any, queue_url: str, log: Any,
                refusals: bool) -> tuple[set[str], dict[str, str]]:
    """(sequences that failed and may succeed later, sequences SQS refused for good -> why)."""
    try:
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "MessageBody": m.body, "MessageAttributes": m.attributes} for i, m in enumerate(batch)])
    except Exception as exc:
        if refusals and _sqs_refusal(exc):
            if len(batch) == 1:
                return set(), {batch[0].sequence: f"SQS refused the message: {error_code(exc)}"}
            failed: set[str] = set()
            refused: dict[str, str] = {}
            for m in batch:  # one entry spoils the whole batch: send them one by one to find it
                one_failed, one_refused = _send_batch([m], sqs, queue_url, log, refusals)
                failed |= one_failed
                refused |= one_refused
            return failed, refused
        log.error("SendMessageBatch failed", extra={"error": error_code(exc) or type(exc).__name__})
        return {m.sequence for m in batch}, {}
    entries = response.get("Failed", [])
    if entries:
        log.error("SQS refused entries", extra={"codes": sorted({f.get("Code", "?") for f in entries})})
    refused = {batch[int(f["Id"])].sequence: f"SQS refused the message: {f.get('Code', '?')}"
               for f in entries if refusals and f.get("SenderFault")}
    return {batch[int(f["Id"])].sequence for f in entries} - set(refused), refused


def decode_message(body: str) -> EventRecord:
    """For consumers and tests: the record an events-queue message carries."""
    return EventRecord.model_validate(json.loads(body))

"""An SQS batch of xrelay messages in, typed records out to your handlers, partial failures back.

    consumer = Consumer(dedupe=DedupeTable("my-dedupe-table"))

    @consumer.on("post.create", "post.reply.create")
    def store_post(record: EventRecord) -> None: ...

    @consumer.compliance
    def forget_post(record: EventRecord) -> None: ...   # record.payload is a PostRedacted

    def handler(event, context):                        # Lambda, ReportBatchItemFailures on
        return consumer.handle(event)

Each message, in order: check ``schema_version`` (attribute, then body), parse the record,
drop a duplicate ``event_key`` (the batch's own, then the dedupe table's), fetch a pointer
message's full record from the events table, call the handler. A message whose step fails is
reported in ``batchItemFailures`` and the others are deleted by Lambda; the failed one comes back
after the visibility timeout and, after the queue's maxReceiveCount, lands in the DLQ.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .dedupe import Claim, DedupeTable
from .record import EventRecord, NewerSchemaVersion, check_schema_version

Handler = Callable[[EventRecord], Any]

log = logging.getLogger("xrelay_consumer")


def unwrap(body: Any) -> Any:
    """The record a message carries: the body itself (the events queue), or the ``detail`` of an
    EventBridge event (xrelay's bus, ``EventBusMode``, through a rule whose target is a queue)."""
    if isinstance(body, dict) and "detail" in body and "detail-type" in body \
            and str(body.get("source", "")).startswith("xrelay."):
        return body["detail"]
    return body


class PointerMissing(Exception):
    """A pointer message whose stored record is gone (expired from the events table, or a wrong table)."""


class InProgressElsewhere(Exception):
    """Another invocation is processing a copy of this event right now: retry the message later."""


def _loggable(exc: Exception) -> str:
    # A validation error quotes the input it refused, which may be a DM's text: name the fields only.
    if isinstance(exc, ValidationError):
        return f"{exc.error_count()} invalid field(s): " + ", ".join(
            ".".join(map(str, e["loc"])) or "(body)" for e in exc.errors()[:5])
    return str(exc)


@dataclass(frozen=True)
class Message:
    """An SQS message in either shape: Lambda's event record, or boto3's ``receive_message``."""

    message_id: str
    body: str
    attributes: dict[str, str]

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Message:
        if "messageId" in raw:  # Lambda: camelCase, attribute values as stringValue
            attrs = raw.get("messageAttributes") or {}
            return cls(raw["messageId"], raw["body"], {k: v.get("stringValue") for k, v in attrs.items()})
        attrs = raw.get("MessageAttributes") or {}
        return cls(raw["MessageId"], raw["Body"], {k: v.get("StringValue") for k, v in attrs.items()})


@dataclass
class BatchResult:
    handled: list[str] = field(default_factory=list)  # event keys a handler ran for
    duplicates: list[str] = field(default_factory=list)  # event keys dropped as already done
    unrouted: list[str] = field(default_factory=list)  # event keys with no handler and no default
    failures: dict[str, Exception] = field(default_factory=dict)  # message id -> why

    def lambda_response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failures]}


class Consumer:
    def __init__(self, *, dedupe: DedupeTable | None = None, dynamodb: Any = None) -> None:
        """``dedupe``: remember processed event keys across batches (without it, only within one
        batch). ``dynamodb``: the client that fetches pointer messages (boto3's default if None)."""
        self.dedupe = dedupe
        self._dynamodb = dynamodb
        self._handlers: dict[str, Handler] = {}
        self._default: Handler | None = None
        self._compliance: Handler | None = None

    # ------------------------------------------------------------------ registration
    def on(self, *event_types: str) -> Callable[[Handler], Handler]:
        """Register a handler for these ``event_type`` values (XAA's dotted names, ``aaa.<name>``...)."""
        def register(fn: Handler) -> Handler:
            for event_type in event_types:
                if event_type in self._handlers:
                    raise ValueError(f"a handler for {event_type} is already registered")
                self._handlers[event_type] = fn
            return fn
        return register

    def default(self, fn: Handler) -> Handler:
        """Every record no ``on`` handler takes: the vocabulary is open, X adds types."""
        self._default = fn
        return fn

    def compliance(self, fn: Handler) -> Handler:
        """Compliance messages (``xrelay.post.redacted``): delete what you hold of the post."""
        self._compliance = fn
        return fn

    # ------------------------------------------------------------------ processing
    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """The Lambda entry point for an SQS event source with ``ReportBatchItemFailures``."""
        return self.process(event.get("Records", [])).lambda_response()

    def process(self, messages: Iterable[dict[str, Any]]) -> BatchResult:
        result = BatchResult()
        done_in_batch: set[str] = set()
        failed_in_batch: set[str] = set()
        for raw in messages:
            message = Message.of(raw)
            key = None
            try:
                if (version := message.attributes.get("schema_version")) is not None:
                    check_schema_version(version)  # before parsing: a newer body may not parse at all
                record = EventRecord.model_validate(unwrap(json.loads(message.body)))
                key = record.event_key
                if key in failed_in_batch:
                    raise InProgressElsewhere(f"an earlier copy of {key} in this batch failed")
                if key in done_in_batch:
                    result.duplicates.append(key)
                    continue
                self._run(record, result)
                done_in_batch.add(key)
            except Exception as exc:  # one message's failure never stops the batch
                if key is not None:
                    failed_in_batch.add(key)
                result.failures[message.message_id] = exc
                level = logging.ERROR if isinstance(exc, NewerSchemaVersion | PointerMissing) else logging.WARNING
                log.log(level, "message %s (%s) failed: %s: %s", message.message_id, key, type(exc).__name__,
                        _loggable(exc))
        return result

    def _run(self, record: EventRecord, result: BatchResult) -> None:
        """Run ``record``'s handler under the dedupe claim (nothing for a duplicate)."""
        key = record.event_key
        if self.dedupe is not None:
            claim = self.dedupe.claim(key)
            if claim is Claim.DONE:
                result.duplicates.append(key)
                return
            if claim is Claim.BUSY:
                raise InProgressElsewhere(f"{key} is being processed by another invocation")
        try:
            full = self.resolve(record)
            handler = self._route(full)
            if handler is None:
                log.info("no handler for %s (%s): acknowledged", full.event_type, key)
                result.unrouted.append(key)
            else:
                handler(full)
                result.handled.append(key)
        except BaseException:
            if self.dedupe is not None:
                self.dedupe.release(key)
            raise
        if self.dedupe is not None:
            self.dedupe.complete(key)

    def _route(self, record: EventRecord) -> Handler | None:
        if record.is_compliance and self._compliance is not None:
            return self._compliance
        return self._handlers.get(record.event_type, self._default)

    def resolve(self, record: EventRecord) -> EventRecord:
        """A pointer message's full record, read from the events table (``dynamodb:GetItem``)."""
        if record.stored is None:
            return record
        if self._dynamodb is None:
            import boto3

            self._dynamodb = boto3.client("dynamodb")
        item = self._dynamodb.get_item(
            TableName=record.stored.table, Key={name: {"S": value} for name, value in record.stored.key.items()},
            ConsistentRead=True).get("Item")
        if item is None or "record" not in item:
            raise PointerMissing(f"{record.event_key}: no stored record in {record.stored.table} (expired?)")
        full = EventRecord.model_validate(json.loads(zlib.decompress(item["record"]["B"])))
        if full.event_key != record.event_key:
            raise PointerMissing(f"{record.stored.table} holds {full.event_key} under {record.event_key}'s key")
        return full

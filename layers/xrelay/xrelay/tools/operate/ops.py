"""Day-2 operations behind ``xrelay dlq redrive`` and ``xrelay events tail``.

Redrive: messages a consumer failed 5 times wait in the events DLQ; once the consumer is fixed,
they go back to the events queue. SQS's own ``StartMessageMoveTask`` does that server-side (and
keeps every message as it was); where it is missing (moto) or when a bounded number is wanted
(``max_messages``), messages are copied instead: receive, send (body and message attributes
kept), and delete from the DLQ only what the events queue accepted. A failure stops the copy and
makes the unsent messages visible again, so nothing is lost; a message sent but not deleted is
redriven twice, which consumers absorb (they dedupe on ``event_key``).

Tail: new events as they reach the event store, never from the consumers' queue (receiving its
messages would take them from the consumers). Without a user, each poll is a Scan of the events
table filtered on ``received_at``: it reads (and is billed for) the whole table every poll,
about 0.5 read unit per 4 KB stored, so keep it for low volumes or lengthen the interval. With a
user, each poll reads that user's ``ByUser`` index entries of the last ``USER_LAG`` (about 150
bytes each) and fetches the full items of those not checked yet (BatchGetItem): the cost follows
that user's traffic, not the table's. The index is ordered by when events happened, not by when
they arrived, hence the look-back: it covers X's 24-hour replay window, and an event that
reaches xrelay more than ``USER_LAG`` after it happened is not shown by a ``--user`` tail. With
the index off (UserIndex=false, the default), ``--user`` is the Scan, filtered on the user too.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from xrelay.aws import error_code
from xrelay.events.event_types import canonical_xaa_type
from xrelay.events.models import EventRecord
from xrelay.events.normalize import parse_time
from xrelay.publishing.publisher import SQS_MAX_BYTES
from xrelay.storage.store import BY_USER_INDEX, UNINDEXED_USER, EventStore, decode_record, iso

Progress = Callable[[str], None]

# ---------------------------------------------------------------------------- dlq redrive

# A copied message stays hidden in the DLQ this long while it is sent and deleted.
COPY_VISIBILITY_SECONDS = 120
MOVE_TASK_POLL_SECONDS = 2.0
# What an endpoint without StartMessageMoveTask answers: moto raises NotImplementedError in
# process, and its server mode answers a bare HTTP 500 (error code "500").
_NOT_IMPLEMENTED_CODES = {"500", "501", "InvalidAction", "NotImplemented", "UnknownOperationException"}


class RedriveResult(BaseModel):
    """What `xrelay dlq redrive --json` prints (docs/schemas/dlq-redrive.schema.json)."""

    method: Literal["move-task", "copy"] = Field(
        description="move-task: SQS moves them server-side; copy: receive, send, delete")
    source: str = Field(description="the DLQ's URL")
    destination: str = Field(description="the events queue's URL")
    moved: int = 0
    failed: int = Field(0, description="received but not sent: visible in the DLQ again")
    not_deleted: int = Field(0, description="sent but still in the DLQ: will be redriven (and seen) twice")
    status: str = Field("COMPLETED", description="COMPLETED, RUNNING (not waited for), FAILED, CANCELLED, STOPPED")
    task_handle: str | None = None
    reason: str | None = None
    errors: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return self.status in ("COMPLETED", "RUNNING") and not self.failed and not self.not_deleted

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def queue_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def _not_implemented(exc: Exception) -> bool:
    return isinstance(exc, NotImplementedError) or error_code(exc) in _NOT_IMPLEMENTED_CODES


def redrive(sqs: Any, dlq_url: str, queue_url: str, *, max_messages: int | None = None, copy: bool = False,
            wait: bool = True, wait_seconds: int = 1, progress: Progress = lambda line: None,
            sleep: Callable[[float], None] | None = None) -> RedriveResult:
    """Move the DLQ's messages to the queue: a move task where SQS has one, else a copy.

    ``max_messages`` (a move task has no count limit) and ``copy`` force the copy. ``wait``:
    follow a move task to its end (else return it RUNNING). ``wait_seconds``: the copy's long
    poll, so that a short poll's empty answer from a few SQS hosts is not taken for an empty DLQ.
    """
    total = queue_depth(sqs, dlq_url)
    if not copy and max_messages is None:
        source_arn = queue_arn(sqs, dlq_url)
        try:
            handle = sqs.start_message_move_task(SourceArn=source_arn,
                                                 DestinationArn=queue_arn(sqs, queue_url))["TaskHandle"]
        except Exception as exc:
            if not _not_implemented(exc):
                raise
            progress("StartMessageMoveTask is not available here: copying instead (receive, send, delete)")
        else:
            result = RedriveResult(method="move-task", source=dlq_url, destination=queue_url, status="RUNNING",
                                   task_handle=handle)
            progress(f"move task started: about {total} message(s) from the DLQ to the events queue")
            return _follow_move_task(sqs, result, source_arn, total, progress, sleep or time.sleep) if wait else result
    return _copy(sqs, dlq_url, queue_url, total, max_messages, wait_seconds, progress)


def _follow_move_task(sqs: Any, result: RedriveResult, source_arn: str, total: int, progress: Progress,
                      sleep: Callable[[float], None]) -> RedriveResult:
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        task = tasks[0] if tasks else {}
        result.status = task.get("Status", "RUNNING")
        result.moved = int(task.get("ApproximateNumberOfMessagesMoved", result.moved))
        to_move = int(task.get("ApproximateNumberOfMessagesToMove", total) or total)
        if task.get("FailureReason"):
            result.reason = task["FailureReason"]
        progress(f"moved {result.moved} of ~{to_move} ({result.status.lower()})")
        if result.status != "RUNNING":
            return result
        sleep(MOVE_TASK_POLL_SECONDS)


def _attributes(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A received message's attributes, in the shape SendMessage takes."""
    out = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        kept = {"DataType": value["DataType"]}
        for part in ("StringValue", "BinaryValue"):
            if part in value:
                kept[part] = value[part]
        out[name] = kept
    return out


def _size(body: str, attributes: dict[str, dict[str, Any]]) -> int:
    return len(body.encode()) + sum(len(k) + len(v["DataType"]) + len(v.get("StringValue", "").encode())
                                    + len(v.get("BinaryValue", b"")) for k, v in attributes.items())


def _send_batches(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Batches of at most 10 entries and SQS_MAX_BYTES (the batch limit as well as the message limit)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = _size(entry["MessageBody"], entry["MessageAttributes"])
        if batch and (len(batch) == 10 or size + entry_size > SQS_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_size
    if batch:
        yield batch


def _copy(sqs: Any, dlq_url: str, queue_url: str, total: int, max_messages: int | None, wait_seconds: int,
          progress: Progress) -> RedriveResult:
    result = RedriveResult(method="copy", source=dlq_url, destination=queue_url)
    goal = total if max_messages is None else min(total, max_messages)
    while max_messages is None or result.moved < max_messages:
        want = 10 if max_messages is None else min(10, max_messages - result.moved)
        messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=want, WaitTimeSeconds=wait_seconds,
                                       VisibilityTimeout=COPY_VISIBILITY_SECONDS,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            break
        entries = [{"Id": str(i), "MessageBody": m["Body"], "MessageAttributes": _attributes(m)}
                   for i, m in enumerate(messages)]
        sent: list[dict[str, Any]] = []
        unsent: list[dict[str, Any]] = []
        for batch in _send_batches(entries):
            if unsent:  # after a failure, send nothing more: keep the order of what is left
                unsent.extend(messages[int(e["Id"])] for e in batch)
                continue
            try:
                response = sqs.send_message_batch(QueueUrl=queue_url, Entries=batch)
                refused = {f["Id"]: f.get("Code", "?") for f in response.get("Failed", [])}
            except Exception as exc:
                refused = {e["Id"]: error_code(exc) or type(exc).__name__ for e in batch}
            for entry in batch:
                (unsent if entry["Id"] in refused else sent).append(messages[int(entry["Id"])])
            if refused:
                result.errors.append("SendMessageBatch refused: " + ", ".join(sorted(set(refused.values()))))
        result.not_deleted += _delete(sqs, dlq_url, sent, result)
        result.moved += len(sent)
        if unsent:
            _release(sqs, dlq_url, unsent)
            result.failed += len(unsent)
            result.status = "STOPPED"
            progress(f"moved {result.moved}; stopped: {len(unsent)} message(s) could not be sent and stay in the DLQ")
            return result
        progress(f"moved {result.moved} of ~{max(goal, result.moved)}")
    return result


def _delete(sqs: Any, dlq_url: str, sent: list[dict[str, Any]], result: RedriveResult) -> int:
    """Delete what the queue accepted; the number that could not be deleted."""
    if not sent:
        return 0
    try:
        response = sqs.delete_message_batch(QueueUrl=dlq_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(sent)])
        failed = response.get("Failed", [])
        if failed:
            result.errors.append("DeleteMessageBatch refused: " + ", ".join(sorted({f.get("Code", "?")
                                                                                     for f in failed})))
        return len(failed)
    except Exception as exc:
        result.errors.append(f"DeleteMessageBatch failed: {error_code(exc) or type(exc).__name__}")
        return len(sent)


def _release(sqs: Any, dlq_url: str, messages: list[dict[str, Any]]) -> None:
    """Make unsent messages visible in the DLQ again now (best effort: else after the visibility timeout)."""
    try:
        sqs.change_message_visibility_batch(QueueUrl=dlq_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)])
    except Exception:  # they reappear after COPY_VISIBILITY_SECONDS anyway
        pass


# ---------------------------------------------------------------------------- events tail

# received_at is stamped before the write, and a Scan is eventually consistent: each poll looks
# this far behind the newest event seen (longer than a function's timeout), skipping keys it
# already printed, so a slow write is not missed.
LATE_MARGIN = timedelta(seconds=30)
# --user reads the ByUser index, ordered by when events happened: how late an event may arrive
# after it happened and still be shown (X replays up to 24 hours back; the job itself takes time).
USER_LAG = timedelta(hours=25)
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601 (UTC unless it says) or a duration back from now: ``90s``, ``10m``, ``2h``, ``1d``."""
    match = _DURATION.match(text.strip())
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    when = parse_time(text)
    if when is None:
        raise ValueError(f"not an ISO 8601 time or a duration like 10m: {text!r}")
    return when


class EventTail:
    """New events of the store, poll by poll, each one once."""

    def __init__(self, store: EventStore, since: datetime, types: list[str] | None = None,
                 user: str | None = None, margin: timedelta = LATE_MARGIN, user_lag: timedelta = USER_LAG):
        self.store, self.since, self.user = store, since, user
        self.types = sorted({canonical_xaa_type(t) for t in types or []})
        self.margin, self.user_lag = margin, user_lag
        # --user reads the ByUser index when the stack has it (UserIndex=true or PurgeOnRevoke=true);
        # without it, the same Scan as a tail without --user, filtered on the user.
        self.by_index = bool(user) and store.index_users
        self.newest = since  # received_at of the newest event printed
        self.seen: dict[str, datetime] = {}  # event key -> received_at (printed) or ts (--user: checked)

    def poll(self) -> list[EventRecord]:
        """Events received since the last poll (the first: since ``since``), oldest first."""
        lower = max(self.since, self.newest - self.margin)
        records = self._from_index(lower) if self.by_index else self._from_scan(lower)
        records.sort(key=lambda r: (r.received_at, r.event_key))
        for record in records:
            self.seen[record.event_key] = record.received_at
            self.newest = max(self.newest, record.received_at)
        horizon = max(self.since, self.newest - self.margin) - (self.user_lag if self.by_index else timedelta(0))
        self.seen = {k: t for k, t in self.seen.items() if t >= horizon}
        return records

    def _from_scan(self, lower: datetime) -> list[EventRecord]:
        values: dict[str, Any] = {":lower": {"S": iso(lower)}}
        condition = "received_at >= :lower"
        if self.types:
            values.update({f":t{i}": {"S": t} for i, t in enumerate(self.types)})
            condition += " AND event_type IN (" + ", ".join(f":t{i}" for i in range(len(self.types))) + ")"
        names = {"#r": "record"}
        if self.user:  # the ByUser index is off: uid, or user_key for events stored while it was on
            values[":u"] = {"S": self.user}
            names["#uid"] = UNINDEXED_USER
            condition += " AND (#uid = :u OR user_key = :u)"
        paginator = self.store.ddb.get_paginator("scan")
        out = []
        for page in paginator.paginate(TableName=self.store.table, FilterExpression=condition,
                                       ExpressionAttributeValues=values, ProjectionExpression="pk, #r",
                                       ExpressionAttributeNames=names):
            for item in page.get("Items", []):
                if item["pk"]["S"] not in self.seen:
                    out.append(decode_record(item["record"]["B"]))
        return out

    def _from_index(self, lower: datetime) -> list[EventRecord]:
        paginator = self.store.ddb.get_paginator("query")
        candidates: dict[str, datetime] = {}
        for page in paginator.paginate(
                TableName=self.store.table, IndexName=BY_USER_INDEX,
                KeyConditionExpression="user_key = :u AND ts >= :lower",
                ExpressionAttributeValues={":u": {"S": self.user}, ":lower": {"S": iso(lower - self.user_lag)}}):
            for item in page.get("Items", []):
                key = item["pk"]["S"]
                if key in self.seen or (self.types and item.get("event_type", {}).get("S") not in self.types):
                    continue
                candidates[key] = parse_time(item["ts"]["S"]) or lower
        out = []
        for key, record in self._fetch(list(candidates)):
            if record.received_at >= lower:
                out.append(record)
            else:  # happened in the window but received before it: checked, never printed
                self.seen[key] = candidates[key]
        return out

    def _fetch(self, keys: list[str]) -> Iterator[tuple[str, EventRecord]]:
        """BatchGetItem, 100 keys a call, retrying what DynamoDB leaves unprocessed."""
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {self.store.table: {
                "Keys": [{"pk": {"S": k}} for k in keys[start:start + 100]],
                "ProjectionExpression": "pk, #r", "ExpressionAttributeNames": {"#r": "record"}}}
            for attempt in range(8):
                response = self.store.ddb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.store.table, []):
                    yield item["pk"]["S"], decode_record(item["record"]["B"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2))

    def follow(self, emit: Callable[[EventRecord], None], interval: float,
               stop: Callable[[], bool] = lambda: False) -> None:
        """Poll every ``interval`` seconds until ``stop()`` (or Ctrl-C in the caller)."""
        while True:
            for record in self.poll():
                emit(record)
            if stop():
                return
            time.sleep(interval)


TAIL_HEADER = f"{'received':<24}  {'source':<6}  {'type':<30}  {'user':<20}  key"


def tail_line(record: EventRecord) -> str:
    """One event, one line: received, source, type (``*`` when replayed, ``?`` when unknown), user, key."""
    marks = ("*" if record.replay else "") + ("" if record.known_type else "?")
    return (f"{iso(record.received_at):<24}  {record.source.value:<6}  {record.event_type + marks:<30}  "
            f"{record.user_id or '-':<20}  {record.event_key}")


def tail_json(record: EventRecord) -> str:
    """The event record as consumers get it (docs/event-record.schema.json), on one line."""
    return record.model_dump_json()


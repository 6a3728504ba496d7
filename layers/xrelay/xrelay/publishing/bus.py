"""Publishing records to an EventBridge bus, beside or instead of the events queue (``EventBusMode``).

One entry per record: ``source`` ``xrelay.<record source>`` (``xrelay.aaa``, ``xrelay.xaa``,
``xrelay.stream``; ``xrelay.xrelay`` for compliance messages) and ``detail-type`` the record's
``event_type``, so a rule routes on the xrelay source and X's event type; ``detail`` is the record,
the very JSON a queue message's body is. EventBridge's limits decide the rest:

* an entry is at most 256 KiB, counted as AWS documents it (``PUT_EVENTS_SIZE``): a larger record
  goes as its pointer (``stored`` set, ``event``/``context`` null), as on the queue;
* a ``PutEvents`` call takes at most 10 entries and 256 KiB in all;
* ``detail-type`` is at most 128 characters: X's types are far shorter; a longer unknown one is
  cut there (the detail keeps the whole of it).

Failures: ``PutEvents`` answers per entry. Failed entries (throttling, an internal error) are
retried alone, the entries that went in are not sent again; an entry still failing after
``ATTEMPTS`` makes the publisher stop there and report that stream record and every later one as
failed, as for SQS, so Lambda retries from it and nothing is lost. An entry EventBridge refuses for
good (``REFUSALS``: its detail or an argument is invalid, the same on every retry) is set aside
like the queue's refusals (publisher.FailureQueue) when a sink is given; without one, or when the
note cannot be sent, it fails its stream record as above. A refusal that is the stack's fault
(access denied on the bus) is not the record's: it fails the batch until an operator fixes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from xrelay.aws import error_code
from xrelay.events.bounds import packed
from xrelay.events.models import EventRecord

MAX_ENTRY_BYTES = 262_144  # per entry and per PutEvents call
MAX_ENTRIES = 10  # per PutEvents call
MAX_DETAIL_TYPE = 128  # characters
ATTEMPTS = 3  # PutEvents calls for one batch before its failed entries fail the stream record
BACKOFF_S = 0.2  # before the 2nd attempt; doubled after
# Per-entry error codes AWS documents as non-retryable and owed to the entry itself.
REFUSALS = frozenset({"InvalidArgument", "MalformedDetail"})

# (stream sequence or id, event key, reason) -> whether the record is now durably set aside
# (publisher.FailureQueue is one; the queue and the bus share it).
SetAsideSink = Callable[[str, str, str], bool]


class BusMode(StrEnum):
    OFF = "off"  # the queue only (the default)
    ALSO = "also"  # the queue and the bus
    ONLY = "only"  # the bus only

    @property
    def queue(self) -> bool:
        return self is not BusMode.ONLY

    @property
    def bus(self) -> bool:
        return self is not BusMode.OFF


@dataclass(frozen=True)
class BusTarget:
    """Where the publisher puts records besides (or instead of) the queue: EventBusMode, EventBusName."""

    events: Any  # a boto3 EventBridge client
    name: str
    mode: BusMode = BusMode.ALSO


def source_of(record: EventRecord) -> str:
    return f"xrelay.{record.source.value}"


def detail_type_of(record: EventRecord) -> str:
    return record.event_type[:MAX_DETAIL_TYPE]


def entry_size(entry: dict[str, Any]) -> int:
    """An entry's size as EventBridge counts it: 14 bytes for Time, then Source, DetailType, Detail
    and each Resource in UTF-8 bytes (docs: "Calculating PutEvents event entry size")."""
    size = 14
    for name in ("Source", "DetailType", "Detail"):
        size += len(entry[name].encode())
    return size + sum(len(r.encode()) for r in entry.get("Resources", []))


@dataclass(frozen=True)
class BusEntry:
    sequence: str
    entry: dict[str, Any]
    pointer: bool
    event_key: str = ""

    @property
    def size(self) -> int:
        return entry_size(self.entry)


def bus_entry(sequence: str, record: EventRecord, bus_name: str, table: str) -> BusEntry:
    def entry(body: EventRecord) -> dict[str, Any]:
        return {"EventBusName": bus_name, "Source": source_of(record), "DetailType": detail_type_of(record),
                "Detail": body.model_dump_json()}

    full = BusEntry(sequence, entry(record), pointer=False, event_key=record.event_key)
    if full.size <= MAX_ENTRY_BYTES:
        return full
    return BusEntry(sequence, entry(record.as_pointer(table)), pointer=True, event_key=record.event_key)


@dataclass
class BusResult:
    published: int = 0
    pointers: int = 0
    retried: int = 0  # entries sent again after PutEvents refused them (or the call failed)
    failed_sequences: list[str] = field(default_factory=list)  # [] when everything went in
    set_aside: list[str] = field(default_factory=list)  # refused for good, now on the failure queue


def put_records(records: list[tuple[str, EventRecord]], order: list[str], events: Any, bus_name: str, table: str,
                log: Any, sleep: Callable[[float], None] = time.sleep,
                set_aside: SetAsideSink | None = None) -> BusResult:
    """Put ``records`` (id, record) on the bus in order; stop at the first entry that keeps failing.

    ``order`` lists every id of the input (stream sequence numbers): the failure reported is that
    id and everything after it, as ``publisher.send_records`` does for the queue. With
    ``set_aside``, an entry EventBridge refuses for good is handed to it instead of failing.
    """
    result = BusResult()
    for batch in packed([bus_entry(ident, record, bus_name, table) for ident, record in records],
                        MAX_ENTRIES, MAX_ENTRY_BYTES):
        pending = batch
        refused: dict[str, str] = {}
        for attempt in range(ATTEMPTS):
            if attempt:
                result.retried += len(pending)
                sleep(BACKOFF_S * 2 ** (attempt - 1))
            pending, refused_now = _put(pending, events, log)
            refused |= refused_now
            if not pending:
                break
        failed = {e.sequence for e in pending}
        for entry in batch:
            if entry.sequence in refused:
                if set_aside is not None and set_aside(entry.sequence, entry.event_key, refused[entry.sequence]):
                    result.set_aside.append(entry.sequence)
                    continue
                failed.add(entry.sequence)
            if entry.sequence in failed:
                result.failed_sequences = order[order.index(entry.sequence):]
                return result
            result.published += 1
            result.pointers += entry.pointer
    return result


def _put(entries: list[BusEntry], events: Any, log: Any) -> tuple[list[BusEntry], dict[str, str]]:
    """One PutEvents call: (the entries it did not take and may take later, those refused for good -> why)."""
    try:
        response = events.put_events(Entries=[e.entry for e in entries])
    except Exception as exc:
        # The code, as for SQS: "ClientError" alone would hide an AccessDenied the operator must fix.
        log.error("PutEvents failed", extra={"error": error_code(exc) or type(exc).__name__})
        return entries, {}
    answers = response.get("Entries", [])
    if not response.get("FailedEntryCount") and len(answers) == len(entries):
        return [], {}
    # Entries answer in request order; one without an EventId did not go in.
    pending: list[BusEntry] = []
    refused: dict[str, str] = {}
    for entry, answer in zip(entries, answers, strict=False):
        if answer.get("EventId"):
            continue
        if answer.get("ErrorCode") in REFUSALS:
            refused[entry.sequence] = f"EventBridge refused the entry: {answer['ErrorCode']}"
        else:
            pending.append(entry)
    pending += entries[len(answers):]
    log.error("EventBridge refused entries", extra={"codes": sorted({a.get("ErrorCode", "?") for a in answers
                                                                     if not a.get("EventId")})})
    return pending, refused

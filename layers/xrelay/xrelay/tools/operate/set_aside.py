"""The PublishFailuresQueue holds two kinds of message; this module tells them apart and handles the notes.

* Lambda's on-failure records (``DDBStreamBatchInfo``): a stream batch the publisher gave up on.
  Its events are stored and can go out again: ``xrelay events republish --from-failures``.
* Set-aside notes (``kind: xrelay.publish.set_aside``, publisher.FailureQueue): one stored record
  that can *never* be published as it is (DynamoDB or SQS refused it for good, or it cannot be
  decoded). Republishing it would be refused the same way, so there is nothing to retry: the
  operator reads the note (``xrelay events set-aside list``), deals with the record (the event is
  in the events table under the note's key; tell the consumers, or fix and republish it by its
  window), then gives the note up on record (``xrelay events set-aside discard ID --reason WHY``):
  the note is deleted from the queue and kept in the state table, who and why.

Reading the queue receives its messages; each one read is made visible again at once
(visibility 0), so a look never hides a batch from ``republish --from-failures``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from xrelay.publishing.publisher import SET_ASIDE_KIND
from xrelay.storage.store import iso
from xrelay.tools.operate.repair import failed_batch

# One look at the queue reads at most this many messages (status and `set-aside list`).
MAX_PEEK = 100
# Seconds a message read stays hidden while the look goes on (then released at once).
PEEK_VISIBILITY = 30
# Discarded notes, kept in the state table (no TTL: the record of a loss is not expired).
DISCARDED = "set-aside-discarded"

Kind = Literal["batch", "set_aside", "other"]


class SetAsideNote(BaseModel):
    """One set-aside note as an operator sees it (``xrelay events set-aside list --json``)."""

    model_config = ConfigDict(extra="forbid")

    id: str  # the SQS message id: what `set-aside discard` takes (or a unique prefix of it)
    event_key: str
    table: str | None
    reason: str
    set_aside_at: str | None
    sequence: str | None  # the stream record's sequence number


class FailureKinds(BaseModel):
    """What the PublishFailuresQueue holds, by kind (of the messages one look could read)."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    batches: int  # Lambda's on-failure records: `xrelay events republish --from-failures`
    set_aside: int  # set-aside notes: `xrelay events set-aside list`, then `discard`
    other: int  # neither: left for a person
    read: int  # messages read (at most MAX_PEEK)
    complete: bool  # every message in the queue was read (none in flight elsewhere, none beyond MAX_PEEK)


def kind_of(message: dict[str, Any]) -> Kind:
    if failed_batch(message) is not None:
        return "batch"
    return "set_aside" if note_of(message) is not None else "other"


def note_of(message: dict[str, Any]) -> SetAsideNote | None:
    try:
        body = json.loads(message["Body"])
    except (KeyError, TypeError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("kind") != SET_ASIDE_KIND or not isinstance(body.get("event_key"), str):
        return None
    stored = body.get("stored") if isinstance(body.get("stored"), dict) else {}
    return SetAsideNote(id=message["MessageId"], event_key=body["event_key"], table=_text(stored.get("table")),
                        reason=_text(body.get("reason")) or "", set_aside_at=_text(body.get("at")),
                        sequence=_text(body.get("sequence")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class Look:
    """Messages read from the queue; :meth:`release` makes every one still held visible again."""

    sqs: Any
    url: str
    messages: list[dict[str, Any]]

    def release(self) -> None:
        for message in self.messages:
            try:
                self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"],
                                                   VisibilityTimeout=0)
            except Exception:  # noqa: BLE001 - the message comes back after PEEK_VISIBILITY anyway
                pass


def look(sqs: Any, url: str, limit: int = MAX_PEEK) -> Look:
    """Read up to ``limit`` messages, each once (held hidden until :meth:`Look.release`)."""
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < limit:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, limit - len(seen)), WaitTimeSeconds=0,
                                    VisibilityTimeout=PEEK_VISIBILITY).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update((m["MessageId"], m) for m in fresh)
    return Look(sqs, url, list(seen.values()))


def failure_kinds(sqs: Any, url: str, held: int, limit: int = MAX_PEEK) -> FailureKinds:
    """Count the queue's messages by kind; ``held`` is its depth (visible and in flight)."""
    if not held:
        return FailureKinds(batches=0, set_aside=0, other=0, read=0, complete=True)
    seen = look(sqs, url, limit)
    try:
        kinds = [kind_of(m) for m in seen.messages]
    finally:
        seen.release()
    return FailureKinds(batches=kinds.count("batch"), set_aside=kinds.count("set_aside"), other=kinds.count("other"),
                        read=len(kinds), complete=len(kinds) >= held)


def notes(sqs: Any, url: str, limit: int = MAX_PEEK) -> list[SetAsideNote]:
    seen = look(sqs, url, limit)
    try:
        return sorted((n for n in map(note_of, seen.messages) if n is not None),
                      key=lambda n: (n.set_aside_at or "", n.id))
    finally:
        seen.release()


class NoteNotFound(LookupError):
    pass


def discard(sqs: Any, url: str, ddb: Any, state_table: str, note_id: str, *, by: str, why: str,
            at: datetime, limit: int = MAX_PEEK) -> SetAsideNote:
    """Give one note up: kept on record in the state table first, then deleted from the queue.

    ``note_id`` is its id or a prefix naming exactly one note. NoteNotFound (a LookupError) when
    none or several match.
    """
    seen = look(sqs, url, limit)
    try:
        matches = [(m, n) for m in seen.messages if (n := note_of(m)) is not None and n.id.startswith(note_id)]
        if len(matches) != 1:
            raise NoteNotFound(f"{'no' if not matches else len(matches)} set-aside note(s) match {note_id!r} "
                               "(`xrelay events set-aside list` shows them)")
        message, note = matches[0]
        # Recorded before the delete: a crash between the two leaves the note in the queue, never lost.
        ddb.put_item(TableName=state_table, Item={
            "pk": {"S": DISCARDED}, "sk": {"S": note.id}, "event_key": {"S": note.event_key},
            "reason": {"S": note.reason[:1000]}, "discarded_by": {"S": by[:200]},
            "discard_reason": {"S": why[:2000]}, "discarded_at": {"S": iso(at)}})
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        seen.messages.remove(message)
        return note
    finally:
        seen.release()


def discarded(ddb: Any, state_table: str) -> Iterator[dict[str, str]]:
    """The notes given up so far, as kept (event_key, reason, discarded_by, discard_reason, discarded_at)."""
    for page in ddb.get_paginator("query").paginate(
            TableName=state_table, KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": DISCARDED}}):
        for item in page.get("Items", []):
            yield {k: v["S"] for k, v in item.items() if "S" in v}

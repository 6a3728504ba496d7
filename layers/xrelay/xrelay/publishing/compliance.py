"""Deletions and revocations: compliance as a property of the event store, not a chore for consumers.

Whoever stores X content must remove it when its author deletes it on X, and stop and clean up
when a user revokes the app. xrelay does it once, for every consumer, off X's request path:

* **Intake** stores a deletion (XAA ``post.delete``, AAA ``tweet_delete_events``) like any other
  event and, just before it, the post's *tombstone* (``store.EventStore.record_deletion``): one
  more PutItem per deletion, none for any other event.
* **The publisher** (the events table's stream, :func:`publisher.publish`) does the rest:

  1. Before publishing a batch (:meth:`Compliance.prepare`), it indexes the posts its events embed
     (reference items, below), then reads in one BatchGetItem the tombstones of every post the
     batch's events carry and, with ``PurgeOnRevoke``, the revocation markers of the users of its
     private events. An event they cover is redacted in the store first and published redacted: a
     deletion that arrived before the post (out of order, or before a replay) still wins, and a
     consumer never receives the content.
  2. On a tombstone's INSERT (:meth:`Compliance.apply_deletion`) it finds every stored copy of the
     post through the ``ByPost`` index (a Query, never a Scan), redacts each, and puts a compliance
     message (:func:`deletion_notice`) on the events queue. The tombstone, not the deletion event,
     drives this: XAA may deliver a minimal copy of an event first (``"payload": {}``), which would
     not name the post, while the full copy that follows, a duplicate, still writes the tombstone;
     and a post deleted through several subscriptions gets one tombstone, hence one message.
  3. On a revocation (``oauth.revoke``, AAA ``user_event`` revoke) with ``PurgeOnRevoke``
     (:meth:`Compliance.apply_revocation`) it records the user's revocation marker, then redacts
     the user's private events (``event_types.is_purged_on_revoke``) up to the revocation, through
     the ``ByUser`` index. Stopping the user's subscriptions is the reconcile's part.

  Redactions rewrite an existing item (a PutItem conditional on its ``rev``): their stream
  records are MODIFYs, which the publisher never publishes (only INSERTs are news). Tombstones,
  references and markers have no ``record``: their INSERTs are never published as events.

**Redact, never delete.** The item is the dedupe key: deleted, a redelivered or replayed copy would
be stored and published again as new. Redacted, it stays a duplicate, and stays redacted. Every
attribute the conditional put and the indexes use stays (``pk``, ``user_key``, ``ts``,
``post_id``...); the record keeps identifiers, times and types (:func:`skeleton`) and loses text,
media, entities and what profiles say. ``Redaction`` entries in the record say when, why and on
whose word.

**Indexing copies.** A GSI indexes one value per item, and an event may carry several posts
(``normalize.post_ids``). Its own post is the event item's ``post_id`` attribute, written by
intake's one PutItem at no extra cost. Each post it reposts or embeds (``includes.tweets``,
``quoted_status``, ``favorited_status``, ``retweeted_status``) gets a small reference item
(``post-ref#<post_id>#<event_key>`` with ``post_id`` and ``ref_of``), written by the publisher in
BatchWriteItem calls, so intake stays at one write per event. ``ByPost`` projects ``ref_of``: one
Query gives the event keys of every copy.

**Ordering.** The tombstone is written before the deletion event, and references before the
tombstone check. So a copy published while a deletion is processed is either checked after the
tombstone exists (and redacted before it goes out) or was in the table before the deletion's
Query ran. What remains is the index's own propagation delay (GSIs are eventually consistent,
typically well under a second): a copy written within that delay of the Query, and checked before
the tombstone existed, keeps its content in the store (consumers still get the compliance message).
"""

from __future__ import annotations

import copy
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xrelay.events.event_types import OAUTH_REVOKE, is_purged_on_revoke
from xrelay.events.models import EventRecord, Redaction, RedactionReason, Source, Subscription
from xrelay.events.normalize import embedded_posts, parse_time, post_ids, post_object_id
from xrelay.observability import M
from xrelay.storage.store import (
    BY_POST_INDEX,
    BY_USER_INDEX,
    COMPLIANCE_MARGIN_DAYS,
    POST_REF,
    REVOKED_USER,
    TOMBSTONE,
    EventStore,
    StoreRefused,
    StoreUnavailable,
    aws_failure,
    conditional_write,
    decode_record,
    encode_record,
    expiry,
    iso,
)

NOTICE_TYPE = "xrelay.post.redacted"
# A compliance message lists at most this many event keys (it must fit one SQS message; it is
# never stored, so it cannot travel as a pointer). ``redacted_event_keys_total`` counts them all.
NOTICE_MAX_KEYS = 500
# Read-modify-write attempts on one record before giving up (another redaction kept winning).
REWRITE_ATTEMPTS = 5
# DynamoDB's batch limits: 100 keys per BatchGetItem, 25 writes per BatchWriteItem.
BATCH_GET, BATCH_WRITE = 100, 25
UNPROCESSED_RETRIES = 8

# -------------------------------------------------------------------------------------------- redaction

# What a redacted object keeps, at every depth: identifiers, times and types, which dedupe, audit
# and a consumer's own redaction need.
_KEPT_NAMES = frozenset({"id", "id_str", "type", "event_type", "event_uuid", "tag", "created_at", "timestamp_ms",
                         "created_timestamp", "created_at_msec", "date_time", "updated_at", "event_timestamp_ms",
                         "started_at", "ended_at"})
_KEPT_SUFFIXES = ("_id", "_id_str", "_ids")
# Kept whole: XAA's subscription filter, xrelay's routing data (the record's subscription repeats it).
_KEPT_WHOLE = frozenset({"filter"})
# Dropped whole, the identifiers inside included: what a post shows and says, and where it was.
_DROPPED = frozenset({"entities", "extended_entities", "attachments", "attachment", "media", "card",
                      "place", "geo", "coordinates", "profile_geo_enrichment"})


def _kept(name: str) -> bool:
    return name in _KEPT_NAMES or name.endswith(_KEPT_SUFFIXES)


def skeleton(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` reduced to its identifiers, times and types; objects left empty disappear."""
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in _KEPT_WHOLE:
            out[name] = item
        elif name in _DROPPED:
            continue
        elif isinstance(item, dict):
            if inner := skeleton(item):
                out[name] = inner
        elif isinstance(item, list):
            if inner_list := _skeleton_list(item, keep_scalars=_kept(name)):
                out[name] = inner_list
        elif _kept(name):
            out[name] = item
    return out


def _skeleton_list(items: list[Any], keep_scalars: bool) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            if inner := skeleton(item):
                out.append(inner)
        elif isinstance(item, list):
            if inner_list := _skeleton_list(item, keep_scalars):
                out.append(inner_list)
        elif keep_scalars:
            out.append(item)
    return out


def _with_redaction(record: EventRecord, redaction: Redaction, **content: Any) -> EventRecord:
    return record.model_copy(update={**content, "redacted": True, "redactions": [*record.redactions, redaction]})


def redact_post(record: EventRecord, post_id: str, by: str, at: datetime) -> EventRecord | None:
    """``record`` without post ``post_id``'s content: the whole event when it is that post or reposts
    it, else only the copies it embeds (a quote keeps the quoter's words). None when there is
    nothing (left) to remove."""
    if record.event is None or any(r.post_id == post_id or r.scope == "event" for r in record.redactions):
        return None
    carried = post_ids(record)
    if post_id in (carried.own, carried.reposted):
        event, scope = skeleton(record.event), "event"
    elif post_id in carried.embedded:
        event, scope = copy.deepcopy(record.event), "embedded"
        for container, key, post in list(embedded_posts(event, record.source)):
            if post_object_id(post) == post_id:
                container[key] = skeleton(post)
    else:
        return None
    return _with_redaction(record, Redaction(at=at, reason=RedactionReason.POST_DELETED, by=by, post_id=post_id,
                                             scope=scope), event=event)


def redact_user_event(record: EventRecord, by: str, at: datetime) -> EventRecord | None:
    """``record`` (a private event of a user who revoked the app) cut down, context included."""
    if record.event is None or any(r.reason is RedactionReason.USER_REVOKED for r in record.redactions):
        return None
    context = skeleton(record.context) if record.context is not None else None
    return _with_redaction(record, Redaction(at=at, reason=RedactionReason.USER_REVOKED, by=by, scope="event"),
                           event=skeleton(record.event), context=context)


# -------------------------------------------------------------------------------------------- compliance messages


@dataclass(frozen=True)
class Tombstone:
    """A tombstone item (``store.EventStore.record_deletion``), from the table or its stream."""

    post_id: str
    deleted_at: str
    deleted_by: str
    delivery_id: str
    noted_at: str
    user_id: str | None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Tombstone | None:
        if "deleted_post" not in item:
            return None
        text = {name: value["S"] for name, value in item.items() if "S" in value}
        return cls(post_id=text["deleted_post"], deleted_at=text["deleted_at"], deleted_by=text["deleted_by"],
                   delivery_id=text["delivery_id"], noted_at=text["noted_at"], user_id=text.get("deleted_for"))


def deletion_notice(tombstone: Tombstone, copies: list[str]) -> EventRecord:
    """The compliance message: an event record from xrelay itself naming the deleted post, so that
    consumers' own stores can follow (docs/event-record.md, "Compliance messages")."""
    listed = sorted(copies)
    return EventRecord(
        event_key=f"xrelay:post.redacted:{tombstone.post_id}",
        source=Source.XRELAY,
        event_type=NOTICE_TYPE,
        source_event_type=NOTICE_TYPE,
        known_type=True,
        user_id=tombstone.user_id,
        subscription=Subscription(),
        occurred_at=parse_time(tombstone.deleted_at),
        received_at=parse_time(tombstone.noted_at),
        delivery_id=tombstone.delivery_id,
        event={
            "post_id": tombstone.post_id,
            "deleted_at": tombstone.deleted_at,
            "deletion_event_key": tombstone.deleted_by,
            "redacted_event_keys": listed[:NOTICE_MAX_KEYS],
            "redacted_event_keys_total": len(listed),
        },
    )


# -------------------------------------------------------------------------------------------- the store's side

Change = Callable[[EventRecord], EventRecord | None]


@dataclass
class Compliance:
    """The publisher's compliance work on one stream batch; ``counts`` holds its metrics (``M``)."""

    store: EventStore
    purge_on_revoke: bool
    log: Any
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    counts: Counter[str] = field(default_factory=Counter)
    # What DynamoDB refused for good (StoreRefused), by stream sequence number or "copy:<event_key>":
    # (event_key, reason). prepare() leaves these records out; the publisher sets them aside.
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)

    # ---------------------------------------------------------------- before a batch is published
    def prepare(self, events: list[tuple[str, EventRecord]]) -> dict[str, EventRecord]:
        """Sequence -> the record to publish: the stream's own, or, when a tombstone or a revocation
        covers it, the record as redacted in the store now."""
        carried = {seq: post_ids(record) for seq, record in events}
        try:
            self._put_references([(record, post) for seq, record in events for post in sorted(carried[seq].copies)])
        except StoreRefused:  # one record's references are refused: find it, write the others
            for seq, record in events:
                try:
                    self._put_references([(record, post) for post in sorted(carried[seq].copies)])
                except StoreRefused as exc:
                    self.refused[seq] = (record.event_key, f"its post references were refused: {exc}")
        wanted = {TOMBSTONE + post for ids in carried.values() for post in ids.all}
        if self.purge_on_revoke:
            wanted |= {REVOKED_USER + record.user_id for _, record in events
                       if record.user_id and is_purged_on_revoke(record.event_type)}
        found = self._get_many(sorted(wanted))
        at = self.clock()
        out: dict[str, EventRecord] = {}
        for seq, record in events:
            if seq in self.refused:
                continue
            changes: list[Change] = [
                lambda r, post=post, by=found[TOMBSTONE + post]["deleted_by"]["S"]: redact_post(r, post, by, at)
                for post in sorted(carried[seq].all) if TOMBSTONE + post in found]
            marker = found.get(REVOKED_USER + (record.user_id or ""))
            if marker and is_purged_on_revoke(record.event_type) and \
                    iso(record.occurred_at or record.received_at) <= marker["revoked_at"]["S"]:
                changes.append(lambda r, by=marker["revoked_by"]["S"]: redact_user_event(r, by, at))
            try:
                out[seq] = self._rewrite(record.event_key, changes, fallback=record) if changes else record
            except StoreRefused as exc:  # never published unredacted: set aside instead
                self.refused[seq] = (record.event_key, f"its redaction was refused: {exc}")
        return out

    # ---------------------------------------------------------------- a post's deletion
    def apply_deletion(self, tombstone: Tombstone) -> EventRecord:
        """Redact every stored copy of the deleted post; the compliance message to publish."""
        at = self.clock()

        def redact(record: EventRecord) -> EventRecord | None:
            return redact_post(record, tombstone.post_id, tombstone.deleted_by, at)

        copies = []
        for key in self._copies(tombstone.post_id):
            try:
                if self._rewrite(key, [redact]) is not None:
                    copies.append(key)
            except StoreRefused as exc:  # the other copies are redacted, the notice goes out; this one is reported
                self.refused[f"copy:{key}"] = (key, f"redacting deleted post {tombstone.post_id} was refused: {exc}")
        self.counts[M.POSTS_REDACTED] += 1
        self.log.info("post deleted: stored copies redacted", extra={
            "post_id": tombstone.post_id, "copies": len(copies), "deletion": tombstone.deleted_by})
        return deletion_notice(tombstone, copies)

    def _copies(self, post_id: str) -> list[str]:
        """Event keys of every stored copy of the post: the ByPost index, never a Scan."""
        keys: dict[str, None] = {}
        for item in self._query(IndexName=BY_POST_INDEX, KeyConditionExpression="post_id = :p",
                                ExpressionAttributeValues={":p": {"S": post_id}}):
            keys[item["ref_of"]["S"] if "ref_of" in item else item["pk"]["S"]] = None
        return list(keys)

    # ---------------------------------------------------------------- a user's revocation
    def apply_revocation(self, revoke: EventRecord) -> None:
        """With PurgeOnRevoke: mark the user revoked, then redact their private events up to then."""
        if not (self.purge_on_revoke and revoke.event_type == OAUTH_REVOKE and revoke.user_id):
            return
        user, revoked_at = revoke.user_id, iso(revoke.occurred_at or revoke.received_at)
        # The marker first: a private event published from now on is checked against it (prepare).
        conditional_write(lambda: self.store.ddb.update_item(
            TableName=self.store.table, Key={"pk": {"S": REVOKED_USER + user}},
            UpdateExpression="SET revoked_at = :t, revoked_by = :k, expires_at = :e",
            ConditionExpression="attribute_not_exists(revoked_at) OR revoked_at < :t",
            ExpressionAttributeValues={":t": {"S": revoked_at}, ":k": {"S": revoke.event_key},
                                       ":e": expiry(self.clock(), self.store.retention_days + COMPLIANCE_MARGIN_DAYS)}),
            self.store.table)
        at, before = self.clock(), self.counts[M.USER_EVENTS_PURGED]
        for item in self._query(IndexName=BY_USER_INDEX, KeyConditionExpression="user_key = :u AND ts <= :t",
                                ExpressionAttributeValues={":u": {"S": user}, ":t": {"S": revoked_at}}):
            if is_purged_on_revoke(item["event_type"]["S"]):
                self._rewrite(item["pk"]["S"], [lambda r: redact_user_event(r, revoke.event_key, at)])
        self.log.info("user revoked the app: private events purged", extra={
            "user_id": user, "purged": self.counts[M.USER_EVENTS_PURGED] - before, "revocation": revoke.event_key})

    # ---------------------------------------------------------------- DynamoDB
    def _rewrite(self, key: str, changes: list[Change], fallback: EventRecord | None = None) -> EventRecord | None:
        """Apply ``changes`` to the stored record ``key`` and return it as stored now.

        Read-modify-write, conditional on the record being unchanged meanwhile (two deletions may
        redact one record at once): the item's ``rev`` counts its rewrites. The whole item is put
        again rather than updated, and the condition names a number, not the old record: a request
        carrying both an old and a new record of a few hundred KB, or an update of a large
        attribute, would be refused as too large, so a large record could never be redacted. An
        item that is gone (expired) gives ``fallback`` changed, or None.
        """
        for _ in range(REWRITE_ATTEMPTS):
            item = self._aws("GetItem", lambda: self.store.ddb.get_item(
                TableName=self.store.table, Key={"pk": {"S": key}}, ConsistentRead=True).get("Item"))
            current = decode_record(item["record"]["B"]) if item else fallback
            if current is None:
                return None
            updated = current
            for change in changes:
                updated = change(updated) or updated
            if item is None or updated is current:
                return updated
            new = updated.redactions[len(current.redactions):]
            latest = new[-1]
            revision = item.get("rev")
            put: dict[str, Any] = {
                "TableName": self.store.table,
                "Item": {**item, "record": {"B": encode_record(updated)}, "redacted_at": {"S": iso(latest.at)},
                         "redaction_reason": {"S": latest.reason.value}, "redacted_by": {"S": latest.by},
                         "rev": {"N": str(int(revision["N"]) + 1 if revision else 1)}},
                "ConditionExpression": "attribute_exists(pk) AND " + (
                    "rev = :rev" if revision else "attribute_not_exists(rev)")}
            if revision:
                put["ExpressionAttributeValues"] = {":rev": revision}
            if conditional_write(lambda put=put: self.store.ddb.put_item(**put), self.store.table):
                for redaction in new:
                    self.counts[M.COPIES_REDACTED if redaction.reason is RedactionReason.POST_DELETED
                                else M.USER_EVENTS_PURGED] += 1
                return updated
        raise StoreUnavailable(f"{key}: the record kept changing while it was being redacted")

    def _put_references(self, pairs: list[tuple[EventRecord, str]]) -> None:
        items = [{"pk": {"S": f"{POST_REF}{post}#{record.event_key}"}, "post_id": {"S": post},
                  "ref_of": {"S": record.event_key},
                  "expires_at": expiry(record.received_at, self.store.retention_days)} for record, post in pairs]
        for start in range(0, len(items), BATCH_WRITE):
            request = {self.store.table: [{"PutRequest": {"Item": item}} for item in items[start:start + BATCH_WRITE]]}
            for attempt in range(UNPROCESSED_RETRIES):
                request = self._aws("BatchWriteItem", lambda r=request: self.store.ddb.batch_write_item(
                    RequestItems=r)).get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 1))
            if request:
                raise StoreUnavailable(f"BatchWriteItem on {self.store.table} left items unprocessed")

    def _get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET):
            request: dict[str, Any] = {self.store.table: {
                "Keys": [{"pk": {"S": key}} for key in keys[start:start + BATCH_GET]], "ConsistentRead": True}}
            for attempt in range(UNPROCESSED_RETRIES):
                response = self._aws("BatchGetItem", lambda r=request: self.store.ddb.batch_get_item(RequestItems=r))
                found |= {item["pk"]["S"]: item for item in response.get("Responses", {}).get(self.store.table, [])}
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 1))
            if request:
                raise StoreUnavailable(f"BatchGetItem on {self.store.table} left keys unprocessed")
        return found

    def _query(self, **query: Any) -> Iterator[dict[str, Any]]:
        pages = iter(self.store.ddb.get_paginator("query").paginate(TableName=self.store.table, **query))
        while True:
            page = self._aws("Query", lambda: next(pages, None))
            if page is None:
                return
            yield from page.get("Items", [])

    def _aws(self, operation: str, call: Callable[[], Any]) -> Any:
        """One DynamoDB call; a refusal is StoreRefused (set aside), any other failure StoreUnavailable
        (the publisher retries the batch)."""
        try:
            return call()
        except Exception as exc:
            raise aws_failure(exc, f"{operation} on {self.store.table}") from exc

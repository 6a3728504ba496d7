"""The event store (DynamoDB, deduplicated) and the state table (quarantine, control messages).

Event items are small on purpose (DynamoDB bills writes per KB): the canonical record is
stored zlib-compressed (with a preset dictionary, record_dictionary.py) in one binary attribute,
beside the few plain attributes the indexes, the scans and the stream need. One conditional
``PutItem`` per event is both the dedupe check and the write; the table's stream then carries each
*new* event (and nothing for a duplicate) to the publisher.

Item layout (events table):
  pk          S  event key (EventRecord.event_key)
  user_key    S  the subscribed user id, with the ByUser index on (UserIndex/PurgeOnRevoke); its partition
  ts          S  ISO-8601 UTC of occurred_at (received_at when X gives no time), beside user_key; its sort key
  uid         S  the subscribed user id, with the index off (no index reads it; by-user Scans filter on it)
  event_type  S, source S, received_at S (what Scans and the ByUser projection read)
  expires_at  N  epoch seconds; DynamoDB TTL (RetentionDays)
  record      B  zlib(JSON of the EventRecord), preset dictionary named in its header (decompress_record)
  post_id     S  the event's own post (normalize.post_ids); ByPost index partition (absent for non-posts)
  redacted_at S, redaction_reason S, redacted_by S: the latest redaction (compliance.py), when there is one
  rev         N  how many times compliance.py rewrote the record (its optimistic lock), when it did

The table also holds a few items that are not events: no ``record``, so the publisher never
publishes them, and no ``user_key``/``uid``/``received_at``, so the ByUser index and scans skip them
(compliance.py explains what each is for):
  deleted-post#<post_id>          a tombstone: X said the post is deleted (written by intake)
  post-ref#<post_id>#<event_key>  ``post_id`` (ByPost) and ``ref_of``: the event embeds a copy of the post
  revoked-user#<user_id>          the user revoked the app; their private events are purged (PurgeOnRevoke)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from xrelay.aws import client, error_code
from xrelay.events.bounds import bounded_key, safe_text
from xrelay.events.models import ControlMessage, EventRecord
from xrelay.events.normalize import deleted_post_id, post_ids
from xrelay.storage import record_dictionary

BY_USER_INDEX = "ByUser"
BY_POST_INDEX = "ByPost"
# An event's user id when it is stored with the ByUser index off (UserIndex=false): not an index
# key, so it costs no index write; by-user Scans filter on it (and on user_key, for events stored
# while the index was on).
UNINDEXED_USER = "uid"
TOMBSTONE, POST_REF, REVOKED_USER = "deleted-post#", "post-ref#", "revoked-user#"
# Tombstones and revocation markers outlive the events they guard by this much: a copy X delivers
# late (a replay reaches 24 hours back, retries come within minutes) must still find them.
COMPLIANCE_MARGIN_DAYS = 2
# DynamoDB's item limit is 400 KB; leave room for the other attributes.
MAX_RECORD_BYTES = 380_000
# Stored records: zlib at its best level (records are small; the CPU is a few microseconds more),
# with a preset dictionary up to this size of JSON (compress_record). Below the size a message
# takes before it travels as a pointer (publisher.SQS_MAX_BYTES), so pointed-to records are plain zlib.
RECORD_LEVEL = 9
DICTIONARY_MAX_BYTES = 64_000
# A quarantined delivery's compressed body is split into items of at most this many bytes, so
# a delivery of any size API Gateway accepts (10 MB) is kept whole.
QUARANTINE_PART_BYTES = 350_000
QUARANTINE, QUARANTINE_PART, USER, DESIRED = "quarantine", "quarantine-part", "user", "desired"
WEBHOOK, WEBHOOK_OUTAGE = "webhook", "webhook-outage"
RECONCILE = "reconcile"
# What the reconcile's handler returns that `xrelay status` reads back (StateStore.record_reconcile_run).
RECONCILE_RUN_FIELDS = ("ok", "error", "idle", "desired", "actual", "drift", "webhook_valid", "needs_authorization",
                        "revoked", "rate_limited", "out_of_time", "failed")


class StoreUnavailable(Exception):
    """DynamoDB failed (throttling, outage, permissions): the caller must answer 5xx."""


class StoreRefused(StoreUnavailable):
    """DynamoDB refused the request itself (validation, item or key too large): the same request
    fails the same way every time, so retrying cannot help. Callers that can set the item aside
    (intake's quarantine, the publisher's failure queue) catch it first; anywhere else it is
    still a failure (a subclass of :class:`StoreUnavailable`)."""


# Error codes that say "this request can never succeed", as opposed to "not now".
REFUSAL_CODES = frozenset({"ValidationException", "SerializationException"})


class RecordUnstorable(ValueError):
    """An event whose record cannot be encoded for the store (retrying cannot help)."""


class RecordTooLarge(RecordUnstorable):
    """An event whose compressed record exceeds DynamoDB's item limit."""


def aws_failure(exc: BaseException, what: str) -> StoreUnavailable:
    """The exception to raise for a failed DynamoDB call: refused (deterministic) or unavailable."""
    code = error_code(exc)
    kind = StoreRefused if code in REFUSAL_CODES else StoreUnavailable
    return kind(f"{what} failed: {code or type(exc).__name__}")


def conditional_write(write: Callable[[], Any], table: str) -> bool:
    """Run a conditional DynamoDB write: True if applied, False if its condition failed.

    A request DynamoDB refuses (validation, too large) is :class:`StoreRefused`; any other failure
    (throttling, outage, permissions) is :class:`StoreUnavailable`, which the caller turns into a
    5xx so that X retries.
    """
    try:
        write()
        return True
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise aws_failure(exc, f"write to {table}") from exc


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode_record(record: EventRecord) -> bytes:
    try:
        text = record.model_dump_json()
    except ValueError as exc:  # pydantic's serialisation errors; normalize bounds what causes them
        raise RecordUnstorable(f"{safe_text(record.event_key, 200)}: cannot be serialised "
                               f"({safe_text(str(exc), 200)})") from exc
    blob = compress_record(text.encode("utf-8"))
    if len(blob) > MAX_RECORD_BYTES:
        raise RecordTooLarge(f"{safe_text(record.event_key, 200)}: {len(blob)} bytes compressed")
    return blob


def compress_record(data: bytes) -> bytes:
    """zlib, with the current preset dictionary (record_dictionary.py) for a record that can use it.

    The dictionary saves about 40% on a typical small record; past ``DICTIONARY_MAX_BYTES`` it saves
    next to nothing (it only reaches the first 32 KB) and such records stay plain zlib, which is
    also what a pointer message's reader (the consumer package's ``resolve``) decodes.
    """
    if len(data) > DICTIONARY_MAX_BYTES:
        return zlib.compress(data, RECORD_LEVEL)
    packer = zlib.compressobj(RECORD_LEVEL, zdict=record_dictionary.CURRENT)
    return packer.compress(data) + packer.flush()


def decompress_record(blob: bytes) -> bytes:
    """The record's JSON from its stored bytes, whichever dictionary (or none) compressed it.

    zlib's header says whether a preset dictionary was used (FDICT, bit 5 of the second byte) and,
    in the next four bytes, which one (its Adler-32): records written before a dictionary
    existed, or with an older one, still decode.
    """
    if len(blob) < 6 or not blob[1] & 0x20:
        return zlib.decompress(blob)
    dictionary_id = int.from_bytes(blob[2:6], "big")
    zdict = record_dictionary.DICTIONARIES.get(dictionary_id)
    if zdict is None:
        raise ValueError(f"record compressed with an unknown preset dictionary (Adler-32 {dictionary_id:08x})")
    unpacker = zlib.decompressobj(zdict=zdict)
    data = unpacker.decompress(blob) + unpacker.flush()
    if not unpacker.eof:
        raise zlib.error("truncated record")
    return data


def decode_record(blob: bytes) -> EventRecord:
    return EventRecord.model_validate_json(decompress_record(blob))


def event_item(record: EventRecord, retention_days: int, index_users: bool = True) -> dict[str, Any]:
    """The event's item: the compressed record and only the plain attributes something reads.

    With ``index_users`` an event that has a user gets ``user_key`` and ``ts``, the ``ByUser``
    index's keys; without, it gets ``uid`` instead (no index reads it, so ByUser, a sparse index,
    holds no entry and costs no write unit), which a by-user Scan filters on (``EventStore.by_user``).
    The record itself says everything else (known_type, replay, ...): no plain copy is kept of what
    nothing queries, since every byte past each 1 KB costs a write unit.
    """
    item: dict[str, Any] = {
        "pk": {"S": record.event_key},
        "event_type": {"S": record.event_type},
        "source": {"S": record.source.value},
        "received_at": {"S": iso(record.received_at)},
        "expires_at": expiry(record.received_at, retention_days),
        "record": {"B": encode_record(record)},
    }
    if record.user_id and index_users:
        item["user_key"] = {"S": record.user_id}
        item["ts"] = {"S": iso(record.occurred_at or record.received_at)}
    elif record.user_id:
        item[UNINDEXED_USER] = {"S": record.user_id}
    own_post = post_ids(record).own
    if own_post:
        item["post_id"] = {"S": own_post}
    return item


def expiry(start: datetime, days: int) -> dict[str, str]:
    return {"N": str(int((start + timedelta(days=days)).timestamp()))}


@dataclass
class EventStore:
    table: str
    retention_days: int
    ddb: Any = None
    index_users: bool = True  # the UserIndex Parameter: see event_item

    def __post_init__(self) -> None:
        self.ddb = self.ddb or client("dynamodb")

    def put_new(self, record: EventRecord) -> bool:
        """Store ``record`` unless its key exists. True if new, False if a duplicate.

        Raises :class:`RecordUnstorable` or :class:`StoreRefused` (the caller quarantines the
        delivery: retrying cannot help) or :class:`StoreUnavailable` (answer 5xx: a retry may succeed).
        """
        # Built before the write: too large is not "unavailable".
        item = event_item(record, self.retention_days, self.index_users)
        return conditional_write(lambda: self.ddb.put_item(
            TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"), self.table)

    def record_deletion(self, deletion: EventRecord, now: datetime) -> bool:
        """Write the tombstone of the post ``deletion`` names. False when it exists already (a
        redelivery, or another subscription's copy of the deletion) or the deletion names no post.

        The tombstone's stream record is what makes the publisher redact the post's stored copies
        and tell consumers (compliance.py); until it expires, every copy stored later is redacted
        before it is published.
        """
        post_id = deleted_post_id(deletion)
        if post_id is None:
            return False
        item: dict[str, Any] = {
            "pk": {"S": TOMBSTONE + post_id},
            "deleted_post": {"S": post_id},
            "deleted_at": {"S": iso(deletion.occurred_at or deletion.received_at)},
            "deleted_by": {"S": deletion.event_key},
            "delivery_id": {"S": deletion.delivery_id},
            "noted_at": {"S": iso(now)},
            "expires_at": expiry(now, self.retention_days + COMPLIANCE_MARGIN_DAYS),
        }
        if deletion.user_id:
            item["deleted_for"] = {"S": deletion.user_id}
        return conditional_write(lambda: self.ddb.put_item(
            TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"), self.table)

    def get(self, event_key: str) -> EventRecord | None:
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": event_key}}, ConsistentRead=True).get("Item")
        return decode_record(item["record"]["B"]) if item else None

    def received_between(self, since: datetime, until: datetime) -> Iterator[EventRecord]:
        """Every event received in [since, until], in no particular order.

        A Scan (no index covers received_at): for repairs after a publish failure, not a hot path.
        """
        paginator = self.ddb.get_paginator("scan")
        for page in paginator.paginate(
                TableName=self.table, ConsistentRead=True, FilterExpression="received_at BETWEEN :a AND :b",
                ExpressionAttributeValues={":a": {"S": iso(since)}, ":b": {"S": iso(until)}}):
            for item in page.get("Items", []):
                yield decode_record(item["record"]["B"])

    def by_user(self, user_id: str, since: datetime | None = None, until: datetime | None = None,
                limit: int = 100) -> Iterator[EventRecord]:
        """A subscribed user's events in time order, full records: a Query of the ByUser index, or,
        with the index off (``index_users`` False: UserIndex=false), a Scan (:meth:`scan_user`)."""
        if not self.index_users:
            yield from self.scan_user(user_id, since, until, limit)
            return
        cond = "user_key = :u"
        values: dict[str, Any] = {":u": {"S": user_id}}
        if since and until:
            cond += " AND ts BETWEEN :a AND :b"
            values.update({":a": {"S": iso(since)}, ":b": {"S": iso(until)}})
        elif since:
            cond += " AND ts >= :a"
            values[":a"] = {"S": iso(since)}
        elif until:
            cond += " AND ts <= :b"
            values[":b"] = {"S": iso(until)}
        paginator = self.ddb.get_paginator("query")
        seen = 0
        for page in paginator.paginate(TableName=self.table, IndexName=BY_USER_INDEX,
                                       KeyConditionExpression=cond, ExpressionAttributeValues=values):
            keys = [item["pk"]["S"] for item in page.get("Items", [])]
            for key in keys:
                record = self.get(key)
                if record:
                    yield record
                    seen += 1
                    if seen >= limit:
                        return

    def scan_user(self, user_id: str, since: datetime | None = None, until: datetime | None = None,
                  limit: int = 100) -> list[EventRecord]:
        """A subscribed user's events in time order, without the ByUser index: a Scan of the whole table.

        It filters on ``uid`` (events stored with the index off) or ``user_key`` (stored while it
        was on), so only that user's items come back, but DynamoDB bills a Scan for every item it
        reads, about 0.5 read unit per 4 KB stored (:func:`scan_user_notice` says how much).
        """
        paginator = self.ddb.get_paginator("scan")
        found = []
        for page in paginator.paginate(
                TableName=self.table, FilterExpression="#uid = :u OR user_key = :u", ProjectionExpression="pk, #r",
                ExpressionAttributeNames={"#uid": UNINDEXED_USER, "#r": "record"},
                ExpressionAttributeValues={":u": {"S": user_id}}):
            for item in page.get("Items", []):
                record = decode_record(item["record"]["B"])
                when = record.occurred_at or record.received_at
                if (since is None or when >= since) and (until is None or when <= until):
                    found.append(record)
        found.sort(key=lambda r: (r.occurred_at or r.received_at, r.event_key))  # the index's order
        return found[:limit]


def users_indexed(parameters: dict[str, str]) -> bool:
    """Whether a stack with these Parameter values indexes events by user (template Condition IndexUsers).

    A stack deployed before UserIndex existed has no such Parameter: it indexed every event.
    """
    return parameters.get("UserIndex", "true") == "true" or parameters.get("PurgeOnRevoke") == "true"


def scan_user_notice(ddb: Any, table: str) -> str:
    """One line for the operator: the ByUser index is off, what reading by user costs instead, how to turn it on."""
    try:  # DynamoDB refreshes these figures about every six hours
        described = ddb.describe_table(TableName=table)["Table"]
        size = f"about {int(described.get('TableSizeBytes', 0)) / 1e6:.1f} MB, {described.get('ItemCount', 0)} items, "
    except Exception:  # a caller without dynamodb:DescribeTable still gets the notice
        size = ""
    return (f"the ByUser index is off (UserIndex=false): reading by user scans the whole events table ({size}"
            "about 0.5 read unit per 4 KB stored, each time); deploy with UserIndex=true to index new events by user")


@dataclass
class StateStore:
    """Everything that is not an event: quarantined deliveries, control messages.

    Key layout: ``pk`` names the collection (``quarantine``, ``replay_job_status``), ``sk`` the item.
    """

    table: str
    ddb: Any = None

    def __post_init__(self) -> None:
        self.ddb = self.ddb or client("dynamodb")

    def _put(self, item: dict[str, Any], once: bool = True) -> bool:
        """PutItem; with ``once``, only if the item is new (False when it already exists)."""
        condition = {"ConditionExpression": "attribute_not_exists(sk)"} if once else {}
        return conditional_write(lambda: self.ddb.put_item(TableName=self.table, Item=item, **condition), self.table)

    # -- quarantine: signed deliveries xrelay could not (fully) normalise, kept raw for reprocessing
    def quarantine(self, delivery_id: str, raw_body: bytes, reason: str, received_at: datetime) -> bool:
        """Keep a signed delivery raw. False if it was already kept (X redelivered it)."""
        blob = zlib.compress(raw_body, 6)
        item: dict[str, Any] = {
            "pk": {"S": QUARANTINE},
            "sk": {"S": delivery_id},
            "status": {"S": "pending"},
            "reason": {"S": safe_text(reason, 2000)},
            "received_at": {"S": iso(received_at)},
        }
        if len(blob) <= QUARANTINE_PART_BYTES:
            item["body"] = {"B": blob}
        else:  # parts first (idempotent overwrites): the head item is what makes the delivery visible
            parts = [blob[i:i + QUARANTINE_PART_BYTES] for i in range(0, len(blob), QUARANTINE_PART_BYTES)]
            for index, part in enumerate(parts):
                self._put({"pk": {"S": QUARANTINE_PART}, "sk": {"S": f"{delivery_id}#{index:05d}"},
                           "body": {"B": part}}, once=False)
            item["parts"] = {"N": str(len(parts))}
        return self._put(item)

    def _quarantined_body(self, item: dict[str, Any]) -> bytes:
        if "body" in item:
            return zlib.decompress(item["body"]["B"])
        delivery = item["sk"]["S"]
        paginator = self.ddb.get_paginator("query")
        parts = [part["body"]["B"]
                 for page in paginator.paginate(
                     TableName=self.table, ConsistentRead=True,
                     KeyConditionExpression="pk = :p AND begins_with(sk, :d)",
                     ExpressionAttributeValues={":p": {"S": QUARANTINE_PART}, ":d": {"S": f"{delivery}#"}})
                 for part in page.get("Items", [])]
        if len(parts) != int(item["parts"]["N"]):
            raise StoreUnavailable(f"quarantined delivery {delivery[:16]} has {len(parts)} of "
                                   f"{item['parts']['N']} parts")
        return zlib.decompress(b"".join(bytes(p) for p in parts))

    def quarantined(self, include_done: bool = False) -> Iterator[dict[str, Any]]:
        paginator = self.ddb.get_paginator("query")
        for page in paginator.paginate(TableName=self.table, KeyConditionExpression="pk = :p",
                                       ExpressionAttributeValues={":p": {"S": QUARANTINE}}):
            for item in page.get("Items", []):
                if include_done or item["status"]["S"] == "pending":
                    yield {
                        "delivery_id": item["sk"]["S"],
                        "status": item["status"]["S"],
                        "reason": item["reason"]["S"],
                        "received_at": item["received_at"]["S"],
                        "body": self._quarantined_body(item),
                        "attempts": int(item.get("attempts", {}).get("N", "0")),
                        **{name: item[name]["S"] for name in ("discarded_by", "discarded_at", "discard_reason")
                           if name in item},
                    }

    def mark_quarantine(self, delivery_id: str, status: str, reason: str | None = None) -> None:
        expr = "SET #s = :s, attempts = if_not_exists(attempts, :z) + :one, updated_at = :t"
        values = {":s": {"S": status}, ":z": {"N": "0"}, ":one": {"N": "1"}, ":t": {"S": iso(datetime.now(UTC))}}
        if reason:
            expr += ", reason = :r"
            values[":r"] = {"S": safe_text(reason, 2000)}
        self.ddb.update_item(TableName=self.table, Key={"pk": {"S": QUARANTINE}, "sk": {"S": delivery_id}},
                             UpdateExpression=expr, ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues=values)

    def discard_quarantined(self, delivery_id: str, by: str, why: str, at: datetime) -> bool:
        """Give up on a pending quarantined delivery: kept on record (body too) as discarded, by whom and why.

        False when no pending delivery has this id (unknown, reprocessed or already discarded).
        """
        return conditional_write(lambda: self.ddb.update_item(
            TableName=self.table, Key={"pk": {"S": QUARANTINE}, "sk": {"S": delivery_id}},
            UpdateExpression="SET #s = :d, discarded_by = :by, discard_reason = :why, discarded_at = :t, "
                             "updated_at = :t",
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":d": {"S": "discarded"}, ":pending": {"S": "pending"}, ":by": {"S": by[:200]},
                                       ":why": {"S": why[:2000]}, ":t": {"S": iso(at)}}), self.table)

    # -- users: authorisation status for the reconcile (credentials live in Secrets Manager, never here)
    def record_revocation(self, user_id: str, revoked_at: datetime, event_key: str) -> bool:
        """Mark ``user_id`` revoked, unless the user authorised the app again after ``revoked_at``.

        Idempotent (a redelivered or replayed revoke sets the same values). False when the revoke
        is older than the latest authorisation: a replay must not undo a fresh authorisation.
        """
        when = iso(revoked_at)
        return conditional_write(lambda: self.ddb.update_item(
            TableName=self.table, Key={"pk": {"S": USER}, "sk": {"S": user_id}},
            UpdateExpression="SET #s = :revoked, revoked_at = :t, revoke_event = :k, updated_at = :now",
            ConditionExpression="attribute_not_exists(authorized_at) OR authorized_at < :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":revoked": {"S": "revoked"}, ":t": {"S": when}, ":k": {"S": event_key},
                                       ":now": {"S": iso(datetime.now(UTC))}}), self.table)

    def mark_authorized(self, user_id: str, at: datetime) -> None:
        self.ddb.update_item(
            TableName=self.table, Key={"pk": {"S": USER}, "sk": {"S": user_id}},
            UpdateExpression="SET #s = :ok, authorized_at = :t, updated_at = :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":ok": {"S": "authorized"}, ":t": {"S": iso(at)}})

    def users(self) -> dict[str, dict[str, str]]:
        """user id -> {status, authorized_at?, revoked_at?, ...} for every user xrelay has heard of."""
        paginator = self.ddb.get_paginator("query")
        out: dict[str, dict[str, str]] = {}
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True, KeyConditionExpression="pk = :p",
                                       ExpressionAttributeValues={":p": {"S": USER}}):
            for item in page.get("Items", []):
                out[item["sk"]["S"]] = {k: v["S"] for k, v in item.items() if k not in ("pk", "sk") and "S" in v}
        return out

    # -- the desired state of X's side (`xrelay subscriptions apply`), read by the reconcile
    def put_desired(self, state_json: str, source: str, applied_at: datetime) -> None:
        self.ddb.put_item(TableName=self.table, Item={
            "pk": {"S": DESIRED}, "sk": {"S": "current"}, "state": {"S": state_json},
            "source": {"S": source[:500]}, "applied_at": {"S": iso(applied_at)}})

    def desired(self) -> dict[str, str] | None:
        """{state (JSON), source, applied_at} of the last apply, or None before the first."""
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": DESIRED}, "sk": {"S": "current"}},
                                 ConsistentRead=True).get("Item")
        return {k: item[k]["S"] for k in ("state", "source", "applied_at")} if item else None

    # -- webhook health, written by the reconcile: when X could not deliver to us (issue: replay)
    def webhook_health(self, url: str) -> dict[str, str] | None:
        """{webhook_id?, status, checked_at, last_valid_at?, invalid_since?} of the declared webhook URL."""
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": WEBHOOK}, "sk": {"S": url}},
                                 ConsistentRead=True).get("Item")
        return {k: v["S"] for k, v in item.items() if k not in ("pk", "sk") and "S" in v} if item else None

    def record_webhook_check(self, url: str, webhook_id: str | None, status: str, at: datetime,
                             reason: str = "") -> dict[str, str] | None:
        """Record what the reconcile saw of the webhook: ``valid``, ``invalid`` or ``missing``.

        Every stretch during which the webhook was not valid becomes an outage item
        (``pk=webhook-outage``, ``sk=<from>``) that a replay can cover. It starts at the last time
        the webhook was seen valid (X may have stopped delivering any time after that; the first
        check ever starts it "now"), and is closed (``to``) by the first check that sees it valid
        again. Returns the outage just closed, if any.
        """
        health = self.webhook_health(url) or {}
        when = iso(at)
        values: dict[str, Any] = {":s": {"S": status}, ":t": {"S": when}}
        sets = ["#s = :s", "checked_at = :t"]
        removes: list[str] = []
        if webhook_id:
            sets.append("webhook_id = :w")
            values[":w"] = {"S": webhook_id}
        closed: dict[str, str] | None = None
        opened_at = health.get("invalid_since")
        if status == "valid":
            sets.append("last_valid_at = :t")
            if opened_at:
                removes.append("invalid_since")
                self.ddb.update_item(
                    TableName=self.table, Key={"pk": {"S": WEBHOOK_OUTAGE}, "sk": {"S": opened_at}},
                    UpdateExpression="SET #to = :t, webhook_id = if_not_exists(webhook_id, :w)",
                    ExpressionAttributeNames={"#to": "to"},
                    ExpressionAttributeValues={":t": {"S": when}, ":w": {"S": webhook_id or ""}})
                closed = {"from": opened_at, "to": when}
        elif not opened_at and (status != "missing" or health.get("last_valid_at")):
            # (A webhook never seen before that is missing is a first registration, not an outage.)
            start = health.get("last_valid_at") or when
            sets.append("invalid_since = :f")
            values[":f"] = {"S": start}
            outage: dict[str, Any] = {"pk": {"S": WEBHOOK_OUTAGE}, "sk": {"S": start}, "from": {"S": start},
                                      "webhook_url": {"S": url}, "reason": {"S": (reason or status)[:500]}}
            if webhook_id:
                outage["webhook_id"] = {"S": webhook_id}
            self._put(outage)
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        self.ddb.update_item(TableName=self.table, Key={"pk": {"S": WEBHOOK}, "sk": {"S": url}},
                             UpdateExpression=expression, ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues=values)
        return closed

    def webhook_outages(self) -> list[dict[str, str]]:
        """Every recorded stretch the webhook was invalid or missing, oldest first; ``to`` absent while open."""
        paginator = self.ddb.get_paginator("query")
        return [{k: v["S"] for k, v in item.items() if k not in ("pk", "sk") and "S" in v}
                for page in paginator.paginate(TableName=self.table, ConsistentRead=True,
                                               KeyConditionExpression="pk = :p",
                                               ExpressionAttributeValues={":p": {"S": WEBHOOK_OUTAGE}})
                for item in page.get("Items", [])]

    # -- control messages (replay_job_status): recorded once per job and state
    def record_control(self, message: ControlMessage) -> bool:
        body = message.body
        ident = "#".join(str(body.get(k, "-")) for k in ("job_id", "job_state")) if message.kind == \
            "replay_job_status" else message.delivery_id
        return self._put({
            "pk": {"S": message.kind},
            "sk": {"S": bounded_key(ident)},  # a sort key holds 1024 bytes at most
            "received_at": {"S": iso(message.received_at)},
            "delivery_id": {"S": message.delivery_id},
            "body": {"S": json.dumps(body, separators=(",", ":"))},
        })

    def controls(self, kind: str) -> list[dict[str, Any]]:
        items = self.ddb.query(TableName=self.table, KeyConditionExpression="pk = :p",
                               ExpressionAttributeValues={":p": {"S": kind}}).get("Items", [])
        return [{"sk": i["sk"]["S"], "received_at": i["received_at"]["S"], "body": json.loads(i["body"]["S"])}
                for i in items]

    # -- `xrelay teardown`: the desired state stays stored (for the record, and to resume), but paused
    def mark_torn_down(self, at: datetime) -> bool:
        """Mark the stored desired state as torn down, so the reconcile idles; False if none is stored.

        ``put_desired`` replaces the whole item, so the next ``xrelay subscriptions apply`` clears it.
        """
        return conditional_write(lambda: self.ddb.update_item(
            TableName=self.table, Key={"pk": {"S": DESIRED}, "sk": {"S": "current"}},
            UpdateExpression="SET torn_down_at = :t", ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":t": {"S": iso(at)}}), self.table)

    def torn_down_at(self) -> str | None:
        """When ``xrelay teardown`` marked the desired state (None: never, or applied again since)."""
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": DESIRED}, "sk": {"S": "current"}},
                                 ConsistentRead=True, ProjectionExpression="torn_down_at").get("Item")
        return item["torn_down_at"]["S"] if item and "torn_down_at" in item else None

    def forget_webhook_health(self, url: str) -> None:
        """Drop what the reconcile knew of a webhook deleted on purpose: its next registration (after
        an apply) is then a first one, not the end of an outage to replay, and the replay stops
        looking for its old id. Recorded outages stay."""
        self.ddb.delete_item(TableName=self.table, Key={"pk": {"S": WEBHOOK}, "sk": {"S": url}})

    # -- the reconcile's last run, so `xrelay status` can judge it without calling X
    def record_reconcile_run(self, at: datetime, outcome: dict[str, Any]) -> None:
        """Overwrite the last run's record (one PutItem per run) with the fields of ``RECONCILE_RUN_FIELDS``."""
        kept = {name: outcome.get(name) for name in RECONCILE_RUN_FIELDS}
        kept["failed"] = (kept["failed"] or [])[:20]  # one line per failed action: keep the item small
        self.ddb.put_item(TableName=self.table, Item={
            "pk": {"S": RECONCILE}, "sk": {"S": "last"}, "at": {"S": iso(at)},
            "run": {"S": json.dumps(kept, separators=(",", ":"), default=str)}})

    def last_reconcile_run(self) -> dict[str, Any] | None:
        """{at, ok, error, idle, desired, actual, drift, ...} of the reconcile's last run, None before the first."""
        item = self.ddb.get_item(TableName=self.table, Key={"pk": {"S": RECONCILE}, "sk": {"S": "last"}},
                                 ConsistentRead=True).get("Item")
        return {"at": item["at"]["S"], **json.loads(item["run"]["S"])} if item else None

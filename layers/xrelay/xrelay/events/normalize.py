"""Turn one signed delivery (a parsed JSON object) into canonical event records.

X sends several shapes to one webhook; :func:`normalize` recognises them by their keys:

* XAA: ``{"data": {"event_type", "event_uuid", "filter", "tag"?, "payload", "includes"?}}``
* filtered stream: ``{"data": <post>, "matching_rules": [...], "includes"?}``
* AAA (v2 and legacy enterprise): ``for_user_id`` plus any ``*_events`` arrays (one record per
  item), ``user_event`` revokes (no ``for_user_id``), extra keys such as ``users``/``apps``
* control messages: ``replay_job_status`` (recorded, not an event)
* any of these may carry ``"meta": {"replay": true}`` when sent by a replay job.

Event keys (the dedupe identity, documented in docs/event-record.md) use only identifiers X
gives as strings, never a post's JSON-number ``id``, and never anything that changes between
redeliveries (counters, user profiles).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from xrelay.events.bounds import MAX_ID_CHARS, MAX_NESTING, bounded_key, nesting
from xrelay.events.event_types import (
    AAA_EVENT_ARRAYS,
    POST_DELETE,
    XAA_POST_EVENT_TYPES,
    canonical_xaa_type,
    is_known_xaa_type,
)
from xrelay.events.models import ControlMessage, EventRecord, Source, Subscription

CONTROL_KEYS = ("replay_job_status",)
# A control message is a few small fields; the state table keeps its body as one string.
MAX_CONTROL_BYTES = 16_384
# X's type names are short words; anything longer is not a type (it would be a metric dimension too).
MAX_TYPE_CHARS = 128


class UnrecognisedDelivery(ValueError):
    """The delivery matches no shape X is known to send."""


class EventError(ValueError):
    """One event inside a delivery cannot be normalised (no identity, wrong type...)."""


@dataclass
class NormalizedDelivery:
    events: list[EventRecord] = field(default_factory=list)
    controls: list[ControlMessage] = field(default_factory=list)
    # Problems with individual events: the delivery must be kept raw (quarantined) so that a
    # fixed xrelay can reprocess it; the events that did normalise are stored meanwhile.
    errors: list[str] = field(default_factory=list)


def delivery_id(raw_body: bytes) -> str:
    return hashlib.sha256(raw_body).hexdigest()


def normalize(doc: dict[str, Any], *, delivery: str, received_at: datetime) -> NormalizedDelivery:
    """Classify ``doc`` and build its records. Raises :class:`UnrecognisedDelivery`."""
    if not isinstance(doc, dict):
        raise UnrecognisedDelivery("delivery is not a JSON object")
    out = NormalizedDelivery()
    replay = _is_replay(doc)
    ctx = _Ctx(delivery=delivery, received_at=received_at, replay=replay)

    for key in CONTROL_KEYS:
        if key in doc:
            body = doc[key] if isinstance(doc[key], dict) else {"value": doc[key]}
            if nesting(body) > MAX_NESTING or \
                    len(json.dumps(body, separators=(",", ":")).encode()) > MAX_CONTROL_BYTES:
                out.errors.append(f"{key} is nested deeper than {MAX_NESTING} levels or larger than "
                                  f"{MAX_CONTROL_BYTES} bytes: not recorded")
                continue
            out.controls.append(ControlMessage(kind=key, body=body, received_at=received_at, delivery_id=delivery))
    data = doc.get("data")
    if isinstance(data, dict) and ("event_type" in data or "event_uuid" in data):
        _collect(out, lambda: [_xaa(data, ctx)])
    elif isinstance(data, dict) and "matching_rules" in doc:
        _collect(out, lambda: [_stream(doc, ctx)])
    elif _looks_like_aaa(doc):
        for produce in _aaa(doc, ctx):
            _collect(out, produce)
    elif not (out.controls or out.errors):  # a control message refused above says why itself
        raise UnrecognisedDelivery(
            "delivery matches no known shape (XAA data.event_type, stream data+matching_rules, "
            "AAA for_user_id/*_events/user_event, replay_job_status); top-level keys: "
            + ", ".join(sorted(doc)[:20])
        )
    return out


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Ctx:
    delivery: str
    received_at: datetime
    replay: bool


def _collect(out: NormalizedDelivery, produce) -> None:
    try:
        records = produce()
        for record in records:
            # Refused here, on purpose, rather than by the serialiser when it is stored (bounds.py).
            if nesting(record.event) > MAX_NESTING or nesting(record.context) > MAX_NESTING:
                raise EventError(f"{record.source.value} {record.source_event_type[:MAX_TYPE_CHARS]} event is nested "
                                 f"deeper than {MAX_NESTING} levels")
        out.events.extend(records)
    except EventError as exc:
        out.errors.append(str(exc))
    except Exception as exc:  # a bug of ours: keep the delivery, say what broke, never its content
        out.errors.append(f"{type(exc).__name__} while normalising an event (xrelay bug?)")


def _is_replay(doc: dict[str, Any]) -> bool:
    meta = doc.get("meta")
    return isinstance(meta, dict) and meta.get("replay") in (True, "true", "True", 1)


def _looks_like_aaa(doc: dict[str, Any]) -> bool:
    return "for_user_id" in doc or "user_event" in doc or any(k.endswith("_events") for k in doc)


def _id(value: Any, what: str) -> str:
    """An identifier X gives as a string. Never a JSON number: X's own examples show post ids
    already rounded in the number (``"id": 1924465506158879000`` beside ``"id_str":
    "1924465506158878979"``), so a number could merge two posts into one key."""
    if isinstance(value, str) and value:
        if len(value) > MAX_ID_CHARS:
            raise EventError(f"{what} is longer than {MAX_ID_CHARS} characters: not an identifier X gives")
        return value
    raise EventError(f"{what} is missing or not a string identifier")


def _stamp(value: Any, what: str) -> str:
    """A millisecond timestamp, as X sends it (string or number: ms fit a double exactly)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return value
    raise EventError(f"{what} is missing or not a millisecond timestamp")


def _opt_id(value: Any) -> str | None:
    try:
        return _id(value, "id")
    except EventError:
        return None


def _user_id(user: Any) -> str | None:
    """A v1.1 user object's id: ``id_str`` first (the JSON-number ``id`` may be rounded)."""
    if not isinstance(user, dict):
        return None
    if isinstance(user.get("data"), dict):  # XAA wraps users in {"data": {...}}
        user = user["data"]
    return _opt_id(user.get("id_str")) or _opt_id(user.get("id"))


def parse_time(value: Any) -> datetime | None:
    """X's timestamps in every format it uses; None (never an exception) when unparseable."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        if not isinstance(value, str) or not value:
            return None
        if value.isdigit():
            return parse_time(int(value))
        if value[:4].isdigit():  # ISO 8601, with Z or an offset
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:  # v1.1: "Mon May 19 14:01:46 +0000 2025"
            parsed = datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _first_time(obj: Any, *keys: str) -> datetime | None:
    if not isinstance(obj, dict):
        return None
    for key in keys:
        found = parse_time(obj.get(key))
        if found:
            return found
    return None


def _canonical_filter(flt: dict[str, Any]) -> str:
    if not flt:
        return "-"
    return ",".join(f"{k}={quote(str(flt[k]), safe='')}" for k in sorted(flt))


def _digest(obj: Any) -> str:
    return "sha256-" + hashlib.sha256(
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()[:32]


# --------------------------------------------------------------------------- XAA


def _xaa(data: dict[str, Any], ctx: _Ctx) -> EventRecord:
    raw_type = data.get("event_type")
    source_type = raw_type if isinstance(raw_type, str) and raw_type else "unknown"
    if len(source_type) > MAX_TYPE_CHARS:
        raise EventError(f"XAA data.event_type is longer than {MAX_TYPE_CHARS} characters")
    event_type = canonical_xaa_type(source_type)
    uuid = _id(data.get("event_uuid"), "XAA data.event_uuid")
    flt = data.get("filter") if isinstance(data.get("filter"), dict) else {}
    payload = data.get("payload") if isinstance(data.get("payload"), dict) else {}
    tag = data.get("tag") if isinstance(data.get("tag"), str) else None
    user_id = _opt_id(flt.get("user_id"))
    if user_id is None and event_type == "oauth.revoke":
        user_id = _opt_id(payload.get("user_id"))
    return EventRecord(
        event_key=bounded_key(f"xaa:{event_type}:{_canonical_filter(flt)}:{uuid}"),
        source=Source.XAA,
        event_type=event_type,
        source_event_type=source_type,
        known_type=is_known_xaa_type(event_type),
        user_id=user_id,
        subscription=Subscription(filter=flt, tag=tag),
        occurred_at=_xaa_time(event_type, payload),
        received_at=ctx.received_at,
        replay=ctx.replay,
        delivery_id=ctx.delivery,
        event=data,
        context=None,
    )


def _xaa_time(event_type: str, payload: dict[str, Any]) -> datetime | None:
    if event_type.startswith("dm."):
        dms = payload.get("direct_message_events")
        if isinstance(dms, list) and dms:
            return _first_time(dms[0], "created_timestamp")
    return _first_time(payload, "created_at", "timestamp_ms", "created_at_msec", "date_time", "updated_at",
                       "event_timestamp_ms", "started_at", "ended_at")


# --------------------------------------------------------------------------- filtered stream


def _stream(doc: dict[str, Any], ctx: _Ctx) -> EventRecord:
    post = doc["data"]
    post_id = _id(post.get("id"), "filtered-stream data.id")
    rules = doc.get("matching_rules") if isinstance(doc.get("matching_rules"), list) else []
    return EventRecord(
        event_key=bounded_key(f"stream:post:{post_id}"),
        source=Source.STREAM,
        event_type="stream.post",
        source_event_type="filtered_stream",
        known_type=True,
        user_id=None,
        subscription=Subscription(matching_rules=[r for r in rules if isinstance(r, dict)]),
        occurred_at=_first_time(post, "created_at"),
        received_at=ctx.received_at,
        replay=ctx.replay,
        delivery_id=ctx.delivery,
        event={k: v for k, v in doc.items() if k != "meta"},
        context=None,
    )


# --------------------------------------------------------------------------- AAA


def _aaa(doc: dict[str, Any], ctx: _Ctx) -> Iterator[Any]:
    """Yield one zero-argument producer per event, so one bad item spoils only itself."""
    for_user = _opt_id(doc.get("for_user_id"))
    arrays = [k for k, v in doc.items() if k.endswith("_events") and isinstance(v, list)]
    context = {k: v for k, v in doc.items()
               if k not in arrays and k not in ("for_user_id", "user_event", "meta", *CONTROL_KEYS)}
    for name in arrays:
        for index, item in enumerate(doc[name]):
            yield lambda name=name, index=index, item=item: [
                _aaa_item(name, index, item, for_user, context, ctx)]
    if "user_event" in doc:
        yield lambda: _aaa_user_event(doc["user_event"], context, ctx)
    if not arrays and "user_event" not in doc and for_user is not None:
        # for_user_id with no array at all: a shape X has not documented; keep it whole.
        stable = {k: v for k, v in doc.items() if k != "meta"}  # a replayed copy is the same event
        yield lambda: [_aaa_record(f"aaa:{for_user}:delivery:{_digest(stable)}", "aaa.unknown", "unknown",
                                   False, for_user, doc, context, ctx, None)]


def _aaa_record(key: str, event_type: str, source_type: str, known: bool, user: str | None,
                item: Any, context: dict[str, Any], ctx: _Ctx, when: datetime | None) -> EventRecord:
    return EventRecord(
        event_key=bounded_key(key),
        source=Source.AAA,
        event_type=event_type,
        source_event_type=source_type,
        known_type=known,
        user_id=user,
        subscription=Subscription(for_user_id=user),
        occurred_at=when,
        received_at=ctx.received_at,
        replay=ctx.replay,
        delivery_id=ctx.delivery,
        event=item if isinstance(item, dict) else {"value": item},
        context=context,
    )


def _aaa_item(name: str, index: int, item: Any, for_user: str | None, context: dict[str, Any],
              ctx: _Ctx) -> EventRecord:
    if len(name) > MAX_TYPE_CHARS:
        raise EventError(f"AAA array name longer than {MAX_TYPE_CHARS} characters")
    if for_user is None:
        raise EventError(f"AAA {name}[{index}] has no for_user_id to belong to")
    if not isinstance(item, dict):
        raise EventError(f"AAA {name}[{index}] is not an object")
    short = name.removesuffix("_events")
    kinds = AAA_EVENT_ARRAYS.get(name)
    item_type = item.get("type") if isinstance(item.get("type"), str) else None

    def record(key_tail: str, event_type: str, source_type: str, when: datetime | None,
               known: bool = True) -> EventRecord:
        return _aaa_record(f"aaa:{for_user}:{key_tail}", event_type, source_type, known, for_user,
                           item, context, ctx, when)

    if name == "tweet_create_events":
        post_id = _id(item.get("id_str"), f"AAA {name}[{index}].id_str")
        return record(f"tweet:{post_id}", _tweet_relation(item, for_user), "tweet_create",
                      _first_time(item, "timestamp_ms", "created_at"))
    if name == "favorite_events":
        like_id = _id(item.get("id"), f"AAA {name}[{index}].id")
        return record(f"favorite:{like_id}", "like.create", "favorite",
                      _first_time(item, "timestamp_ms", "created_at"))
    if name == "direct_message_events":
        dm_id = _id(item.get("id"), f"AAA {name}[{index}].id")
        create = item.get("message_create") if isinstance(item.get("message_create"), dict) else {}
        if item_type in (None, "message_create"):
            sent = _opt_id(create.get("sender_id")) == for_user
            event_type, known = ("dm.sent" if sent else "dm.received"), True
        else:
            event_type, known = f"aaa.direct_message.{item_type}", False
        return record(f"dm:{dm_id}", event_type, item_type or "message_create",
                      _first_time(item, "created_timestamp"), known)
    if name == "tweet_delete_events":
        status = item.get("status") if isinstance(item.get("status"), dict) else {}
        post_id = _id(status.get("id_str") or status.get("id"), f"AAA {name}[{index}].status.id")
        return record(f"tweet_delete:{post_id}", "post.delete", "tweet_delete",
                      _first_time(item, "timestamp_ms"))
    if name in ("direct_message_indicate_typing_events", "direct_message_mark_read_events"):
        sender = _id(item.get("sender_id"), f"AAA {name}[{index}].sender_id")
        target = item.get("target") if isinstance(item.get("target"), dict) else {}
        recipient = _opt_id(target.get("recipient_id")) or "-"
        stamp = _stamp(item.get("created_timestamp"), f"AAA {name}[{index}].created_timestamp")
        tail = f"{sender}>{recipient}@{stamp}"
        if name.endswith("mark_read_events"):
            tail += f"#{_opt_id(item.get('last_read_event_id')) or '-'}"
            return record(f"read:{tail}", "dm.read", "direct_message_mark_read", parse_time(stamp))
        return record(f"typing:{tail}", "dm.indicate_typing", "direct_message_indicate_typing",
                      parse_time(stamp))
    if kinds is not None:  # follow / block / mute and their un- variants: no id, a composite key
        event_type = kinds.get(item_type) or kinds.get(None)
        if event_type is None:
            raise EventError(f"AAA {name}[{index}] has an unexpected type")
        source = _user_id(item.get("source"))
        target = _user_id(item.get("target"))
        if source is None or target is None:
            raise EventError(f"AAA {name}[{index}] lacks source or target user ids")
        kind = item_type or short
        try:
            stamp = _stamp(item.get("created_timestamp"), "created_timestamp")
        except EventError:  # undocumented: identify by what cannot change (not the user objects' counters)
            stamp = _digest({"type": kind, "source": source, "target": target})
        return record(f"{kind}:{source}>{target}@{stamp}", event_type, kind, parse_time(stamp))
    # An array X has not documented (yet): store and forward it, flagged unknown.
    ident = _opt_id(item.get("id_str")) or _opt_id(item.get("id"))
    return record(f"{short}:{ident or _digest(item)}", f"aaa.{short}", short,
                  _first_time(item, "timestamp_ms", "created_timestamp", "created_at"), known=False)


def _tweet_relation(tweet: dict[str, Any], for_user: str) -> str:
    """Which XAA post event an AAA tweet_create is, seen from the subscribed user."""
    if _user_id(tweet.get("user")) == for_user:
        return "post.create"
    if _user_id((tweet.get("retweeted_status") or {}).get("user")) == for_user:
        return "post.repost.create"
    if _user_id((tweet.get("quoted_status") or {}).get("user")) == for_user:
        return "post.quote.create"
    if _opt_id(tweet.get("in_reply_to_user_id_str")) == for_user:
        return "post.reply.create"
    entities = (tweet.get("extended_tweet") or {}).get("entities") or tweet.get("entities") or {}
    mentions = entities.get("user_mentions") if isinstance(entities, dict) else None
    if isinstance(mentions, list) and any(_user_id(m) == for_user for m in mentions):
        return "post.mention.create"
    return "aaa.tweet_create"


def _aaa_user_event(user_event: Any, context: dict[str, Any], ctx: _Ctx) -> list[EventRecord]:
    if not isinstance(user_event, dict):
        raise EventError("AAA user_event is not an object")
    records = []
    for kind, body in user_event.items():
        if kind == "revoke" and isinstance(body, dict):
            user = _user_id(body.get("source")) or _opt_id((body.get("source") or {}).get("user_id"))
            app = _opt_id((body.get("target") or {}).get("app_id")) or "-"
            if user is None:
                raise EventError("AAA user_event.revoke has no source.user_id")
            stamp = body.get("date_time") if isinstance(body.get("date_time"), str) else _digest(body)
            records.append(_aaa_record(f"aaa:{user}:revoke:{app}@{stamp}", "oauth.revoke", "user_event.revoke",
                                       True, user, {kind: body}, context, ctx, parse_time(body.get("date_time"))))
        elif len(kind) > MAX_TYPE_CHARS:
            raise EventError(f"AAA user_event kind longer than {MAX_TYPE_CHARS} characters")
        else:
            records.append(_aaa_record(f"aaa:-:user_event.{kind}:{_digest(body)}", f"aaa.user_event.{kind}",
                                       f"user_event.{kind}", False, None, {kind: body}, context, ctx, None))
    return records


# --------------------------------------------------------------------------- posts an event carries (compliance)

# AAA (v1.1) objects that embed another post whole; a retweet's retweeted_status may itself quote one.
_AAA_EMBEDDED_POSTS = ("retweeted_status", "quoted_status", "favorited_status")


@dataclass(frozen=True)
class PostIds:
    """The posts whose content an event carries, by how it carries them (compliance.py redacts them).

    A post an event only *names* (a reply's ``in_reply_to_status_id``, a like's ``liked_tweet_id``,
    ``referenced_tweets`` ids) is not a copy: nothing of its content is there to remove.
    """

    own: str | None = None  # the post the event is: XAA post.* payload, AAA tweet_create, the stream's data
    reposted: str | None = None  # the post it reposts: a repost's text and media are the original's
    embedded: frozenset[str] = frozenset()  # other posts copied inside it: includes.tweets, *_status objects

    @property
    def copies(self) -> frozenset[str]:
        """The posts other than its own (indexed by reference items, compliance.py)."""
        return self.embedded | ({self.reposted} if self.reposted else set())

    @property
    def all(self) -> frozenset[str]:
        return self.copies | ({self.own} if self.own else set())


def post_object_id(post: dict[str, Any]) -> str | None:
    """A v1.1 (``id_str``) or v2 (``id``) post object's id; never a JSON number (see :func:`_id`)."""
    return _opt_id(post.get("id_str")) or _opt_id(post.get("id"))


def embedded_posts(event: dict[str, Any], source: Source) -> Iterator[tuple[dict[str, Any] | list[Any], Any, dict]]:
    """Every post object ``event`` embeds, as (container, key, post): ``container[key] is post``,
    so that a caller holding a copy of the event can replace it."""
    if source is Source.AAA:
        pending = [event]
        while pending:
            obj = pending.pop()
            for name in _AAA_EMBEDDED_POSTS:
                inner = obj.get(name)
                if isinstance(inner, dict):
                    yield obj, name, inner
                    pending.append(inner)
    elif source in (Source.XAA, Source.STREAM):
        includes = event.get("includes")
        tweets = includes.get("tweets") if isinstance(includes, dict) else None
        for index, tweet in enumerate(tweets if isinstance(tweets, list) else []):
            if isinstance(tweet, dict):
                yield tweets, index, tweet


def post_ids(record: EventRecord) -> PostIds:
    """Which posts' content ``record`` carries. A deletion carries none: it only names the post."""
    event = record.event or {}
    if record.event_type == POST_DELETE or record.source is Source.XRELAY:
        return PostIds()
    own = reposted = None
    if record.source is Source.AAA:
        if record.source_event_type == "tweet_create":
            own = post_object_id(event)
            retweeted = event.get("retweeted_status")
            reposted = post_object_id(retweeted) if isinstance(retweeted, dict) else None
    elif record.source is Source.STREAM or record.event_type in XAA_POST_EVENT_TYPES:
        post = event.get("payload" if record.source is Source.XAA else "data")
        post = post if isinstance(post, dict) else {}
        own = post_object_id(post)
        references = post.get("referenced_tweets")
        reposted = next((_opt_id(ref.get("id")) for ref in references if isinstance(ref, dict)
                         and ref.get("type") == "retweeted"), None) if isinstance(references, list) else None
    embedded = {post_object_id(post) for _, _, post in embedded_posts(event, record.source)}
    return PostIds(own, reposted, frozenset(embedded - {None, own, reposted}))


def deleted_post_id(record: EventRecord) -> str | None:
    """The post a deletion event names: XAA ``payload.id``, AAA ``status.id_str`` (or a string ``id``)."""
    if record.event_type != POST_DELETE or not record.event:
        return None
    named = record.event.get("payload" if record.source is Source.XAA else "status")
    return post_object_id(named) if isinstance(named, dict) else None

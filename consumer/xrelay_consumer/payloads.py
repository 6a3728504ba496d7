"""Typed payloads for the common event types, and an open one for the rest.

The payload is X's own object, so these models are open (``extra="allow"``: every field X sends
stays reachable, ``payload.model_extra``) and require only identifiers, which a redaction keeps
(docs/event-record.md, "What a redaction keeps"): a redacted post still parses, with ``text`` None.
A minimal post.create (payload ``{}``) parses too.
Where the payload lives depends on ``source``: XAA ``event.payload``, the filtered stream
``event.data``, AAA the ``*_events`` item itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from .record import POST_REDACTED, EventRecord, Source

_OPEN = ConfigDict(extra="allow", frozen=True)

XAA_POST_TYPES = frozenset({"post.create", "post.reply.create", "post.quote.create", "post.repost.create",
                            "post.mention.create"})


class OpenPayload(BaseModel):
    """Any other event type (or an unknown one): X's object as delivered, fields in ``model_extra``."""

    model_config = _OPEN


class ReferencedPost(BaseModel):
    model_config = _OPEN

    type: str
    id: str


class Post(BaseModel):
    """An X API v2 post: XAA post.create/reply/quote/repost/mention, and filtered-stream posts.

    X also sends a *minimal* post.create whose payload is ``{}`` (every field None here); its
    ``event.event_uuid`` is the post's id, and the full copy, if any, is the same event_key."""

    model_config = _OPEN

    id: str | None = None
    text: str | None = None  # None once redacted
    author_id: str | None = None
    created_at: str | None = None
    conversation_id: str | None = None
    lang: str | None = None
    referenced_tweets: list[ReferencedPost] | None = None


class PostDeletion(BaseModel):
    """XAA post.delete: which post its author deleted."""

    model_config = _OPEN

    id: str
    author_id: str | None = None


class Like(BaseModel):
    """XAA like.create."""

    model_config = _OPEN

    id: str
    liked_tweet_id: str
    liked_tweet_author_id: str | None = None
    created_at: str | None = None


class User(BaseModel):
    model_config = _OPEN

    id: str
    username: str | None = None
    name: str | None = None


class UserEnvelope(BaseModel):
    model_config = _OPEN

    data: User


class Follow(BaseModel):
    """XAA follow.follow / follow.unfollow: ``source`` follows (or unfollows) ``target``."""

    model_config = _OPEN

    source: UserEnvelope
    target: UserEnvelope


class Revocation(BaseModel):
    """XAA oauth.revoke: the user took the app's access back."""

    model_config = _OPEN

    user_id: str
    app_id: str | None = None
    date_time: str | None = None


class LegacyUser(BaseModel):
    model_config = _OPEN

    id_str: str
    screen_name: str | None = None


class LegacyTweet(BaseModel):
    """AAA tweet_create_events item (a v1.1 Tweet), whatever post type xrelay mapped it onto."""

    model_config = _OPEN

    id_str: str
    text: str | None = None
    full_text: str | None = None
    created_at: str | None = None
    user: LegacyUser | None = None


class LegacyFavorite(BaseModel):
    """AAA favorite_events item (like.create)."""

    model_config = _OPEN

    id: str
    favorited_status: LegacyTweet | None = None
    user: LegacyUser | None = None


class PostRedacted(BaseModel):
    """The compliance message xrelay sends once it redacted a deleted post's stored copies
    (``xrelay.post.redacted``): delete or redact whatever you hold of ``post_id``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    post_id: str
    deleted_at: str
    deletion_event_key: str
    redacted_event_keys: list[str]
    redacted_event_keys_total: int


_XAA: dict[str, type[BaseModel]] = {
    **dict.fromkeys(XAA_POST_TYPES, Post),
    "post.delete": PostDeletion,
    "like.create": Like,
    "follow.follow": Follow,
    "follow.unfollow": Follow,
    "oauth.revoke": Revocation,
}


def payload_model(record: EventRecord) -> type[BaseModel]:
    """Which model :func:`payload_of` parses ``record``'s payload with."""
    if record.source is Source.XRELAY and record.event_type == POST_REDACTED:
        return PostRedacted
    if record.source is Source.XAA:
        return _XAA.get(record.event_type, OpenPayload)
    if record.source is Source.STREAM:
        return Post
    if record.source is Source.AAA and record.source_event_type == "tweet_create":
        return LegacyTweet
    if record.source is Source.AAA and record.source_event_type == "favorite":
        return LegacyFavorite
    return OpenPayload


def raw_payload(record: EventRecord) -> dict[str, Any]:
    if record.event is None:
        raise ValueError(f"{record.event_key} is a pointer message: resolve it before reading its payload")
    if record.source is Source.XAA:
        return record.event.get("payload") or {}
    if record.source is Source.STREAM:
        return record.event.get("data") or {}
    return record.event


def payload_of(record: EventRecord) -> BaseModel:
    """The record's payload as its typed model (``OpenPayload`` for the types without one)."""
    return payload_model(record).model_validate(raw_payload(record))

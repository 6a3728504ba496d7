"""The canonical event record: the contract between xrelay and its consumers.

Every event X delivers (AAA, XAA or filtered stream, live or replayed) becomes one
:class:`EventRecord`. It is the body of every message on the events queue and what the event
store keeps. ``docs/event-record.md`` documents each field; ``xrelay schema`` (and
``docs/event-record.schema.json``) export its JSON Schema from this model. Bump
``SCHEMA_VERSION`` on any change a consumer could notice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 2


class Source(StrEnum):
    AAA = "aaa"  # Account Activity API (v2 or legacy enterprise), deprecated by X but delivered
    XAA = "xaa"  # X Activity API (/2/activity), the envelope {"data": {event_type, event_uuid, ...}}
    STREAM = "stream"  # filtered-stream posts X delivers to the same webhook
    XRELAY = "xrelay"  # written by xrelay itself: compliance messages (compliance.py), never stored


class Subscription(BaseModel):
    """What the event was delivered for, as X said it."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    for_user_id: str | None = Field(
        None, description="AAA: the subscribed user (top-level for_user_id; for a user_event revoke, which has "
        "none, the revoking user)."
    )
    filter: dict[str, Any] | None = Field(
        None, description="XAA: the subscription's filter, as delivered ({} when X sent none)."
    )
    tag: str | None = Field(None, description="XAA: the subscription's tag, when it has one.")
    matching_rules: list[dict[str, Any]] | None = Field(
        None, description="Filtered stream: the rules the post matched."
    )


class StoredPointer(BaseModel):
    """Where the full record lives when it was too large to travel on the queue."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    table: str = Field(description="DynamoDB table name of the event store.")
    key: dict[str, str] = Field(description="The item's primary key, e.g. {'pk': event_key}.")


class RedactionReason(StrEnum):
    POST_DELETED = "post_deleted"  # the author deleted the post on X (post.delete, tweet_delete_events)
    USER_REVOKED = "user_revoked"  # the user revoked the app, and the stack purges private events (PurgeOnRevoke)


class Redaction(BaseModel):
    """One removal of content from a stored record: when, why and on whose word."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    at: datetime = Field(description="When xrelay redacted the record (UTC).")
    reason: RedactionReason = Field(description="post_deleted or user_revoked.")
    by: str = Field(description="event_key of the deletion or revocation event that asked for it.")
    post_id: str | None = Field(
        None, description="The deleted post (post_deleted); null for user_revoked."
    )
    scope: Literal["event", "embedded"] = Field(
        description="'event': the whole event (and for user_revoked its context) was cut down to identifiers, "
        "times and types; 'embedded': only the copies of post_id inside the event were."
    )


class EventRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    schema_version: Literal[2] = Field(SCHEMA_VERSION, description="Version of this record's shape.")
    event_key: str = Field(description="Stable natural key of the event per subscription; the dedupe key.")
    source: Source = Field(description="Which X product delivered it: aaa, xaa or stream.")
    event_type: str = Field(
        description="XAA's dotted name (AAA types mapped onto it where one exists, else 'aaa.<name>'; "
        "'stream.post' for the filtered stream)."
    )
    source_event_type: str = Field(
        description="The type as X named it in the delivery: XAA event_type (before alias canonicalisation), "
        "the AAA item type or array name, or 'filtered_stream'."
    )
    known_type: bool = Field(description="False when X sent a type xrelay does not know (stored all the same).")
    user_id: str | None = Field(
        None, description="The subscribed user the event is about (AAA for_user_id, XAA filter.user_id, revokes); "
        "null when there is none (filtered stream, keyword filters, unknown AAA user_events)."
    )
    subscription: Subscription = Field(description="The subscription context X delivered with the event.")
    occurred_at: datetime | None = Field(None, description="When it happened at X (UTC), if the event says.")
    received_at: datetime = Field(description="When xrelay received the delivery (UTC).")
    replay: bool = Field(False, description="True when the delivery was marked meta.replay (a replay job).")
    delivery_id: str = Field(description="SHA-256 (hex) of the raw request body that carried the event.")
    event: dict[str, Any] | None = Field(
        description="The raw event, untouched: XAA 'data', one AAA array item ({kind: body} for an AAA "
        "user_event, the whole delivery when an AAA delivery has no *_events array), or the stream delivery "
        "without 'meta'. Null only in a pointer message (see 'stored')."
    )
    context: dict[str, Any] | None = Field(
        None,
        description="AAA: the delivery's other top-level keys the event refers to (users, apps, "
        "user_has_blocked...; {} when there are none). Always null for XAA and stream records, and in a "
        "pointer message.",
    )
    stored: StoredPointer | None = Field(
        None, description="Set (and event/context null) when the record was too large for one SQS message."
    )
    redacted: bool = Field(
        False, description="True when xrelay removed content from 'event' (or 'context') because the post was "
        "deleted or the user revoked the app; 'redactions' says what, when and why."
    )
    redactions: list[Redaction] = Field(
        default_factory=list, description="Every redaction applied to this record, oldest first ([] when none)."
    )

    @model_validator(mode="before")
    @classmethod
    def _read_version_1(cls, data: Any) -> Any:
        # Version 2 only added fields (with defaults), so a stored version-1 record is a version-2
        # record that was never redacted: items written before the upgrade still decode.
        if isinstance(data, dict) and data.get("schema_version") == 1:
            return {**data, "schema_version": SCHEMA_VERSION}
        return data

    @model_validator(mode="after")
    def _redacted_says_whether_there_are_redactions(self) -> EventRecord:
        if self.redacted != bool(self.redactions):
            raise ValueError("redacted must be true exactly when redactions is not empty")
        return self

    def as_pointer(self, table: str) -> EventRecord:
        return self.model_copy(update={"event": None, "context": None, "stored": StoredPointer(
            table=table, key={"pk": self.event_key})})


class ControlMessage(BaseModel):
    """A delivery that is not an event, e.g. ``replay_job_status``: recorded, never forwarded."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)

    kind: str
    body: dict[str, Any]
    received_at: datetime
    delivery_id: str


def json_schema() -> dict[str, Any]:
    # Serialization mode: every field is always in the JSON (null included), so all are required.
    schema = EventRecord.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://github.com/xrelay/xrelay/docs/event-record.v{SCHEMA_VERSION}.schema.json"
    return schema

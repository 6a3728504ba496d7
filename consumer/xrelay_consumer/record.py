"""The consumer's copy of xrelay's event record (docs/event-record.md).

A copy, not an import: this package must install without xrelay. ``tests/test_consumer_contract.py``
holds it to the producer's model and committed JSON Schema, so the two cannot drift apart.

It differs from the producer's model where a consumer should be lenient (the doc's advice):
unknown fields are ignored, and ``schema_version`` is checked against what this copy knows
instead of being a constant, so older records are read and newer ones refused with a clear error.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The newest record shape this library understands (the record's ``schema_version``).
SUPPORTED_SCHEMA_VERSION = 2
# Version 1 lacked redacted/redactions only; their defaults make a version-1 record a version-2 one.
OLDEST_SCHEMA_VERSION = 1

# The message attributes the publisher sets on every message (publisher.message_attributes).
ATTRIBUTE_NAMES = ("source", "event_type", "user_id", "known_type", "replay", "schema_version", "event_key")

# The compliance message's event_type (compliance.NOTICE_TYPE).
POST_REDACTED = "xrelay.post.redacted"

_LENIENT = ConfigDict(extra="ignore", frozen=True)


class NewerSchemaVersion(Exception):
    """A record from a newer xrelay than this library knows: upgrade xrelay-consumer."""

    def __init__(self, version: object) -> None:
        self.version = version
        super().__init__(
            f"record schema_version {version} is newer than the {SUPPORTED_SCHEMA_VERSION} this xrelay-consumer "
            f"understands: upgrade the xrelay-consumer package (see the changelog in docs/event-record.md)"
        )


class Source(StrEnum):
    AAA = "aaa"
    XAA = "xaa"
    STREAM = "stream"
    XRELAY = "xrelay"  # compliance messages


class Subscription(BaseModel):
    model_config = _LENIENT

    for_user_id: str | None = None
    filter: dict[str, Any] | None = None
    tag: str | None = None
    matching_rules: list[dict[str, Any]] | None = None


class StoredPointer(BaseModel):
    model_config = _LENIENT

    table: str
    key: dict[str, str]


class RedactionReason(StrEnum):
    POST_DELETED = "post_deleted"
    USER_REVOKED = "user_revoked"


class Redaction(BaseModel):
    model_config = _LENIENT

    at: datetime
    reason: RedactionReason
    by: str
    post_id: str | None = None
    scope: Literal["event", "embedded"]


class EventRecord(BaseModel):
    """One xrelay event record, as the queue carries it (full or pointer) or the table stores it."""

    model_config = _LENIENT

    schema_version: int = SUPPORTED_SCHEMA_VERSION
    event_key: str
    source: Source
    event_type: str
    source_event_type: str
    known_type: bool
    user_id: str | None = None
    subscription: Subscription
    occurred_at: datetime | None = None
    received_at: datetime
    replay: bool = False
    delivery_id: str
    event: dict[str, Any] | None
    context: dict[str, Any] | None = None
    stored: StoredPointer | None = None
    redacted: bool = False
    redactions: list[Redaction] = Field(default_factory=list)

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        check_schema_version(version)
        return version

    @property
    def is_pointer(self) -> bool:
        return self.stored is not None

    @property
    def is_compliance(self) -> bool:
        return self.source is Source.XRELAY and self.event_type == POST_REDACTED

    @property
    def payload(self) -> BaseModel:
        """The event's payload, typed for the common event types (xrelay_consumer.payloads)."""
        from .payloads import payload_of  # payloads builds on this module

        return payload_of(self)


def check_schema_version(version: object) -> None:
    """Raise :class:`NewerSchemaVersion` for a version this library does not know yet."""
    try:
        number = int(str(version))
    except ValueError:
        raise ValueError(f"schema_version {version!r} is not a number") from None
    if number > SUPPORTED_SCHEMA_VERSION:
        raise NewerSchemaVersion(number)
    if number < OLDEST_SCHEMA_VERSION:
        raise ValueError(f"schema_version {number} never existed")

"""xrelay-consumer: read xrelay's events queue as typed records (docs/event-record.md)."""

from .consumer import BatchResult, Consumer, InProgressElsewhere, Message, PointerMissing
from .dedupe import Claim, DedupeTable
from .payloads import (
    Follow,
    LegacyFavorite,
    LegacyTweet,
    Like,
    OpenPayload,
    Post,
    PostDeletion,
    PostRedacted,
    Revocation,
    payload_of,
)
from .record import (
    POST_REDACTED,
    SUPPORTED_SCHEMA_VERSION,
    EventRecord,
    NewerSchemaVersion,
    Redaction,
    Source,
    StoredPointer,
    Subscription,
)

__all__ = [
    "POST_REDACTED", "SUPPORTED_SCHEMA_VERSION", "BatchResult", "Claim", "Consumer", "DedupeTable", "EventRecord",
    "Follow", "InProgressElsewhere", "LegacyFavorite", "LegacyTweet", "Like", "Message", "NewerSchemaVersion",
    "OpenPayload", "PointerMissing", "Post", "PostDeletion", "PostRedacted", "Redaction", "Revocation", "Source",
    "StoredPointer", "Subscription", "payload_of",
]

"""The event-type vocabulary: X Activity API names, their aliases, and how AAA maps onto them.

This is the one place that lists X's event types (the reconcile validates subscriptions
against it too). Source: X API v2 OpenAPI 2.167 enum, plus ``oauth.revoke`` which X documents
and delivers but leaves out of that enum. It also holds the shape of X's identifiers.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# X's user, webhook and subscription ids (OpenAPI pattern ^[0-9]{1,19}$), always as strings.
_X_ID = re.compile(r"[0-9]{1,19}")


def is_x_id(value: object) -> bool:
    return isinstance(value, str) and _X_ID.fullmatch(value) is not None


XAA_EVENT_TYPES: frozenset[str] = frozenset(
    {
        # profile
        "profile.update.bio",
        "profile.update.profile_picture",
        "profile.update.banner_picture",
        "profile.update.screenname",
        "profile.update.geo",
        "profile.update.url",
        "profile.update.verified_badge",
        "profile.update.affiliate_badge",
        "profile.update.handle",
        # news, follows, spaces, broadcasts
        "news.new",
        "follow.follow",
        "follow.unfollow",
        "spaces.start",
        "spaces.end",
        "broadcast.start",
        "broadcast.end",
        "broadcast.chat",
        # encrypted chat (XChat)
        "chat.received",
        "chat.sent",
        "chat.conversation.join",
        "chat.conversation.member_added",
        "chat.conversation.member_removed",
        "chat.conversation.admin_added",
        "chat.conversation.admin_removed",
        "chat.update.group_name",
        "chat.update.restrictions",
        # legacy DMs
        "dm.sent",
        "dm.received",
        "dm.indicate_typing",
        "dm.read",
        # posts
        "post.create",
        "post.delete",
        "post.mention.create",
        "post.reply.create",
        "post.quote.create",
        "post.repost.create",
        # private actions
        "like.create",
        "mute.mute",
        "mute.unmute",
        "block.block",
        "block.unblock",
        # authorisation
        "oauth.revoke",
    }
)

# Deprecated spellings X still accepts; deliveries always use the canonical name, but we
# normalise defensively so dedupe keys never split one event type in two.
XAA_ALIASES: dict[str, str] = {"chat.conversation_join": "chat.conversation.join"}

# Event types whose payload is private message content (never logged, see observability).
PRIVATE_CONTENT_PREFIXES = ("dm.", "chat.")

# AAA: the ``*_events`` arrays X documents. The value maps an item's ``type`` (where the array
# mixes two kinds) or the array itself onto the XAA vocabulary. tweet_create and
# direct_message need the item itself to decide (see normalize.py).
AAA_EVENT_ARRAYS: dict[str, dict[str | None, str]] = {
    "tweet_create_events": {},
    "favorite_events": {None: "like.create"},
    "follow_events": {"follow": "follow.follow", "unfollow": "follow.unfollow"},
    "unfollow_events": {None: "follow.unfollow", "unfollow": "follow.unfollow"},
    "block_events": {"block": "block.block", "unblock": "block.unblock"},
    "unblock_events": {None: "block.unblock", "unblock": "block.unblock"},
    "mute_events": {"mute": "mute.mute", "unmute": "mute.unmute"},
    "unmute_events": {None: "mute.unmute", "unmute": "mute.unmute"},
    "direct_message_events": {},
    "direct_message_indicate_typing_events": {None: "dm.indicate_typing"},
    "direct_message_mark_read_events": {None: "dm.read"},
    "tweet_delete_events": {None: "post.delete"},
}


def canonical_xaa_type(name: str) -> str:
    return XAA_ALIASES.get(name, name)


def is_known_xaa_type(name: str) -> bool:
    return canonical_xaa_type(name) in XAA_EVENT_TYPES


def is_private_content(event_type: str) -> bool:
    return event_type.startswith(PRIVATE_CONTENT_PREFIXES)


# --- Compliance (compliance.py): deletions and revocations --------------------------------------

# The deletion of a post (XAA post.delete; AAA tweet_delete_events is mapped onto it).
POST_DELETE = "post.delete"
# The user took the app's access back (XAA oauth.revoke; AAA user_event revoke is mapped onto it).
OAUTH_REVOKE = "oauth.revoke"
# XAA types whose payload is a post (its id is the event's own post); AAA tweet_create and
# filtered-stream posts are posts too (normalize.post_ids).
XAA_POST_EVENT_TYPES: frozenset[str] = frozenset(
    {"post.create", "post.reply.create", "post.quote.create", "post.repost.create", "post.mention.create"}
)

# Purged when the user revokes the app (with the PurgeOnRevoke Parameter): what only the user's own
# authorisation let X deliver and that tells something only that user knows: their messages and
# chats (with typing and read indicators), what they like, mute and block. Posts, mentions,
# follows and profile updates are public on X and stay. Unknown AAA DM kinds
# (``aaa.direct_message.<type>``) are messages too.
PURGED_ON_REVOKE_PREFIXES: tuple[str, ...] = (*PRIVATE_CONTENT_PREFIXES, "mute.", "block.", "aaa.direct_message.")
PURGED_ON_REVOKE_TYPES: frozenset[str] = frozenset({"like.create"})


def is_purged_on_revoke(event_type: str) -> bool:
    return event_type in PURGED_ON_REVOKE_TYPES or event_type.startswith(PURGED_ON_REVOKE_PREFIXES)


# --- Subscribing (``xrelay subscriptions apply``): per-type facts about XAA subscriptions ---------
# Keyed by names in XAA_EVENT_TYPES (never a second list of types): each table names only the
# exceptions, so a type added above gets the defaults below (filter {user_id}, no direction, needs
# user context) until someone documents otherwise here. Source: x-api.md §6.1 and §6.2.

# Every key X's subscription filter schema has (OAS): which of them a type takes is below.
XAA_FILTER_KEYS: tuple[str, ...] = ("user_id", "keyword", "direction")


class FilterKeys(NamedTuple):
    required: frozenset[str]
    optional: frozenset[str] = frozenset()

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional


DEFAULT_FILTER_KEYS = FilterKeys(frozenset({"user_id"}))

# CONFLICT on which types take ``direction`` (x-api.md §6.1): D-XI documents it for like.create,
# BOOK (Apr 2026) for follow.follow/follow.unfollow only. We accept it wherever any source documents
# it: rejecting a filter X takes would make that subscription impossible to declare, while a wrong
# acceptance only costs a clear error from X at create time. D-CL's sent/received "scope" for DM
# and chat events is not the OAS vocabulary and is already split by type (dm.sent/dm.received).
# mute.* and block.* are actor-only and documented as not supporting it.
_USER_WITH_DIRECTION = FilterKeys(frozenset({"user_id"}), frozenset({"direction"}))
XAA_FILTER_KEYS_BY_TYPE: dict[str, FilterKeys] = {
    "like.create": _USER_WITH_DIRECTION,
    "follow.follow": _USER_WITH_DIRECTION,
    "follow.unfollow": _USER_WITH_DIRECTION,
    "news.new": FilterKeys(frozenset({"keyword"})),  # Grok news by keyword: there is no user
    "oauth.revoke": FilterKeys(frozenset()),  # D-XI: "Filters: none"
}

# Delivered but not subscribable, with the reason shown to whoever declares one. oauth.revoke
# (x-api.md §6.2, §10 q9): X documents it with no filter and leaves it out of the subscription
# API's event_type enum, and its delivery example carries ``filter: {}`` and no tag, i.e. no
# subscription behind it. Declaring it would make ``apply`` POST what X's published schema rejects
# on every run; if X adds it to the enum, delete it here and it becomes valid with an empty filter.
XAA_UNSUBSCRIBABLE: dict[str, str] = {
    "oauth.revoke": "X documents oauth.revoke with no filter and its subscription API does not accept it "
    "(not in the OpenAPI event_type enum): revocations are delivered to the app without a subscription",
}

# Public events: an app-only Bearer token may create the subscription (OAS POST description and
# D-XI: profile updates, post.create, post.delete, broadcast.start/end). Everything else is private
# and needs the filtered user's context (like.*, dm.*, chat.*, mute.*, block.*, broadcast.chat,
# post.mention/reply/quote/repost.create). Types neither source classifies (follow.*, spaces.*,
# news.new) count as private: X accepts user context for every type, so asking for it never fails.
XAA_PUBLIC_PREFIXES: tuple[str, ...] = ("profile.update.",)
XAA_PUBLIC_EVENT_TYPES: frozenset[str] = frozenset({"post.create", "post.delete", "broadcast.start", "broadcast.end"})


def xaa_filter_keys(event_type: str) -> FilterKeys:
    """The filter keys ``event_type`` requires and the ones it may also take."""
    return XAA_FILTER_KEYS_BY_TYPE.get(canonical_xaa_type(event_type), DEFAULT_FILTER_KEYS)


def is_subscribable(event_type: str) -> bool:
    canonical = canonical_xaa_type(event_type)
    return canonical in XAA_EVENT_TYPES and canonical not in XAA_UNSUBSCRIBABLE


def subscribable_xaa_types() -> list[str]:
    """Canonical names a subscription may use, sorted (for error messages and docs)."""
    return sorted(name for name in XAA_EVENT_TYPES if name not in XAA_UNSUBSCRIBABLE)


def needs_user_context(event_type: str) -> bool:
    """True when creating the subscription needs the user's OAuth context (a private event);
    False when the app's Bearer token is enough. Unknown types count as private (see above)."""
    canonical = canonical_xaa_type(event_type)
    return not (canonical in XAA_PUBLIC_EVENT_TYPES or canonical.startswith(XAA_PUBLIC_PREFIXES))

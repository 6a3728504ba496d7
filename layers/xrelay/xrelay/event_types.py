"""The event-type vocabulary: X Activity API names, their aliases, and how AAA maps onto them.

This is the one place that lists X's event types (the reconcile validates subscriptions
against it too). Source: X API v2 OpenAPI 2.167 enum, plus ``oauth.revoke`` which X documents
and delivers but leaves out of that enum.
"""

from __future__ import annotations

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

"""Deletions and revocations: every stored copy redacted, consumers told, dedupe intact (xrelay.publishing.compliance).

Everything goes through the real handlers of the local stack: intake for X's deliveries, the
publisher through the events table's stream (``stack.drain()``), the CLI for ``events get``.
Payloads are the fixtures, or built from them (an AAA quote is the AAA reply fixture quoting the
AAA tweet fixture); ids are changed where a second post is needed.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from conftest import EACH_USER_INDEX, fixture_json
from helpers import client_error, emf, post, receive_all, values
from xrelay.aws import client
from xrelay.events.models import EventRecord, RedactionReason, Source
from xrelay.events.normalize import normalize
from xrelay.publishing.compliance import NOTICE_TYPE, skeleton
from xrelay.publishing.publisher import decode_message
from xrelay.storage.store import EventStore
from xrelay.tools.cli import cli

XAA_USER, AAA_USER = "1111111111111111111", "2244994945"
XAA_POST, XAA_TEXT = "2080761390344937796", "Hello from the Activity API"  # xaa/01_post.create.json
AAA_POST, AAA_TEXT = "1924465506158878979", "Hello from AAA"  # aaa/tweet_create.json
XAA_POST_KEY = f"xaa:post.create:user_id={XAA_USER}:{XAA_POST}"
AAA_POST_KEY = f"aaa:{AAA_USER}:tweet:{AAA_POST}"
FAVORITE_KEY = f"aaa:{AAA_USER}:favorite:a7ba59eab0bfcba386f7acedac279542"  # aaa/favorite.json


# ------------------------------------------------------------------------------------------- deliveries


def send(stack, doc: dict) -> dict:
    code, answer = post(stack, json.dumps(doc).encode())
    assert code == 200, answer
    return answer


def key_of(doc: dict) -> str:
    (record,) = normalize(doc, delivery="d" * 64, received_at=datetime.now(UTC)).events
    return record.event_key


def xaa_delete(post_id: str, uuid: str = "-2781149976877970683", minimal: bool = False) -> dict:
    """xaa/02_post.delete.json, deleting ``post_id``; ``minimal``: the copy XAA may send first."""
    doc = fixture_json("xaa/02_post.delete.json")
    doc["data"]["event_uuid"] = uuid
    doc["data"]["payload"] = {} if minimal else {**doc["data"]["payload"], "id": post_id}
    return doc


def aaa_delete(*post_ids: str, for_user: str = AAA_USER) -> dict:
    """aaa/tweet_delete.json, one item per post."""
    doc = fixture_json("aaa/tweet_delete.json")
    item = doc["tweet_delete_events"][0]
    doc["for_user_id"] = for_user
    doc["tweet_delete_events"] = [{**item, "status": {"id": post_id, "user_id": for_user}} for post_id in post_ids]
    return doc


def aaa_tweet() -> dict:
    return fixture_json("aaa/tweet_create.json")["tweet_create_events"][0]


def aaa_post_by_someone_else(post_id: str, text: str, **embedding: dict) -> dict:
    """aaa/tweet_create_reply.json turned into a new post of that user embedding ``embedding``."""
    doc = fixture_json("aaa/tweet_create_reply.json")
    item = {k: v for k, v in doc["tweet_create_events"][0].items() if not k.startswith("in_reply_to")}
    doc["tweet_create_events"] = [{**item, "id": int(post_id), "id_str": post_id, "text": text, **embedding}]
    return doc


def xaa_quote_including_the_original() -> dict:
    """xaa/05_post.quote.create.json with the quoted post in includes, as xaa/01 includes it."""
    doc = fixture_json("xaa/05_post.quote.create.json")
    doc["data"]["includes"] = {"tweets": fixture_json("xaa/01_post.create.json")["data"]["includes"]["tweets"]}
    return doc


def xaa_like_of_the_original(replay: bool = False) -> dict:
    """other/xaa_replayed_like.json (a replayed like) liking xaa/01's post, included."""
    doc = fixture_json("other/xaa_replayed_like.json")
    if not replay:
        del doc["meta"]
    doc["data"]["payload"]["liked_tweet_id"] = XAA_POST
    doc["data"]["includes"]["tweets"] = fixture_json("xaa/01_post.create.json")["data"]["includes"]["tweets"]
    return doc


# ------------------------------------------------------------------------------------------- reading back


def store(stack) -> EventStore:
    return EventStore(stack.stack.physical("EventsTable"), 30)


def stored(stack, key: str) -> EventRecord:
    record = store(stack).get(key)
    assert record is not None, key
    return record


def item(stack, key: str) -> dict:
    return client("dynamodb").get_item(TableName=stack.stack.physical("EventsTable"), Key={"pk": {"S": key}},
                                       ConsistentRead=True)["Item"]


def queued(stack) -> list[EventRecord]:
    return [decode_message(m["Body"]) for m in receive_all(stack)]


def notices(records: list[EventRecord]) -> list[EventRecord]:
    return [r for r in records if r.source is Source.XRELAY]


def text_of(record: EventRecord) -> str:
    return json.dumps([record.event, record.context])


def spy(faults, operation: str, **when):
    """Count the DynamoDB ``operation`` calls (made for real) whose parameters include ``when``."""
    return faults.inject("dynamodb", operation, lambda aws, op, params, real: real(params), times=10**6,
                         when=lambda params: all(params.get(k) == v for k, v in when.items()))


# ------------------------------------------------------------------------------------------- deletion paths


def test_an_xaa_post_delete_redacts_the_post_and_tells_consumers(stack, capsys):
    send(stack, fixture_json("xaa/01_post.create.json"))
    stack.drain()
    (live,) = queued(stack)
    assert XAA_TEXT in text_of(live)  # before the deletion, consumers got the content

    deletion = xaa_delete(XAA_POST)
    send(stack, deletion)
    capsys.readouterr()
    stack.drain()

    record = stored(stack, XAA_POST_KEY)
    assert XAA_TEXT not in text_of(record)
    (redaction,) = record.redactions
    assert record.redacted and redaction.reason is RedactionReason.POST_DELETED
    assert (redaction.by, redaction.post_id, redaction.scope) == (key_of(deletion), XAA_POST, "event")
    # Identifiers, times and types stay; text, entities, metrics go.
    assert record.event["payload"] == {"created_at": "2026-07-24T21:05:48.000Z", "author_id": XAA_USER,
                                       "id": XAA_POST, "edit_history_tweet_ids": [XAA_POST],
                                       "conversation_id": XAA_POST}
    assert (record.event["event_uuid"], record.event["filter"], record.event["tag"]) == (
        XAA_POST, {"user_id": XAA_USER}, "posts")

    # The deletion event is published as any event, and the compliance message; the redaction
    # itself (a stream MODIFY) is not published again.
    messages = queued(stack)
    assert sorted(m.event_type for m in messages) == ["post.delete", NOTICE_TYPE]
    (notice,) = notices(messages)
    assert notice.event_key == f"xrelay:post.redacted:{XAA_POST}" and notice.user_id == XAA_USER
    assert notice.event == {"post_id": XAA_POST, "deleted_at": notice.event["deleted_at"],
                            "deletion_event_key": key_of(deletion), "redacted_event_keys": [XAA_POST_KEY],
                            "redacted_event_keys_total": 1}
    (deleted,) = [m for m in messages if m.event_type == "post.delete"]
    heard = deleted.received_at  # when xrelay heard of the deletion (the table keeps milliseconds)
    assert notice.received_at == heard.replace(microsecond=heard.microsecond // 1000 * 1000)
    blobs = emf(capsys)
    assert values(blobs, "PostsRedacted", service="publisher") == [1.0]
    assert values(blobs, "CopiesRedacted", service="publisher") == [1.0]
    assert values(blobs, "ComplianceMessagesSent", service="publisher") == [1.0]
    assert sum(values(blobs, "EventsPublished", service="publisher")) == 1  # the deletion; the notice is no event


def test_an_aaa_tweet_delete_redacts_the_tweet_and_the_copy_inside_a_favorite(stack):
    send(stack, fixture_json("aaa/tweet_create.json"))
    send(stack, fixture_json("aaa/favorite.json"))  # favorited_status: the same tweet
    send(stack, aaa_delete(AAA_POST))
    stack.drain()

    tweet, favorite = stored(stack, AAA_POST_KEY), stored(stack, FAVORITE_KEY)
    assert [r.scope for r in tweet.redactions] == ["event"] and AAA_TEXT not in text_of(tweet)
    assert [r.scope for r in favorite.redactions] == ["embedded"] and AAA_TEXT not in text_of(favorite)
    assert favorite.event["favorited_status"]["id_str"] == AAA_POST
    assert favorite.event["user"] == fixture_json("aaa/favorite.json")["favorite_events"][0]["user"]  # the liker
    (notice,) = notices(queued(stack))
    assert notice.event["redacted_event_keys"] == sorted([AAA_POST_KEY, FAVORITE_KEY])


QUOTER_TEXT = "Adding some context to this."  # xaa/05's own words


@pytest.mark.parametrize("copy_of_the_post,deletion,scope,kept", [
    (xaa_quote_including_the_original, xaa_delete(XAA_POST), "embedded", QUOTER_TEXT),
    (lambda: fixture_json("xaa/06_post.repost.create.json"), xaa_delete(XAA_POST), "event", None),
    (xaa_like_of_the_original, xaa_delete(XAA_POST), "embedded", "liked_tweet_author_id"),
    (lambda: aaa_post_by_someone_else("1924465506158879001", "so true", quoted_status=aaa_tweet()),
     aaa_delete(AAA_POST), "embedded", "so true"),
    (lambda: aaa_post_by_someone_else("1924465506158879002", f"RT @xdev: {AAA_TEXT}", retweeted_status=aaa_tweet()),
     aaa_delete(AAA_POST), "event", None),
], ids=["xaa-quote-includes", "xaa-repost", "xaa-like-includes", "aaa-quoted_status", "aaa-retweeted_status"])
def test_copies_embedded_in_other_events_are_redacted(stack, copy_of_the_post, deletion, scope, kept):
    doc = copy_of_the_post()
    send(stack, doc)
    send(stack, deletion)
    stack.drain()

    record = stored(stack, key_of(doc))
    (redaction,) = record.redactions
    assert redaction.scope == scope and redaction.post_id in (XAA_POST, AAA_POST)
    assert XAA_TEXT not in text_of(record) and AAA_TEXT not in text_of(record)
    if kept:  # only the copy went: the event's own content is its author's
        assert kept in text_of(record)
    (notice,) = notices(queued(stack))
    assert notice.event["redacted_event_keys"] == [record.event_key]


def test_a_reply_that_only_names_the_deleted_post_keeps_its_content(stack):
    reply = fixture_json("xaa/04_post.reply.create.json")  # in_reply_to_tweet_id: xaa/01's post
    send(stack, reply)
    send(stack, xaa_delete(XAA_POST))
    stack.drain()
    assert stored(stack, key_of(reply)).redactions == []
    (notice,) = notices(queued(stack))
    assert notice.event["redacted_event_keys"] == []


def test_two_posts_deleted_at_once_inside_one_event_are_both_redacted(stack):
    quote_id = "1924465506158879001"
    quote = aaa_post_by_someone_else(quote_id, "so true", quoted_status=aaa_tweet())["tweet_create_events"][0]
    favorite = fixture_json("aaa/favorite.json")
    favorite["favorite_events"][0]["favorited_status"] = quote  # a like of a quote of the original
    send(stack, favorite)
    send(stack, aaa_delete(quote_id, AAA_POST))  # one delivery, two deletions
    stack.drain()

    record = stored(stack, FAVORITE_KEY)
    assert sorted(r.post_id for r in record.redactions) == sorted([quote_id, AAA_POST])
    assert "so true" not in text_of(record) and AAA_TEXT not in text_of(record)
    assert record.event["favorited_status"]["quoted_status"]["id_str"] == AAA_POST
    assert len(notices(queued(stack))) == 2


def test_a_minimal_first_copy_of_the_deletion_is_enough_once_the_full_copy_names_the_post(stack):
    """XAA may send a minimal copy first (``"payload": {}``): it is the stored event, and names no post.
    The full copy that follows is a duplicate, and still writes the tombstone that drives the redaction."""
    send(stack, fixture_json("xaa/01_post.create.json"))
    assert send(stack, xaa_delete(XAA_POST, minimal=True))["new"] == 1
    stack.drain()
    assert stored(stack, XAA_POST_KEY).redactions == []
    assert send(stack, xaa_delete(XAA_POST))["duplicates"] == 1
    stack.drain()
    assert stored(stack, XAA_POST_KEY).redacted
    assert [n.event["post_id"] for n in notices(queued(stack))] == [XAA_POST]


def test_the_same_post_deleted_through_two_subscriptions_gives_one_compliance_message(stack):
    send(stack, fixture_json("xaa/01_post.create.json"))
    first = xaa_delete(XAA_POST)
    second = copy.deepcopy(first)
    second["data"]["tag"], second["data"]["filter"] = "other", {"user_id": XAA_USER, "direction": "outbound"}
    send(stack, first)
    send(stack, second)
    stack.drain()
    (notice,) = notices(queued(stack))
    assert notice.event["deletion_event_key"] == key_of(first)
    assert len(stored(stack, XAA_POST_KEY).redactions) == 1


# ------------------------------------------------------------------------------------------- order and replays


@pytest.mark.parametrize("drain_between", [True, False], ids=["deletion-published-first", "same-batch"])
def test_a_deletion_that_arrives_before_the_post_wins(stack, drain_between):
    deletion = xaa_delete(XAA_POST)
    send(stack, deletion)
    if drain_between:
        stack.drain()
    send(stack, fixture_json("xaa/01_post.create.json"))
    stack.drain()

    messages = queued(stack)
    (created,) = [m for m in messages if m.event_type == "post.create"]
    assert created.redacted and XAA_TEXT not in text_of(created)  # consumers never receive the content
    assert created.redactions[0].by == key_of(deletion)
    assert XAA_TEXT not in json.dumps([m.model_dump(mode="json") for m in messages])
    assert stored(stack, XAA_POST_KEY) == created


def test_a_replay_after_the_deletion_stays_a_duplicate_and_a_new_copy_is_stored_redacted(stack):
    original = fixture_json("xaa/01_post.create.json")
    send(stack, original)
    send(stack, xaa_delete(XAA_POST))
    stack.drain()
    receive_all(stack)
    redacted = stored(stack, XAA_POST_KEY)

    # X's replay resends the post: a duplicate, never published again, and still redacted.
    assert send(stack, {**original, "meta": {"replay": True}})["duplicates"] == 1
    # ...and an event xrelay had missed that embeds the post: new, stored and published without it.
    like = xaa_like_of_the_original(replay=True)
    assert send(stack, like)["new"] == 1
    stack.drain()

    (published,) = queued(stack)
    assert published.event_key == key_of(like) and published.replay
    assert [r.scope for r in published.redactions] == ["embedded"] and XAA_TEXT not in text_of(published)
    assert stored(stack, XAA_POST_KEY) == redacted


@EACH_USER_INDEX
def test_redaction_keeps_every_attribute_dedupe_and_the_indexes_need(stack):
    original = fixture_json("xaa/01_post.create.json")
    send(stack, original)
    stack.drain()
    before = item(stack, XAA_POST_KEY)
    send(stack, xaa_delete(XAA_POST))
    stack.drain()
    after = item(stack, XAA_POST_KEY)

    assert {k: v for k, v in after.items() if k not in ("record", "rev") and not k.startswith("redact")} == \
        {k: v for k, v in before.items() if k != "record"}  # pk, user_key/ts or uid, post_id, expires_at...
    assert after["record"] != before["record"]
    assert (after["redaction_reason"]["S"], after["redacted_by"]["S"]) == ("post_deleted", key_of(xaa_delete(XAA_POST)))
    assert send(stack, original)["duplicates"] == 1  # X's redelivery: still a duplicate
    indexed = stack.environment("IntakeFunction")["INDEX_USERS"] == "true"  # UserIndex=false: no ByUser entries
    assert [r.event_key for r in store(stack).by_user(XAA_USER)] == \
        ([XAA_POST_KEY, key_of(xaa_delete(XAA_POST))] if indexed else [])
    assert stored(stack, XAA_POST_KEY).redacted


def test_finding_the_copies_queries_the_index_and_never_scans(stack, faults):
    send(stack, fixture_json("aaa/tweet_create.json"))
    send(stack, fixture_json("aaa/favorite.json"))
    stack.drain()
    send(stack, aaa_delete(AAA_POST))
    scans, by_post = spy(faults, "Scan"), spy(faults, "Query", IndexName="ByPost")
    stack.drain()
    assert (scans.matched, by_post.matched) == (0, 1)
    assert stored(stack, FAVORITE_KEY).redacted and stored(stack, AAA_POST_KEY).redacted


def test_intake_writes_one_item_per_event_and_one_more_per_deletion(stack, faults):
    table = stack.stack.physical("EventsTable")
    puts = spy(faults, "PutItem", TableName=table)
    send(stack, fixture_json("aaa/tweet_create_two.json"))
    assert puts.matched == 2
    send(stack, aaa_delete(AAA_POST))
    assert puts.matched == 4  # the tombstone, then the deletion event
    send(stack, aaa_delete(AAA_POST))
    assert puts.matched == 6  # a redelivery: both conditional writes find their item


def test_a_failure_while_redacting_is_retried_and_the_consumers_are_told_once(stack, faults):
    send(stack, fixture_json("aaa/tweet_create.json"))
    stack.drain()
    receive_all(stack)
    send(stack, aaa_delete(AAA_POST))
    rule = faults.inject("dynamodb", "PutItem", client_error("InternalServerError", 500),
                         when=lambda params: "rev" in params.get("Item", {}))  # a redaction's rewrite
    stack.drain()

    assert rule.fired == 1
    assert stored(stack, AAA_POST_KEY).redacted
    messages = queued(stack)
    assert sorted(m.event_type for m in messages) == sorted(["post.delete", NOTICE_TYPE])


# ------------------------------------------------------------------------------------------- revocations


PRIVATE = ["xaa/16_chat.received.json", "xaa/18_dm.sent.json", "xaa/07_like.create.json"]


def xaa_revoke(at: str = "2026-08-01T00:00:00+00:00") -> dict:
    """xaa/26_oauth.revoke.json, dated after the private fixtures (they are from July 2026)."""
    doc = fixture_json("xaa/26_oauth.revoke.json")
    doc["data"]["payload"]["date_time"] = at
    return doc


@pytest.mark.parametrize("purge", [True, False], ids=["PurgeOnRevoke-true", "PurgeOnRevoke-false"])
def test_a_revocation_purges_the_users_private_events_when_the_parameter_asks(request, capsys, purge):
    stack = request.getfixturevalue("purging_stack" if purge else "stack")
    for name in [*PRIVATE, "xaa/01_post.create.json"]:
        send(stack, fixture_json(name))
    stack.drain()
    receive_all(stack)
    revoke = xaa_revoke()
    send(stack, revoke)
    capsys.readouterr()
    stack.drain()

    for name in PRIVATE:
        record = stored(stack, key_of(fixture_json(name)))
        assert record.redacted is purge, name
        if purge:
            (redaction,) = record.redactions
            assert (redaction.reason, redaction.by, redaction.post_id, redaction.scope) == (
                RedactionReason.USER_REVOKED, key_of(revoke), None, "event")
            assert "text" not in json.dumps(record.event) and "encoded_event" not in json.dumps(record.event)
    assert stored(stack, XAA_POST_KEY).redactions == []  # a post is public: it stays
    assert values(emf(capsys), "UserEventsPurged", service="publisher") == ([3.0] if purge else [])
    assert [m.event_type for m in queued(stack)] == ["oauth.revoke"]

    # A DM from before the revocation that reaches the store after it (a replay) goes out purged.
    late_dm = fixture_json("xaa/19_dm.received.json")
    send(stack, {**late_dm, "meta": {"replay": True}})
    stack.drain()
    (published,) = queued(stack)
    assert published.redacted is purge
    assert ("hello!" in text_of(published)) is not purge


def test_an_aaa_revoke_purges_the_users_dms_context_included(purging_stack):
    dm = fixture_json("aaa/direct_message.json")  # received by 4337869213 in January 2018...
    revoking = "63046977"  # ...now by the user of aaa/user_event_revoke.json (May 2018)
    dm["for_user_id"] = dm["direct_message_events"][0]["message_create"]["target"]["recipient_id"] = revoking
    dm["users"][revoking] = dm["users"].pop("4337869213")
    send(purging_stack, dm)
    send(purging_stack, fixture_json("aaa/user_event_revoke.json"))
    purging_stack.drain()

    record = stored(purging_stack, key_of(dm))
    assert [r.reason for r in record.redactions] == [RedactionReason.USER_REVOKED]
    assert "Hello World!" not in text_of(record) and "Jordan Brinks" not in text_of(record)
    assert record.event["message_create"]["sender_id"] == "3001969357"


def test_a_revocation_older_than_the_events_leaves_them(purging_stack):
    send(purging_stack, fixture_json("xaa/18_dm.sent.json"))  # 2026-07-24
    send(purging_stack, xaa_revoke("2026-07-01T00:00:00+00:00"))
    purging_stack.drain()
    assert stored(purging_stack, key_of(fixture_json("xaa/18_dm.sent.json"))).redactions == []


# ------------------------------------------------------------------------------------------- showing it


def test_events_get_shows_a_redacted_record_as_redacted_with_when_and_why(stack, capsys):
    send(stack, fixture_json("xaa/01_post.create.json"))
    deletion = xaa_delete(XAA_POST)
    send(stack, deletion)
    stack.drain()
    capsys.readouterr()

    assert cli.main(["--stack-name", "xrelay", "events", "get", XAA_POST_KEY]) == 0
    out, err = capsys.readouterr()
    shown = EventRecord.model_validate_json(out)
    (redaction,) = shown.redactions
    assert shown.redacted and XAA_TEXT not in out
    assert f"REDACTED at {redaction.at.isoformat()}: post {XAA_POST} was deleted ({key_of(deletion)})" in err


def test_a_redacted_object_keeps_identifiers_times_and_types_only():
    tweet = aaa_tweet()
    tweet["extended_entities"] = {"media": [{"id_str": "1", "media_url_https": "https://pbs.twimg.com/x.jpg"}]}
    tweet["place"] = {"id": "07d9db48bc083000", "full_name": "Boulder, CO"}
    assert skeleton(tweet) == {
        "created_at": "Mon May 19 14:01:46 +0000 2025", "id": int(AAA_POST), "id_str": AAA_POST,
        "user": {"id": int(AAA_USER), "id_str": AAA_USER, "created_at": "Thu Jan 29 18:14:29 +0000 2015"},
        "timestamp_ms": "1747663306000"}


def test_the_publisher_may_read_and_redact_the_events_table_and_query_its_two_indexes_only():
    import iam

    template = iam.TEMPLATE
    publisher = template["Resources"]["PublisherFunction"]["Properties"]
    grants = {action: resources for action, resources in iam.grants("PublisherFunction").items()
              if action.startswith("dynamodb:") and "StreamArn" not in str(resources)
              and action != "dynamodb:ListStreams"}  # the stream's reads: test_template_iam.py
    table = {"EventsTable.Arn"}
    assert grants == {
        "dynamodb:GetItem": table, "dynamodb:BatchGetItem": table, "dynamodb:UpdateItem": table,
        "dynamodb:PutItem": table,  # a redaction rewrites the whole item (issue 13)
        "dynamodb:BatchWriteItem": table,
        "dynamodb:Query": {"EventsTable.Arn/index/ByPost", "EventsTable.Arn/index/ByUser"},
    }
    assert publisher["Environment"]["Variables"]["PURGE_ON_REVOKE"] == {"Ref": "PurgeOnRevoke"}
    assert template["Parameters"]["PurgeOnRevoke"]["Default"] == "false"

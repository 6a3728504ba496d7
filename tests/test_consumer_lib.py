"""The consumer library (consumer/xrelay_consumer) on real messages: what the local stack's publisher
puts on the events queue, received as a consumer would and handed to a Consumer.

Covers the issue's list: typed records, pointer messages, duplicates (in a batch, across batches
with the dedupe table), compliance messages, unknown types, partial batch failures, schema versions.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws
from xrelay_consumer import (
    Claim,
    Consumer,
    DedupeTable,
    EventRecord,
    Follow,
    InProgressElsewhere,
    LegacyFavorite,
    LegacyTweet,
    Like,
    NewerSchemaVersion,
    OpenPayload,
    PointerMissing,
    Post,
    PostRedacted,
    Revocation,
)

from conftest import fixture_bytes, fixture_json
from helpers import post, receive_all
from xrelay.aws import client
from xrelay.publishing.publisher import SQS_MAX_BYTES

POST_ID = "2080761390344937796"
POST_KEY = f"xaa:post.create:user_id=1111111111111111111:{POST_ID}"


def delivered(stack, *bodies: bytes) -> list[dict[str, Any]]:
    """The events queue's messages after X delivered ``bodies`` (boto3's receive_message shape)."""
    for body in bodies:
        assert post(stack, body)[0] == 200
    stack.drain()
    return receive_all(stack)


def lambda_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The SQS event Lambda hands a function, built from received messages."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                              for k, v in m.get("MessageAttributes", {}).items()},
        "eventSource": "aws:sqs"} for m in messages]}


def dedupe_table(name: str = "consumer-dedupe") -> DedupeTable:
    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    return DedupeTable(name, ddb)


def recording(consumer: Consumer, *event_types: str) -> list[EventRecord]:
    seen: list[EventRecord] = []
    consumer.on(*event_types)(seen.append)
    return seen


def test_records_reach_their_handlers_typed(stack):
    """Each common type arrives with its typed payload; the default branch gets the open rest."""
    messages = delivered(stack, *(fixture_bytes(n) for n in (
        "xaa/01_post.create.json", "xaa/07_like.create.json", "xaa/08_follow.follow.json", "xaa/26_oauth.revoke.json",
        "xaa/20_news.new.json", "aaa/tweet_create.json", "aaa/favorite.json", "other/filtered_stream.json")))
    consumer = Consumer()
    posts = recording(consumer, "post.create", "stream.post")
    likes = recording(consumer, "like.create")
    follows = recording(consumer, "follow.follow")
    revokes = recording(consumer, "oauth.revoke")
    rest: list[EventRecord] = []
    consumer.default(rest.append)

    result = consumer.process(messages)

    assert result.failures == {} and len(result.handled) == 8
    by_source = {(r.source.value, type(r.payload)) for r in posts}
    assert by_source == {("xaa", Post), ("aaa", LegacyTweet), ("stream", Post)}
    (xaa_post,) = [r.payload for r in posts if r.source == "xaa"]
    assert (xaa_post.id, xaa_post.text, xaa_post.author_id) == (POST_ID, "Hello from the Activity API",
                                                                 "1111111111111111111")
    assert {type(r.payload) for r in likes} == {Like, LegacyFavorite}
    (xaa_like,) = [r.payload for r in likes if isinstance(r.payload, Like)]
    assert xaa_like.liked_tweet_id == "2079814480427442556"
    (follow,) = follows
    assert isinstance(follow.payload, Follow) and follow.payload.source.data.id and follow.payload.target.data.id
    (revoke,) = revokes
    assert isinstance(revoke.payload, Revocation) and revoke.payload.user_id == "1111111111111111111"
    (news,) = rest
    assert news.event_type == "news.new" and isinstance(news.payload, OpenPayload)
    assert news.payload.model_extra["id"] == fixture_json("xaa/20_news.new.json")["data"]["payload"]["id"]


def test_a_pointer_message_is_resolved_from_the_events_table(stack):
    doc = fixture_json("xaa/01_post.create.json")
    doc["data"]["payload"]["text"] = "x" * SQS_MAX_BYTES
    (message,) = delivered(stack, json.dumps(doc).encode())
    assert EventRecord.model_validate_json(message["Body"]).is_pointer
    consumer = Consumer(dynamodb=client("dynamodb"))
    posts = recording(consumer, "post.create")

    assert consumer.process([message]).failures == {}

    (full,) = posts
    assert not full.is_pointer and full.event == doc["data"] and full.payload.text == "x" * SQS_MAX_BYTES


def test_a_pointer_whose_record_is_gone_fails_the_message(stack):
    doc = fixture_json("xaa/01_post.create.json")
    doc["data"]["payload"]["text"] = "x" * SQS_MAX_BYTES
    (message,) = delivered(stack, json.dumps(doc).encode())
    client("dynamodb").delete_item(TableName=stack.stack.physical("EventsTable"), Key={"pk": {"S": POST_KEY}})
    consumer = Consumer(dynamodb=client("dynamodb"))
    posts = recording(consumer, "post.create")

    result = consumer.process([message])

    assert posts == [] and isinstance(result.failures[message["MessageId"]], PointerMissing)


def test_a_deletion_reaches_the_compliance_handler_as_a_typed_notice(stack):
    delivered(stack, fixture_bytes("xaa/01_post.create.json"))
    deletion = fixture_json("xaa/02_post.delete.json")
    deletion["data"]["payload"]["id"] = POST_ID
    messages = delivered(stack, json.dumps(deletion).encode())
    consumer = Consumer()
    deletions = recording(consumer, "post.delete")
    notices: list[EventRecord] = []
    consumer.compliance(notices.append)

    assert consumer.process(messages).failures == {}

    (notice,) = notices
    assert notice.is_compliance and isinstance(notice.payload, PostRedacted)
    assert notice.payload.post_id == POST_ID and notice.payload.redacted_event_keys == [POST_KEY]
    assert [d.payload.id for d in deletions] == [POST_ID]


def test_without_a_compliance_handler_the_default_gets_compliance_messages(stack):
    delivered(stack, fixture_bytes("xaa/01_post.create.json"))
    deletion = fixture_json("xaa/02_post.delete.json")
    deletion["data"]["payload"]["id"] = POST_ID
    consumer = Consumer()
    rest: list[EventRecord] = []
    consumer.default(rest.append)
    consumer.process(delivered(stack, json.dumps(deletion).encode()))
    assert sorted(r.event_type for r in rest) == ["post.delete", "xrelay.post.redacted"]


def test_an_unknown_type_goes_to_the_default_or_is_acknowledged_unrouted(stack):
    messages = delivered(stack, fixture_bytes("other/xaa_unknown_type.json"))
    with_default = Consumer()
    rest: list[EventRecord] = []
    with_default.default(rest.append)
    assert with_default.process(messages).failures == {}
    (unknown,) = rest
    assert not unknown.known_type and isinstance(unknown.payload, OpenPayload)

    without = Consumer().process(messages)
    assert without.failures == {} and without.handled == [] and without.unrouted == [unknown.event_key]


def test_copies_of_a_message_in_one_batch_reach_the_handler_once(stack):
    (message,) = delivered(stack, fixture_bytes("xaa/01_post.create.json"))
    consumer = Consumer()
    posts = recording(consumer, "post.create")
    result = consumer.process([message, {**message, "MessageId": "a-second-copy"}])
    assert len(posts) == 1 and result.duplicates == [POST_KEY] and result.failures == {}


def test_the_dedupe_table_drops_a_copy_in_a_later_batch_and_lets_a_failed_one_retry(stack):
    (message,) = delivered(stack, fixture_bytes("xaa/01_post.create.json"))
    dedupe = dedupe_table()
    attempts: list[str] = []

    def flaky(record: EventRecord) -> None:
        attempts.append(record.event_key)
        if len(attempts) == 1:
            raise RuntimeError("downstream is down")

    consumer = Consumer(dedupe=dedupe)
    consumer.on("post.create")(flaky)
    first = consumer.process([message])
    assert list(first.failures) == [message["MessageId"]]  # failed: the claim is released
    assert consumer.process([message]).handled == [POST_KEY]  # the redelivery runs it again
    third = consumer.process([message])  # and any later copy is a duplicate
    assert third.duplicates == [POST_KEY] and third.handled == [] and attempts == [POST_KEY, POST_KEY]
    item = dedupe.dynamodb.get_item(TableName=dedupe.table_name, Key={"pk": {"S": POST_KEY}})["Item"]
    assert item["status"]["S"] == "done" and int(item["expires_at"]["N"]) > 0


def test_a_claim_held_by_another_invocation_fails_the_message_until_it_lapses():
    with mock_aws():
        now = [1_000_000.0]
        dedupe = dedupe_table()
        dedupe.clock = lambda: now[0]
        assert dedupe.claim("k") is Claim.CLAIMED
        assert dedupe.claim("k") is Claim.BUSY  # a concurrent copy: retry later
        now[0] += dedupe.lock.total_seconds() + 1
        assert dedupe.claim("k") is Claim.CLAIMED  # the holder crashed: its claim lapsed
        dedupe.complete("k")
        assert dedupe.claim("k") is Claim.DONE
        now[0] += dedupe.ttl.total_seconds() + 1
        assert dedupe.claim("k") is Claim.CLAIMED  # expired, not yet swept by TTL: new again


def test_a_busy_claim_is_a_batch_item_failure(stack):
    (message,) = delivered(stack, fixture_bytes("xaa/01_post.create.json"))
    dedupe = dedupe_table()
    assert dedupe.claim(POST_KEY) is Claim.CLAIMED  # another invocation holds it
    consumer = Consumer(dedupe=dedupe)
    posts = recording(consumer, "post.create")
    result = consumer.handle(lambda_event([message]))
    assert posts == [] and result == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert isinstance(consumer.process([message]).failures[message["MessageId"]], InProgressElsewhere)


def test_only_the_failing_messages_are_reported_to_lambda(stack):
    messages = delivered(stack, fixture_bytes("xaa/01_post.create.json"), fixture_bytes("xaa/07_like.create.json"),
                         fixture_bytes("xaa/08_follow.follow.json"))
    consumer = Consumer()
    done: list[str] = []
    consumer.default(lambda record: done.append(record.event_type))

    @consumer.on("like.create")
    def broken(record: EventRecord) -> None:
        raise ValueError("cannot store likes today")

    event = lambda_event(messages)
    response = consumer.handle(event)

    (like,) = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["event_type"] == "like.create"]
    assert response == {"batchItemFailures": [{"itemIdentifier": like}]}
    assert sorted(done) == ["follow.follow", "post.create"]


def newer(message: dict[str, Any], *, attribute: bool) -> dict[str, Any]:
    body = {**json.loads(message["Body"]), "schema_version": 3, "a_field_of_version_3": True}
    attrs = dict(message["MessageAttributes"])
    if attribute:
        attrs["schema_version"] = {"DataType": "Number", "StringValue": "3"}
    else:
        attrs.pop("schema_version")
    return {**message, "Body": json.dumps(body), "MessageAttributes": attrs}


@pytest.mark.parametrize("attribute", [True, False], ids=["by-attribute", "by-body"])
def test_a_newer_schema_version_is_refused_with_a_clear_error(stack, attribute):
    (message,) = delivered(stack, fixture_bytes("xaa/01_post.create.json"))
    consumer = Consumer()
    posts = recording(consumer, "post.create")
    result = consumer.process([newer(message, attribute=attribute)])
    error = result.failures[message["MessageId"]]
    assert posts == [] and isinstance(error, NewerSchemaVersion) and error.version == 3
    assert "schema_version 3 is newer than the 2" in str(error) and "upgrade" in str(error)


def test_an_older_record_is_read(stack):
    """A version-1 record (before redactions existed) reads as an unredacted one; unknown fields are ignored."""
    (message,) = delivered(stack, fixture_bytes("xaa/01_post.create.json"))
    body = json.loads(message["Body"])
    for added_in_2 in ("redacted", "redactions"):
        del body[added_in_2]
    old = {**message, "Body": json.dumps({**body, "schema_version": 1}),
           "MessageAttributes": {**message["MessageAttributes"],
                                 "schema_version": {"DataType": "Number", "StringValue": "1"}}}
    consumer = Consumer()
    posts = recording(consumer, "post.create")
    assert consumer.process([old]).failures == {}
    (record,) = posts
    assert record.schema_version == 1 and not record.redacted and record.payload.id == POST_ID


def test_a_body_that_is_no_record_fails_its_message_without_logging_its_content(stack, caplog):
    (message,) = delivered(stack, fixture_bytes("xaa/18_dm.sent.json"))
    body = json.loads(message["Body"])
    body["known_type"] = {"a private message": "Thanks for the update!"}  # not a boolean
    consumer = Consumer()
    consumer.default(lambda record: None)
    result = consumer.process([{**message, "Body": json.dumps(body)}])
    assert list(result.failures) == [message["MessageId"]]
    assert "known_type" in caplog.text and "Thanks for the update" not in caplog.text

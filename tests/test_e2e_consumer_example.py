"""The example consumer (examples/consumer) end to end: X delivers to `xrelay local`, the example's
Lambda handler receives what the events queue carries, and keeps each post once, a pointer message's
post in full, and forgets a post when xrelay's compliance message says it was deleted.

The handler is called as Lambda's SQS event source would call it (an SQS event of the received
messages), with its own tables in the local stack's moto server.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest

from conftest import ROOT, fixture_bytes, fixture_json
from test_e2e_local import Local, consume, deliver, running_local

pytestmark = pytest.mark.e2e

POST_ID = "2080761390344937796"  # xaa/01_post.create.json
REPLY_ID = "2090000000000000001"  # xaa/04_post.reply.create.json
LARGE_TEXT = "a reply longer than SQS takes " * 10_000  # ~290 KB: travels as a pointer message


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    with running_local(tmp_path_factory.mktemp("xrelay-local-consumer")) as running:
        yield running


@pytest.fixture
def example(local: Local, monkeypatch):
    """examples/consumer/app.py, its tables created in the local stack, its boto3 pointed there."""
    ddb = local.aws_client("dynamodb")
    for name, key in (("example-posts", "post_id"), ("example-dedupe", "pk")):
        ddb.create_table(TableName=name, AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": key, "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.aws)
    monkeypatch.setenv("POSTS_TABLE", "example-posts")
    monkeypatch.setenv("DEDUPE_TABLE", "example-dedupe")
    spec = importlib.util.spec_from_file_location("example_consumer_app", ROOT / "examples" / "consumer" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What Lambda's SQS event source hands the function for these received messages."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                              for k, v in m.get("MessageAttributes", {}).items()}} for m in messages]}


def posts(local: Local) -> dict[str, dict[str, Any]]:
    items = local.aws_client("dynamodb").scan(TableName="example-posts", ConsistentRead=True)["Items"]
    return {item["post_id"]["S"]: item for item in items}


def test_deliveries_reach_the_example_consumer_typed_once_and_deletions_are_followed(local, example):
    reply = fixture_json("xaa/04_post.reply.create.json")
    assert reply["data"]["payload"]["id"] == REPLY_ID
    reply["data"]["payload"]["text"] = LARGE_TEXT
    assert deliver(local, fixture_bytes("xaa/01_post.create.json"))[1]["new"] == 1
    assert deliver(local, json.dumps(reply).encode())[1]["new"] == 1

    messages = consume(local, 2)
    bodies = [json.loads(m["Body"]) for m in messages]
    assert sorted(b["event_type"] for b in bodies) == ["post.create", "post.reply.create"]
    assert [b["stored"] is not None for b in bodies if b["event_type"] == "post.reply.create"] == [True]

    # Lambda delivers the batch; SQS delivers it again (at least once): the handler keeps each post once.
    for _ in range(2):
        assert example.handler(sqs_event(messages), None) == {"batchItemFailures": []}
    kept = posts(local)
    assert set(kept) == {POST_ID, REPLY_ID}
    assert kept[POST_ID]["post_text"]["S"] == "Hello from the Activity API"
    assert kept[REPLY_ID]["post_text"]["S"] == LARGE_TEXT  # the pointer was resolved from the events table
    assert {post_id: item["deliveries"]["N"] for post_id, item in kept.items()} == {POST_ID: "1", REPLY_ID: "1"}

    # The author deletes the post: the deletion event and xrelay's compliance message follow.
    deletion = fixture_json("xaa/02_post.delete.json")
    deletion["data"]["payload"]["id"] = POST_ID
    assert deliver(local, json.dumps(deletion).encode())[1]["new"] == 1
    messages = consume(local, 2)
    assert sorted(json.loads(m["Body"])["event_type"] for m in messages) == ["post.delete", "xrelay.post.redacted"]
    assert example.handler(sqs_event(messages), None) == {"batchItemFailures": []}
    assert set(posts(local)) == {REPLY_ID}  # the deleted post is gone from the example's store

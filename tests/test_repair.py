"""`xrelay events republish`: events the publisher gave up on get back on the queue."""

import json
from datetime import UTC, datetime, timedelta

from conftest import fixture_bytes
from helpers import post, published_keys, receive_all, stored_keys
from xrelay.aws import client
from xrelay.tools.cli.cli import main

DELIVERIES = ("xaa/01_post.create.json", "aaa/tweet_create_two.json")


def lambda_on_failure_record(first: datetime, last: datetime, size: int) -> str:
    """What Lambda sends to a stream trigger's OnFailure destination after its last retry."""
    return json.dumps({
        "requestContext": {"requestId": "316aa6d0-8154-4c8f-9af7-85d5f4a6bc81", "condition": "RetryAttemptsExhausted",
                           "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:publisher",
                           "approximateInvokeCount": 101},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": last.isoformat(),
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001573689847184-864758bb", "batchSize": size,
            "startSequenceNumber": "800000000003126276362", "endSequenceNumber": "800000000003126276364",
            "approximateArrivalOfFirstRecord": first.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "approximateArrivalOfLastRecord": last.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-25T00:00:00.000"},
    })


def stored_but_not_queued(stack) -> list[str]:
    """Store events, then lose their messages as if the publisher had given up on them."""
    for name in DELIVERIES:
        assert post(stack, fixture_bytes(name))[0] == 200
    stack.drain()
    receive_all(stack)
    return stored_keys(stack)


def test_failed_batches_are_republished_and_cleared(stack, capsys):
    keys = stored_but_not_queued(stack)
    now = datetime.now(UTC)
    failures = stack.stack.queue_url("PublishFailuresQueue")
    client("sqs").send_message(QueueUrl=failures, MessageBody=lambda_on_failure_record(now, now, len(keys)))
    assert main(["events", "republish", "--from-failures"]) == 0
    assert published_keys(stack) == keys
    assert receive_all(stack, "PublishFailuresQueue") == []
    assert "1 failed batches handled, 0 still failing" in capsys.readouterr().out


def test_a_window_republishes_only_what_was_received_in_it(stack):
    stored_but_not_queued(stack)
    long_ago = datetime.now(UTC) - timedelta(days=1)
    assert main(["events", "republish", "--since", (long_ago - timedelta(hours=1)).isoformat(),
                 "--until", long_ago.isoformat()]) == 0
    assert published_keys(stack) == []
    assert main(["events", "republish", "--since", long_ago.isoformat()]) == 0
    assert published_keys(stack) == stored_keys(stack)


def test_a_message_that_is_not_a_batch_failure_is_left_alone(stack, capsys):
    failures = stack.stack.queue_url("PublishFailuresQueue")
    client("sqs").send_message(QueueUrl=failures, MessageBody='{"something": "else"}')
    assert main(["events", "republish", "--from-failures"]) == 0
    assert "not a stream batch failure" in capsys.readouterr().out
    # Left in the queue and visible again at once (for `xrelay events set-aside list` or a person).
    attrs = client("sqs").get_queue_attributes(QueueUrl=failures, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("1", "0")

"""The local stack's DynamoDB stream numbers records uniquely under concurrent writes, as AWS does:
intake writes a delivery's events concurrently, and the stream poller resumes from a failed record's
sequence number, so a repeated number would publish one record twice and skip another."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from moto import mock_aws
from moto.dynamodb.models.table import StreamRecord, StreamShard

from xrelay.aws import client
from xrelay.tools.local.local import serialise_moto_stream_appends


def stream_numbers(monkeypatch) -> tuple[list[str], list[int]]:
    """100 concurrent PutItems on a streamed moto table: the keys and sequence numbers of its stream.
    moto builds the stream record between taking the number and appending it: a 2 ms pause there
    makes the race certain rather than occasional."""
    build = StreamRecord.__init__

    def slowly(self, *args, **kwargs):
        time.sleep(0.002)
        build(self, *args, **kwargs)

    monkeypatch.setattr(StreamRecord, "__init__", slowly)
    with mock_aws():
        client.cache_clear()
        ddb, streams = client("dynamodb"), client("dynamodbstreams")
        ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST",
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: ddb.put_item(TableName="t", Item={"pk": {"S": k}}), KEYS))
        arn = ddb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    client.cache_clear()
    return ([r["dynamodb"]["Keys"]["pk"]["S"] for r in records],
            [int(r["dynamodb"]["SequenceNumber"]) for r in records])


KEYS = [f"k{i}" for i in range(100)]


def test_concurrent_writes_get_distinct_increasing_sequence_numbers(monkeypatch):
    serialise_moto_stream_appends()
    keys, numbers = stream_numbers(monkeypatch)
    assert sorted(keys) == sorted(KEYS)  # each write once
    assert numbers == sorted(set(numbers)), "sequence numbers repeat or go backwards"


def test_without_it_moto_numbers_concurrent_writes_alike(monkeypatch):
    """The control: moto's own append, raced the same way, repeats numbers (what the patch is for)."""
    serialise_moto_stream_appends()
    monkeypatch.setattr(StreamShard, "add", StreamShard.add.__wrapped__)
    _, numbers = stream_numbers(monkeypatch)
    assert len(set(numbers)) < len(numbers)


def test_the_patch_is_applied_once():
    serialise_moto_stream_appends()
    patched = StreamShard.add
    serialise_moto_stream_appends()
    assert StreamShard.add is patched and patched._xrelay_serialised

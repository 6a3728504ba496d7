"""The local stack's DynamoDB stream numbers records uniquely under concurrent writes, as AWS does:
intake writes a delivery's events concurrently, and the stream poller resumes from a failed record's
sequence number, so a repeated number would publish one record twice and skip another."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from moto import mock_aws
from moto.dynamodb.models.table import StreamShard

from xrelay.aws import client
from xrelay.tools.local.local import serialise_moto_stream_appends


def test_concurrent_writes_get_distinct_increasing_sequence_numbers():
    serialise_moto_stream_appends()
    with mock_aws():
        client.cache_clear()
        ddb, streams = client("dynamodb"), client("dynamodbstreams")
        ddb.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST",
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        keys = [f"k{i}" for i in range(400)]
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: ddb.put_item(TableName="t", Item={"pk": {"S": k}}), keys))
        arn = ddb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sorted(r["dynamodb"]["Keys"]["pk"]["S"] for r in records) == sorted(keys)  # each write once
    assert numbers == sorted(set(numbers)), "sequence numbers repeat or go backwards"


def test_the_patch_is_applied_once():
    serialise_moto_stream_appends()
    patched = StreamShard.add
    serialise_moto_stream_appends()
    assert StreamShard.add is patched and patched._xrelay_serialised

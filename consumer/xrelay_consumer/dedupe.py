"""Deduplication on ``event_key`` across batches and invocations: a DynamoDB table of the consumer's own.

xrelay delivers at least once (docs/event-record.md, "Delivery semantics"), so a consumer whose
handlers are not naturally idempotent needs to remember what it has done. One item per event key:

* ``claim`` writes it ``in_progress`` with a conditional put, so two invocations holding copies
  of one message cannot both run the handler; a claim left by a crashed invocation lapses after
  ``lock``, so the message's next receive can take it over;
* ``complete`` marks it ``done``: later copies are duplicates;
* ``release`` deletes it when the handler failed, so the retry runs the handler again.

Items expire (the table's TTL attribute ``expires_at``) after ``ttl``: by default 30 days, longer
than a message can live on the queue (14 days) plus a redrive from the DLQ (14 more).

The table: partition key ``pk`` (S), TTL on ``expires_at`` (examples/consumer/template.yaml).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any

IN_PROGRESS, DONE = "in_progress", "done"


class Claim(StrEnum):
    CLAIMED = "claimed"  # yours: run the handler, then complete() or release()
    DONE = "done"  # processed before: a duplicate
    BUSY = "busy"  # another invocation holds it right now: retry the message later


class DedupeTable:
    def __init__(self, table_name: str, dynamodb: Any = None, *, ttl: timedelta = timedelta(days=30),
                 lock: timedelta = timedelta(minutes=2), clock: Callable[[], float] = time.time) -> None:
        if dynamodb is None:
            import boto3

            dynamodb = boto3.client("dynamodb")
        self.table_name = table_name
        self.dynamodb = dynamodb
        self.ttl = ttl
        self.lock = lock
        self.clock = clock

    def claim(self, event_key: str) -> Claim:
        now = int(self.clock())
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item={"pk": {"S": event_key}, "status": {"S": IN_PROGRESS},
                      "lock_until": {"N": str(now + int(self.lock.total_seconds()))},
                      "expires_at": {"N": str(now + int(self.ttl.total_seconds()))}},
                # New, expired but not yet swept by TTL, or a lapsed claim of a crashed invocation.
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now "
                                    "OR (#status = :in_progress AND lock_until < :now)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":in_progress": {"S": IN_PROGRESS}},
            )
            return Claim.CLAIMED
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            item = self.dynamodb.get_item(TableName=self.table_name, Key={"pk": {"S": event_key}},
                                          ConsistentRead=True).get("Item", {})
            return Claim.DONE if item.get("status", {}).get("S") == DONE else Claim.BUSY

    def complete(self, event_key: str) -> None:
        self.dynamodb.update_item(
            TableName=self.table_name, Key={"pk": {"S": event_key}},
            UpdateExpression="SET #status = :done REMOVE lock_until",
            ExpressionAttributeNames={"#status": "status"}, ExpressionAttributeValues={":done": {"S": DONE}})

    def release(self, event_key: str) -> None:
        try:
            self.dynamodb.delete_item(
                TableName=self.table_name, Key={"pk": {"S": event_key}},
                ConditionExpression="#status = :in_progress", ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":in_progress": {"S": IN_PROGRESS}})
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            pass  # already done by another copy: nothing of ours to release

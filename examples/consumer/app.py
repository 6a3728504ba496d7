"""An example xrelay consumer: keeps the posts it receives in a table of its own, and forgets a post
when xrelay says it was deleted.

It is the handler of ConsumerFunction (template.yaml beside it), fed by xrelay's events queue, and
all the queue-reading work is xrelay_consumer's: typed records, pointer messages, deduplication
(DedupeTable), routing, partial batch failures. What is left here is the consumer's own business.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import boto3
from xrelay_consumer import Consumer, DedupeTable, EventRecord, LegacyTweet, Post

log = logging.getLogger("example-consumer")
log.setLevel(logging.INFO)

POST_TYPES = ("post.create", "post.reply.create", "post.quote.create", "post.mention.create", "post.repost.create",
              "stream.post")


def make_consumer(dynamodb: Any, posts_table: str, dedupe_table: str) -> Consumer:
    consumer = Consumer(dedupe=DedupeTable(dedupe_table, dynamodb), dynamodb=dynamodb)

    @consumer.on(*POST_TYPES)
    def keep_post(record: EventRecord) -> None:
        payload = record.payload
        if isinstance(payload, Post):
            # A minimal XAA post.create has an empty payload: its event_uuid is the post's id.
            post_id, text, author = payload.id or record.event["event_uuid"], payload.text, payload.author_id
        else:
            assert isinstance(payload, LegacyTweet)  # AAA tweet_create_events
            post_id, text = payload.id_str, payload.full_text or payload.text
            author = payload.user.id_str if payload.user else None
        item = {"post_id": post_id, "event_key": record.event_key, "event_type": record.event_type,
                "author_id": author, "text": text, "redacted": record.redacted}
        # ADD deliveries: the handler runs once per event, so this stays 1 whatever the queue repeats.
        dynamodb.update_item(
            TableName=posts_table, Key={"post_id": {"S": post_id}},
            UpdateExpression="SET event_key = :k, event_type = :t, author_id = :a, post_text = :x, redacted = :r "
                             "ADD deliveries :one",
            ExpressionAttributeValues={
                ":k": {"S": item["event_key"]}, ":t": {"S": item["event_type"]},
                ":a": {"S": author} if author else {"NULL": True}, ":x": {"S": text} if text else {"NULL": True},
                ":r": {"BOOL": item["redacted"]}, ":one": {"N": "1"}})
        log.info("kept post %s (%s)", post_id, record.event_key)

    @consumer.compliance
    def forget_post(record: EventRecord) -> None:
        # X's terms: a deleted post goes from our store too (record.payload is a PostRedacted).
        dynamodb.delete_item(TableName=posts_table, Key={"post_id": {"S": record.payload.post_id}})
        log.info("forgot post %s (%s)", record.payload.post_id, record.event_key)

    @consumer.default
    def everything_else(record: EventRecord) -> None:
        log.info("not kept: %s %s", record.event_type, record.event_key)  # types and keys only, never content

    return consumer


_consumer: Consumer | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _consumer
    if _consumer is None:  # once per execution environment
        _consumer = make_consumer(boto3.client("dynamodb"), os.environ["POSTS_TABLE"], os.environ["DEDUPE_TABLE"])
    return _consumer.handle(event, context)

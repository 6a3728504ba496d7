"""A minimal consumer of xrelay's events queue (docs/event-record.md, "Run a consumer").

Against the local stack (`make run` in another shell) or a deployed one, the same way:

    eval "$(.venv/bin/xrelay env)"       # endpoint, credentials (local only), queue URL, table names
    .venv/bin/python examples/consumer.py          # Ctrl-C stops it
    .venv/bin/python examples/consumer.py --once   # what is waiting, then exit

It does what docs/event-record.md asks of every consumer: one record per message, pointer
messages fetched from the events table, deduplication on event_key (delivery is at least once),
a default branch for event types it does not know, and schema_version checked. A message is
deleted only once handled; one that keeps failing goes to the DLQ (`xrelay dlq redrive`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import zlib

import boto3

KNOWN_SCHEMA_VERSION = 2
log = logging.getLogger("consumer")


def full_record(message_body: str) -> dict:
    """The record, fetched from the events table when the message is a pointer (``stored`` set)."""
    record = json.loads(message_body)
    pointer = record["stored"]
    if pointer is None:
        return record
    item = boto3.client("dynamodb").get_item(
        TableName=pointer["table"],
        Key={name: {"S": value} for name, value in pointer["key"].items()},
        ConsistentRead=True,
    )["Item"]
    return json.loads(zlib.decompress(item["record"]["B"]))


def handle(record: dict) -> None:
    """Your code goes here. Route on event_type, with a default branch: the vocabulary is open."""
    if record["source"] == "xrelay":  # a compliance message: delete your copies of what it names
        print(f"compliance {record['event_type']} {record['event_key']}", flush=True)
    elif record["event_type"] == "post.create":
        print(f"post.create {record['event_key']}", flush=True)
    else:
        print(f"{record['event_type']} {record['event_key']} (known_type={record['known_type']})", flush=True)


def main(argv: list[str]) -> int:
    queue_url = os.environ.get("XRELAY_EVENTS_QUEUE_URL")
    if not queue_url:
        print("consumer: XRELAY_EVENTS_QUEUE_URL is not set: run `eval \"$(.venv/bin/xrelay env)\"` first",
              file=sys.stderr)
        return 2
    once = "--once" in argv
    sqs = boto3.client("sqs")
    seen: set[str] = set()  # in memory for the example; a real consumer keeps these durably
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2 if once else 20,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        for message in messages:
            version = int(message["MessageAttributes"]["schema_version"]["StringValue"])
            if version > KNOWN_SCHEMA_VERSION:  # unknown fields are ignored: read the changelog, go on
                log.warning("schema_version %s is newer than %s", version, KNOWN_SCHEMA_VERSION)
            record = full_record(message["Body"])
            if record["event_key"] not in seen:
                handle(record)
                seen.add(record["event_key"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if once and not messages:
            return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)

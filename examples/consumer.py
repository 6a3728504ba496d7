"""A minimal consumer of xrelay's events queue (docs/event-record.md, "Run a consumer").

Against the local stack (`make run` in another shell) or a deployed one, the same way:

    eval "$(.venv/bin/xrelay env)"       # endpoint, credentials (local only), queue URL, table names
    .venv/bin/python examples/consumer.py          # Ctrl-C stops it
    .venv/bin/python examples/consumer.py --once   # what is waiting, then exit

xrelay_consumer (consumer/) does what docs/event-record.md asks of every consumer: one record per
message, pointer messages fetched from the events table, deduplication on event_key (within a batch
here; pass ``Consumer(dedupe=DedupeTable(...))`` to keep it across batches), a default branch for
event types it does not know, and schema_version checked. A message is deleted only once handled;
one that keeps failing goes to the DLQ (`xrelay dlq redrive`).
"""

from __future__ import annotations

import os
import sys

import boto3
from xrelay_consumer import Consumer, EventRecord

consumer = Consumer()


@consumer.compliance  # a compliance message: delete your copies of what it names
def forget(record: EventRecord) -> None:
    print(f"compliance {record.event_type} {record.event_key}", flush=True)


@consumer.on("post.create")
def post_create(record: EventRecord) -> None:
    print(f"post.create {record.event_key}", flush=True)


@consumer.default  # the vocabulary is open
def other(record: EventRecord) -> None:
    print(f"{record.event_type} {record.event_key} (known_type={record.known_type})", flush=True)


def main(argv: list[str]) -> int:
    queue_url = os.environ.get("XRELAY_EVENTS_QUEUE_URL")
    if not queue_url:
        print("consumer: XRELAY_EVENTS_QUEUE_URL is not set: run `eval \"$(.venv/bin/xrelay env)\"` first",
              file=sys.stderr)
        return 2
    once = "--once" in argv
    sqs = boto3.client("sqs")
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2 if once else 20,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        failed = consumer.process(messages).failures  # logged by xrelay_consumer; left for the queue's retry
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if once and not messages:
            return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)

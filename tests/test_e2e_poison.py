"""Issue 13 through `xrelay local` (a real process, its own moto server): a poison pill is set aside
where an operator finds it, and the events after it reach the queue."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

import test_e2e_local as e2e
from xrelay.events.models import EventRecord, Source, Subscription
from xrelay.publishing.publisher import SET_ASIDE_KIND
from xrelay.storage.store import event_item

pytestmark = pytest.mark.e2e

local = e2e.local  # the same fixture: one more `xrelay local` process, for this module


def test_a_poison_pill_is_set_aside_and_later_events_reach_the_queue(local):
    # An event an earlier xrelay stored with a key near DynamoDB's limit, embedding post 9: the post
    # reference the publisher writes for it (post-ref#9#<key>) is over the key limit, refused for good.
    poison = "aaa:42:favorite:" + "p" * 2030
    record = EventRecord(event_key=poison, source=Source.AAA, event_type="like.create", source_event_type="favorite",
                         known_type=True, user_id="42", subscription=Subscription(for_user_id="42"),
                         received_at=datetime.now(UTC), delivery_id="0" * 64,
                         event={"id": "x", "favorited_status": {"id_str": "9", "text": "t"}}, context={})
    local.aws_client("dynamodb").put_item(TableName=local.resource("EventsTable"), Item=event_item(record, 7))
    later = {"for_user_id": "42", "favorite_events": [{"id": "after-the-pill", "favorited_status": {"id_str": "11"}}]}
    assert e2e.deliver(local, json.dumps(later).encode())[1]["new"] == 1

    keys = [json.loads(m["Body"])["event_key"] for m in e2e.consume(local, 1)]
    assert keys == ["aaa:42:favorite:after-the-pill"]
    sqs, failures = local.aws_client("sqs"), local.queue_url("PublishFailuresQueue")
    deadline, notes = time.monotonic() + e2e.QUEUE_DEADLINE_S, []
    while not notes and time.monotonic() < deadline:
        notes = [json.loads(m["Body"]) for m in sqs.receive_message(
            QueueUrl=failures, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]
    assert [(n["kind"], n["event_key"]) for n in notes] == [(SET_ASIDE_KIND, poison)]
    assert "ValidationException" in notes[0]["reason"]

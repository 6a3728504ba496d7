"""Records on an EventBridge bus (xrelay.publishing.bus): entries rules can route, EventBridge's limits, and
failed entries retried and never lost. Against moto's EventBridge, with rules to SQS queues."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from conftest import fixture_json
from xrelay.events.bounds import packed
from xrelay.events.models import EventRecord
from xrelay.events.normalize import normalize
from xrelay.publishing import bus

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TABLE = "xrelay-EventsTable-EXAMPLE"
log = logging.getLogger("test_bus")


def record(name: str, **payload: Any) -> EventRecord:
    doc = fixture_json(name)
    doc["data"]["payload"].update(payload)
    (event,) = normalize(doc, delivery="d" * 64, received_at=NOW).events
    return event


def queue_for(sqs: Any, events: Any, bus_name: str, name: str, pattern: dict[str, Any]) -> str:
    """A queue receiving what ``pattern`` matches on the bus."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus_name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus_name, Targets=[{"Id": name, "Arn": arn}])
    return url


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    return [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            .get("Messages", [])]


def test_rules_route_two_event_types_to_two_targets():
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="xrelay-events")
        posts = queue_for(sqs, events, "xrelay-events", "posts",
                          {"source": ["xrelay.xaa"], "detail-type": ["post.create"]})
        likes = queue_for(sqs, events, "xrelay-events", "likes",
                          {"source": ["xrelay.xaa"], "detail-type": ["like.create"]})
        post, like = record("xaa/01_post.create.json"), record("xaa/07_like.create.json")
        follow = record("xaa/08_follow.follow.json")  # matches no rule

        result = bus.put_records([("1", post), ("2", like), ("3", follow)], ["1", "2", "3"], events,
                                 "xrelay-events", TABLE, log)

        assert (result.published, result.failed_sequences) == (3, [])
        (to_posts,), (to_likes,) = received(sqs, posts), received(sqs, likes)
        assert (to_posts["source"], to_posts["detail-type"]) == ("xrelay.xaa", "post.create")
        assert EventRecord.model_validate(to_posts["detail"]) == post  # the detail is the record itself
        assert EventRecord.model_validate(to_likes["detail"]) == like


def test_a_record_too_large_for_an_entry_goes_as_its_pointer():
    large = record("xaa/01_post.create.json", text="x" * bus.MAX_ENTRY_BYTES)
    entry = bus.bus_entry("1", large, "xrelay-events", TABLE)
    assert entry.pointer and entry.size <= bus.MAX_ENTRY_BYTES
    assert EventRecord.model_validate_json(entry.entry["Detail"]) == large.as_pointer(TABLE)
    small = bus.bus_entry("2", record("xaa/01_post.create.json"), "xrelay-events", TABLE)
    assert not small.pointer and small.size == 14 + len("xrelay.xaa") + len("post.create") + len(
        small.entry["Detail"].encode())


def test_a_detail_type_longer_than_eventbridge_takes_is_cut_the_detail_keeps_it():
    long_type = "x." + "y" * 200
    unknown = record("other/xaa_unknown_type.json").model_copy(update={"event_type": long_type})
    entry = bus.bus_entry("1", unknown, "b", TABLE).entry
    assert entry["DetailType"] == long_type[:128] and json.loads(entry["Detail"])["event_type"] == long_type


def test_calls_hold_at_most_ten_entries_and_256_kib():
    small = record("xaa/01_post.create.json")
    half = record("xaa/01_post.create.json", text="x" * (bus.MAX_ENTRY_BYTES // 2))
    entries = [bus.bus_entry(str(i), small, "b", TABLE) for i in range(23)]
    assert [len(b) for b in packed(entries, bus.MAX_ENTRIES, bus.MAX_ENTRY_BYTES)] == [10, 10, 3]
    mixed = [bus.bus_entry(str(i), half, "b", TABLE) for i in range(3)]
    assert [len(b) for b in packed(mixed, bus.MAX_ENTRIES, bus.MAX_ENTRY_BYTES)] == [1, 1, 1]
    assert all(sum(e.size for e in b) <= bus.MAX_ENTRY_BYTES
               for b in packed(entries + mixed, bus.MAX_ENTRIES, bus.MAX_ENTRY_BYTES))


class FlakyBus:
    """PutEvents that refuses the entries whose DetailType is in ``refuse`` for the first ``times`` calls."""

    def __init__(self, refuse: set[str], times: int, raises: bool = False, code: str = "ThrottlingException") -> None:
        self.refuse, self.times, self.raises, self.code = refuse, times, raises, code
        self.calls: list[list[str]] = []
        self.accepted: list[str] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.calls.append([e["DetailType"] for e in Entries])
        failing = len(self.calls) <= self.times
        if failing and self.raises:
            raise ConnectionError("endpoint unreachable")
        answers = []
        for entry in Entries:
            if failing and entry["DetailType"] in self.refuse:
                answers.append({"ErrorCode": self.code, "ErrorMessage": "slow down"})
            else:
                answers.append({"EventId": str(len(self.accepted))})
                self.accepted.append(entry["DetailType"])
        return {"FailedEntryCount": sum("ErrorCode" in a for a in answers), "Entries": answers}


RECORDS = [("s1", "xaa/01_post.create.json"), ("s2", "xaa/07_like.create.json"), ("s3", "xaa/08_follow.follow.json")]


def three() -> list[tuple[str, EventRecord]]:
    return [(seq, record(name)) for seq, name in RECORDS]


def test_a_refused_entry_is_retried_alone_and_the_others_are_not_sent_twice():
    flaky = FlakyBus({"like.create"}, times=1)
    result = bus.put_records(three(), ["s0", "s1", "s2", "s3"], flaky, "b", TABLE, log, sleep=lambda s: None)
    assert flaky.calls == [["post.create", "like.create", "follow.follow"], ["like.create"]]
    assert sorted(flaky.accepted) == ["follow.follow", "like.create", "post.create"]
    assert (result.published, result.retried, result.failed_sequences) == (3, 1, [])


@pytest.mark.parametrize("raises,failed", [(False, ["s2", "s3"]), (True, ["s1", "s2", "s3"])],
                         ids=["refused", "call-failed"])
def test_an_entry_that_keeps_failing_fails_its_stream_record_and_every_later_one(raises, failed):
    flaky = FlakyBus({"like.create"}, times=bus.ATTEMPTS, raises=raises)
    slept: list[float] = []
    result = bus.put_records(three(), ["s0", "s1", "s2", "s3"], flaky, "b", TABLE, log, sleep=slept.append)
    assert len(flaky.calls) == bus.ATTEMPTS and slept == [bus.BACKOFF_S, 2 * bus.BACKOFF_S]
    # Lambda retries from the first entry that did not go in (the like, or the whole batch when the
    # call itself failed): it and every later record go again, what went in before it does not.
    assert result.failed_sequences == failed and result.published == 3 - len(failed)


def test_a_failed_putevents_call_logs_its_error_code_not_just_clienterror(caplog):
    from botocore.exceptions import ClientError

    class DeniedBus:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents")

    with caplog.at_level(logging.ERROR, logger="test_bus"):
        result = bus.put_records(three(), ["s1", "s2", "s3"], DeniedBus(), "b", TABLE, log, sleep=lambda s: None)
    assert result.failed_sequences == ["s1", "s2", "s3"]
    assert {r.error for r in caplog.records if r.getMessage() == "PutEvents failed"} == {"AccessDeniedException"}

@pytest.mark.parametrize("noted", [True, False], ids=["set-aside", "no-failure-queue"])
def test_an_entry_refused_for_good_is_not_retried_but_set_aside_and_the_rest_flow(noted):
    flaky = FlakyBus({"like.create"}, times=1000, code="MalformedDetail")
    notes: list[tuple[str, str, str]] = []

    def sink(ident: str, key: str, reason: str) -> bool:
        notes.append((ident, key, reason))
        return noted

    records = three()
    result = bus.put_records(records, ["s1", "s2", "s3"], flaky, "b", TABLE, log, sleep=lambda s: None,
                             set_aside=sink)
    assert len(flaky.calls) == 1  # a refusal for good is not asked again
    assert notes == [("s2", records[1][1].event_key, "EventBridge refused the entry: MalformedDetail")]
    if noted:
        assert (result.published, result.set_aside, result.failed_sequences) == (2, ["s2"], [])
    else:  # the note could not be sent: the record fails its stream record, Lambda retries from it
        assert (result.published, result.set_aside, result.failed_sequences) == (1, [], ["s2", "s3"])


def test_xrelay_consumer_reads_records_from_a_queue_the_bus_targets():
    from xrelay_consumer import Consumer, Like

    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        likes = queue_for(sqs, events, "default", "likes", {"source": ["xrelay.xaa"], "detail-type": ["like.create"]})
        like = record("xaa/07_like.create.json")
        assert bus.put_records([("1", like)], ["1"], events, "default", TABLE, log).published == 1
        messages = sqs.receive_message(QueueUrl=likes, MaxNumberOfMessages=10)["Messages"]
        consumer = Consumer()
        seen = []
        consumer.on("like.create")(seen.append)
        assert consumer.process(messages).failures == {}
        (typed,) = seen
        assert typed.event_key == like.event_key and isinstance(typed.payload, Like)

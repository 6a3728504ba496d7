"""The publisher with an EventBridge bus (EventBusMode off, also, only), in the template's own stack
inside moto: what reaches the queue and the bus, a PutEvents entry that fails retried and never
lost, one refused for good set aside."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import emf, post, published_keys, receive_all, values
from xrelay.aws import client
from xrelay.events.models import EventRecord, Source
from xrelay.publishing import bus

RULE_PATTERN = {"source": ["xrelay.aaa", "xrelay.xrelay"]}


def favorites(*ids: str) -> bytes:
    return json.dumps({"for_user_id": "42", "favorite_events": [
        {"id": i, "favorited_status": {"id_str": "11"}, "timestamp_ms": "1700000000000"} for i in ids]}).encode()


DELETION = json.dumps({"for_user_id": "42", "tweet_delete_events": [
    {"status": {"id": "9", "user_id": "7"}, "timestamp_ms": "1700000000000"}]}).encode()


@pytest.fixture
def bus_stack(request, monkeypatch):
    """The stack provisioned with ``EventBusMode`` = the test's parameter, its bus (``<stack>-events``,
    which the template creates and the local stack makes in moto), and a rule sending xrelay's entries
    to a queue of the test's own."""
    from moto import mock_aws

    from conftest import ROOT
    from xrelay.tools.local.local import LocalStack

    monkeypatch.setattr(bus, "BACKOFF_S", 0.0)
    with mock_aws():
        client.cache_clear()
        local = LocalStack(ROOT, "xrelay")
        local.provision({"EventBusMode": request.param})
        events, sqs = client("events"), client("sqs")
        name = local.environment("PublisherFunction")["EVENT_BUS_NAME"]
        if request.param == "off":  # no bus then: one to show that nothing is put on it
            events.create_event_bus(Name=name)
        url = sqs.create_queue(QueueName="routed")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all-of-xrelay", EventBusName=name, EventPattern=json.dumps(RULE_PATTERN))
        events.put_targets(Rule="all-of-xrelay", EventBusName=name, Targets=[{"Id": "routed", "Arn": arn}])
        local.routed_url = url
        yield local
    client.cache_clear()


def drain(stack, rounds: int = 50) -> None:
    for _ in range(rounds):
        if not any(p.poll_once()[0] for p in stack.pollers()):
            return
    raise AssertionError("the stream never drained")


def on_the_bus(stack) -> list[dict[str, Any]]:
    """The EventBridge events the rule delivered to its queue (received and deleted)."""
    sqs, out = client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=stack.routed_url, MaxNumberOfMessages=10).get("Messages", []):
        out.extend(json.loads(m["Body"]) for m in batch)
        sqs.delete_message_batch(QueueUrl=stack.routed_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    return out


def bus_keys(events: list[dict[str, Any]]) -> list[str]:
    return sorted(EventRecord.model_validate(e["detail"]).event_key for e in events)


@pytest.mark.parametrize("bus_stack", ["off", "also", "only"], indirect=True)
def test_each_record_and_compliance_message_reaches_the_queue_the_bus_or_both_once(bus_stack, capsys):
    mode = bus.BusMode(bus_stack.parameters()["EventBusMode"])
    assert post(bus_stack, DELETION)[0] == 200
    assert post(bus_stack, favorites("a", "b"))[1]["new"] == 2
    drain(bus_stack)

    everything = ["aaa:42:favorite:a", "aaa:42:favorite:b", "aaa:42:tweet_delete:9"]
    queued = [json.loads(m["Body"]) for m in receive_all(bus_stack)]
    assert published_keys_of(queued) == (everything if mode.queue else [])
    assert sum(1 for r in queued if r["source"] == "xrelay") == (1 if mode.queue else 0)  # the compliance message
    routed = on_the_bus(bus_stack)
    compliance = [e for e in routed if e["source"] == "xrelay.xrelay"]
    assert bus_keys([e for e in routed if e["source"] == "xrelay.aaa"]) == (everything if mode.bus else [])
    assert len(compliance) == (1 if mode.bus else 0)
    if mode.bus:
        (deleted,) = compliance
        assert deleted["detail-type"] == deleted["detail"]["event_type"] == "xrelay.post.redacted"
        assert {e["detail-type"] for e in routed if e["source"] == "xrelay.aaa"} == {"like.create", "post.delete"}
    blobs = emf(capsys)
    assert sum(values(blobs, "EventsPublishedToBus")) == (4 if mode.bus else 0)  # the compliance message too
    assert sum(values(blobs, "EventsPublished")) == 3


def published_keys_of(bodies: list[dict[str, Any]]) -> list[str]:
    return sorted(EventRecord.model_validate(b).event_key for b in bodies
                  if EventRecord.model_validate(b).source is not Source.XRELAY)


def refuse_entries(marker: str, code: str):
    """PutEvents answering ``code`` for the entries whose detail holds ``marker``, moto taking the rest."""

    def action(aws, operation, params, real):
        entries = params["Entries"]
        taken = iter(real({**params, "Entries": [e for e in entries if marker not in e["Detail"]]})["Entries"]
                     if any(marker not in e["Detail"] for e in entries) else [])
        answers = [{"ErrorCode": code, "ErrorMessage": "injected"} if marker in e["Detail"] else next(taken)
                   for e in entries]
        return {"FailedEntryCount": sum("ErrorCode" in a for a in answers), "Entries": answers}

    return action


@pytest.mark.parametrize("bus_stack", ["also"], indirect=True)
def test_an_entry_that_keeps_failing_fails_its_record_which_lambda_retries_and_nothing_is_lost(bus_stack, faults,
                                                                                              capsys):
    rule = faults.inject("events", "PutEvents", refuse_entries('favorite:b"', "ThrottlingException"),
                         times=bus.ATTEMPTS)
    for ident in "abc":  # one delivery each: the stream holds them in this order
        post(bus_stack, favorites(ident))
    drain(bus_stack)

    assert rule.fired == bus.ATTEMPTS  # the first invocation tried b three times, then failed its record
    # b is on the bus, once. c went in with the call that b failed in, and the queue took b and c
    # before the bus failed b: Lambda's retry from b sends c to the bus, and b and c to the queue,
    # again: the at-least-once duplicates the README states (consumers dedupe on event_key).
    assert bus_keys(on_the_bus(bus_stack)) == ["aaa:42:favorite:a", "aaa:42:favorite:b", "aaa:42:favorite:c",
                                               "aaa:42:favorite:c"]
    assert published_keys(bus_stack) == ["aaa:42:favorite:a", "aaa:42:favorite:b", "aaa:42:favorite:b",
                                         "aaa:42:favorite:c", "aaa:42:favorite:c"]
    blobs = emf(capsys)
    assert sum(values(blobs, "EventBusFailures")) == 2  # b and c, in the invocation that failed
    assert sum(values(blobs, "EventsPublishedToBus")) == 3


@pytest.mark.parametrize("bus_stack", ["only"], indirect=True)
def test_an_entry_eventbridge_refuses_for_good_is_set_aside_and_later_records_flow(bus_stack, faults, capsys):
    faults.inject("events", "PutEvents", refuse_entries('favorite:POISON"', "MalformedDetail"), times=1000)
    post(bus_stack, favorites("a", "POISON", "b"))
    drain(bus_stack)

    assert bus_keys(on_the_bus(bus_stack)) == ["aaa:42:favorite:a", "aaa:42:favorite:b"]
    [note] = [json.loads(m["Body"]) for m in receive_all(bus_stack, "PublishFailuresQueue")]
    assert note["event_key"] == "aaa:42:favorite:POISON" and "MalformedDetail" in note["reason"]
    assert published_keys(bus_stack) == []  # only: the queue gets nothing
    blobs = emf(capsys)
    assert sum(values(blobs, "EventsSetAside")) == 1 and not values(blobs, "EventBusFailures")


@pytest.mark.parametrize("bus_stack", ["also"], indirect=True)
def test_the_local_stack_makes_the_stacks_bus_and_a_rule_to_a_queue_that_shows_its_entries(bus_stack):
    from xrelay.tools.local.local import BUS_QUEUE_SUFFIX

    buses = {b["Name"] for b in client("events").list_event_buses()["EventBuses"]}
    assert "xrelay-events" in buses  # made from the template's EventBus (its Condition holds)
    post(bus_stack, favorites("a"))
    drain(bus_stack)
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName="xrelay" + BUS_QUEUE_SUFFIX)["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    entry = json.loads(message["Body"])
    assert (entry["source"], entry["detail-type"]) == ("xrelay.aaa", "like.create")
    assert EventRecord.model_validate(entry["detail"]).event_key == "aaa:42:favorite:a"


def test_without_the_bus_the_local_stack_makes_none(stack):
    assert {b["Name"] for b in client("events").list_event_buses()["EventBuses"]} == {"default"}
    assert "EventBus" not in stack.stack.resources

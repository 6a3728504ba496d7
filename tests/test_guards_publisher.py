"""Issue 19: the publisher's failure paths other than SQS itself, its batches against SQS's limits, and
its own guard on which stream records it publishes (xrelay.publishing.publisher).

Through the real PublisherFunction (the local stack's stream poller, as Lambda runs it) except for the
size of one message, which is checked on ``outgoing`` at the byte where SQS's limit falls.

SQS's limits, as read for this file (AWS SQS developer guide, "Amazon SQS message quotas" and "Amazon SQS
batch actions", and the 2025/2026 announcements of 1 MiB payloads): at most 10 entries a
SendMessageBatch; a message's size is its body plus each attribute's name, type and value; a queue's
MaximumMessageSize may be up to 1 MiB, and the whole batch up to 1 MiB. template.yaml keeps the events
queue at 262,144 bytes (MaximumMessageSize), and the publisher packs a batch within that too, which is
within both limits.
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from helpers import client_error, connection_error, emf, post, receive_all, values
from test_publisher_bus import bus_keys, bus_stack, on_the_bus  # noqa: F401 (bus_stack: a fixture)
from xrelay.aws import client
from xrelay.events.models import EventRecord, Source, Subscription
from xrelay.publishing.publisher import SQS_MAX_BYTES, SQS_MAX_ENTRIES, decode_message, outgoing

TABLE = "events-table"


def favorites(*ids: str, liked: str = "11") -> bytes:
    """One AAA delivery of likes of post ``liked`` (each like embeds it: one post reference each)."""
    return json.dumps({"for_user_id": "42", "favorite_events": [
        {"id": i, "favorited_status": {"id_str": liked, "text": f"liked words {liked}"},
         "timestamp_ms": "1700000000000"} for i in ids]}).encode()


def deletion(post_id: str) -> bytes:
    """An AAA tweet_delete_events delivery: intake writes the post's tombstone, then the event."""
    return json.dumps({"for_user_id": "42", "tweet_delete_events": [
        {"status": {"id": post_id, "user_id": "7"}, "timestamp_ms": "1700000000000"}]}).encode()


def like_each(stack, *likes: str) -> None:
    """One delivery a like. Intake writes a delivery's events concurrently, and moto's stream numbers
    concurrent writes racily (two records may get one sequence number, which DynamoDB never gives)."""
    for like in likes:
        accepted(stack, favorites(like))


def like_key(like: str) -> str:
    return f"aaa:42:favorite:{like}"


def accepted(stack, body: bytes) -> None:
    code, answer = post(stack, body)
    assert code == 200 and answer["new"] >= 1, answer


def messages(stack) -> list[EventRecord]:
    return [decode_message(m["Body"]) for m in receive_all(stack)]


def counted(records: list[EventRecord]) -> Counter[str]:
    return Counter(r.event_key for r in records)


@pytest.fixture
def runs(stack, monkeypatch):
    """Each PublisherFunction invocation: (every sequence number it was handed, its answer's failures)."""
    seen: list[tuple[list[str], list[str]]] = []
    real_invoke = stack.invoke

    def invoke(function: str, event: dict[str, Any]) -> Any:
        result = real_invoke(function, event)
        if function == "PublisherFunction":
            seen.append(([r["dynamodb"]["SequenceNumber"] for r in event["Records"]],
                         [f["itemIdentifier"] for f in result["batchItemFailures"]]))
        return result

    monkeypatch.setattr(stack, "invoke", invoke)
    return seen


@pytest.fixture
def batches(faults):
    """Every SendMessageBatch call's entries, each checked against SQS's limits before it goes to moto."""
    sent: list[list[dict[str, Any]]] = []

    def check(aws, operation, params, real):
        entries = params["Entries"]
        assert 1 <= len(entries) <= 10, len(entries)
        assert all(message_size(e) <= 262_144 for e in entries)  # the events queue's MaximumMessageSize
        assert sum(message_size(e) for e in entries) <= 1_048_576  # SQS's limit on a whole batch
        sent.append(entries)
        return real(params)

    faults.inject("sqs", "SendMessageBatch", check, times=10**6)
    return sent


def message_size(entry: dict[str, Any]) -> int:
    """SQS's size of a message: the body's bytes, and each attribute's name, type and value."""
    return len(entry["MessageBody"].encode()) + sum(
        len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
        for name, value in entry.get("MessageAttributes", {}).items())


# ------------------------------------------------------------------------------------------- which records


def test_only_inserts_are_published_when_the_stream_hands_over_the_redactions_modifies_too(stack, runs):
    """The template's FilterCriteria passes INSERTs only; without it (a filter edited away, a mapping made
    by hand) the publisher's own guard must still keep a redaction's MODIFY from going out again."""
    (poller,) = stack.pollers()
    poller.filters = []  # what Lambda would hand over with no FilterCriteria: MODIFYs and REMOVEs too
    like_each(stack, "a", "b")
    stack.drain()
    accepted(stack, deletion("11"))  # redacts both likes: two MODIFY records on the stream
    stack.drain()
    table = stack.stack.physical("EventsTable")
    client("dynamodb").delete_item(TableName=table, Key={"pk": {"S": like_key("b")}})  # as a TTL expiry: a REMOVE
    stack.drain()

    got = messages(stack)
    assert counted(got) == Counter({like_key("a"): 1, like_key("b"): 1, "aaa:42:tweet_delete:11": 1,
                                    "xrelay:post.redacted:11": 1})
    assert all(not r.redacted for r in got if r.event_type == "like.create")  # the first, unredacted, copies only
    assert all(failed == [] for _, failed in runs)


# ------------------------------------------------------------------------------------------- failing before sending


@pytest.mark.parametrize("operation", ["BatchWriteItem", "BatchGetItem"],
                         ids=["post-references-fail", "tombstone-reads-fail"])
def test_compliance_reads_or_writes_failing_fail_the_whole_batch_before_anything_is_sent(stack, faults, runs,
                                                                                         batches, operation, capsys):
    like_each(stack, "a", "b", "c")
    rule = faults.inject("dynamodb", operation, client_error("InternalServerError", 500))
    capsys.readouterr()
    stack.drain()

    assert rule.fired == 1
    (first, failed), (second, failed_again) = runs[:2]
    assert failed == first and len(first) == 3  # every record, since nothing was sent
    assert (second, failed_again) == (first, [])
    assert len(batches) == 1  # the first run sent nothing: only the retry's batch went out
    blobs = emf(capsys)
    assert values(blobs, "FanoutFailures", service="publisher") == [3.0]
    assert sum(values(blobs, "EventsPublished", service="publisher")) == 3  # the retry's, and nothing else
    assert values(blobs, "ComplianceMessagesSent", service="publisher") == []
    assert values(blobs, "EventsSetAside", service="publisher") == []
    assert counted(messages(stack)) == Counter({like_key(x): 1 for x in "abc"})


def test_compliance_work_failing_mid_batch_sends_what_came_before_and_retries_from_there(stack, faults, runs):
    """A tombstone in the middle of a batch: finding the copies fails (the ByPost Query), so the records
    before it go out, and Lambda resumes at the tombstone: nothing lost, nothing sent twice."""
    accepted(stack, favorites("before"))
    accepted(stack, deletion("9"))  # the tombstone, then the deletion event
    accepted(stack, favorites("after"))
    rule = faults.inject("dynamodb", "Query", connection_error, when=lambda p: p.get("IndexName") == "ByPost")
    stack.drain()

    assert rule.fired == 1
    (first, failed), (second, failed_again) = runs[:2]
    assert len(first) == 4 and failed == first[1:]  # from the tombstone on
    assert (second, failed_again) == (first[1:], [])
    got = messages(stack)
    assert counted(got) == Counter({like_key("before"): 1, like_key("after"): 1, "aaa:42:tweet_delete:9": 1,
                                    "xrelay:post.redacted:9": 1})


def test_two_tombstones_failing_in_one_batch_resume_at_the_first_and_no_notice_is_lost(stack, faults, runs):
    """The first failure stops the compliance work: a later one must not move the resume point past a
    tombstone whose notice never went out."""
    accepted(stack, favorites("before"))
    accepted(stack, deletion("9"))
    accepted(stack, deletion("8"))
    accepted(stack, favorites("after"))
    rule = faults.inject("dynamodb", "Query", connection_error, times=2, when=lambda p: p.get("IndexName") == "ByPost")
    stack.drain()

    assert rule.fired == 2
    (first, failed) = runs[0]
    assert len(first) == 6 and failed == first[1:]  # from the first tombstone on
    assert counted(messages(stack)) == Counter({like_key("before"): 1, like_key("after"): 1, "aaa:42:tweet_delete:9": 1,
                                                "aaa:42:tweet_delete:8": 1, "xrelay:post.redacted:9": 1,
                                                "xrelay:post.redacted:8": 1})


def test_a_refused_record_after_the_resume_point_is_set_aside_once_by_the_retry(stack, faults, runs):
    """A record that can never be published, behind a transient failure: the retry will see it again,
    so only the retry sets it aside (one note, not one a try)."""
    accepted(stack, favorites("before"))
    accepted(stack, deletion("9"))
    client("dynamodb").put_item(TableName=stack.stack.physical("EventsTable"), Item={
        "pk": {"S": "aaa:42:favorite:garbled"}, "record": {"B": b"not zlib at all"}})
    accepted(stack, favorites("after"))
    rule = faults.inject("dynamodb", "Query", connection_error, when=lambda p: p.get("IndexName") == "ByPost")
    stack.drain()

    assert rule.fired == 1
    (first, failed), (second, failed_again) = runs[:2]
    assert len(first) == 5 and failed == first[1:] and failed_again == []
    (note,) = [json.loads(m["Body"]) for m in receive_all(stack, "PublishFailuresQueue")]
    assert note["event_key"] == "aaa:42:favorite:garbled" and note["sequence"] == first[3]
    assert counted(messages(stack)) == Counter({like_key("before"): 1, like_key("after"): 1, "aaa:42:tweet_delete:9": 1,
                                                "xrelay:post.redacted:9": 1})


def test_a_tombstone_whose_compliance_work_is_refused_is_set_aside_and_the_batch_flows(stack, faults, runs):
    """DynamoDB refusing the work for good (here the ByPost Query, as a ValidationException): a retry
    would be refused again, so the tombstone is set aside and the records after it go out."""
    like_each(stack, "before")
    accepted(stack, deletion("9"))
    like_each(stack, "after")
    rule = faults.inject("dynamodb", "Query", client_error("ValidationException", 400), times=10,
                         when=lambda p: p.get("IndexName") == "ByPost")
    stack.drain()

    assert rule.fired == 1 and all(failed == [] for _, failed in runs)
    (note,) = [json.loads(m["Body"]) for m in receive_all(stack, "PublishFailuresQueue")]
    assert note["event_key"] == "deleted-post#9" and "its compliance work was refused" in note["reason"]
    assert note["sequence"] == runs[0][0][1]  # the tombstone's record
    assert counted(messages(stack)) == Counter({like_key("before"): 1, like_key("after"): 1,
                                                "aaa:42:tweet_delete:9": 1})


def test_a_copy_whose_redaction_is_refused_is_set_aside_and_the_other_copy_and_the_notice_go_out(stack, faults,
                                                                                                 runs, capsys):
    """Two stored copies of a deleted post; DynamoDB refuses for good to rewrite one of them. The other
    is redacted, the compliance message names it, and the refused one is reported on the failure queue
    without holding the batch (it is no record of the batch: a retry could not change it)."""
    like_each(stack, "a", "b")
    stack.drain()
    receive_all(stack)
    refused = faults.inject("dynamodb", "PutItem", client_error("ValidationException", 400), times=10,
                            when=lambda p: "rev" in p.get("Item", {}) and p["Item"]["pk"]["S"] == like_key("a"))
    accepted(stack, deletion("11"))
    capsys.readouterr()
    stack.drain()

    assert refused.fired == 1 and all(failed == [] for _, failed in runs)
    (notice,) = [r for r in messages(stack) if r.source is Source.XRELAY]
    assert notice.event["redacted_event_keys"] == [like_key("b")] and notice.event["redacted_event_keys_total"] == 1
    (note,) = [json.loads(m["Body"]) for m in receive_all(stack, "PublishFailuresQueue")]
    assert note["event_key"] == like_key("a") and "redacting deleted post 11 was refused" in note["reason"]
    assert note["sequence"] == f"copy:{like_key('a')}"
    assert sum(values(emf(capsys), "EventsSetAside", service="publisher")) == 1


def test_a_record_that_cannot_be_decoded_is_set_aside_and_the_rest_of_the_batch_flows(stack, runs):
    """Its key as long as DynamoDB allows (2048 bytes): the note names it whole, for `xrelay` to find it."""
    garbled = "aaa:42:favorite:" + "g" * (2048 - len("aaa:42:favorite:"))
    accepted(stack, favorites("before"))
    table = stack.stack.physical("EventsTable")
    client("dynamodb").put_item(TableName=table, Item={"pk": {"S": garbled}, "record": {"B": b"not zlib at all"}})
    accepted(stack, favorites("after"))
    stack.drain()

    assert counted(messages(stack)) == Counter({like_key("before"): 1, like_key("after"): 1})
    (note,) = [json.loads(m["Body"]) for m in receive_all(stack, "PublishFailuresQueue")]
    assert (note["event_key"], note["stored"]) == (garbled, {"table": table, "key": {"pk": garbled}})
    assert note["reason"].startswith("its stored record cannot be decoded (")  # the decoder's error named
    assert all(failed == [] for _, failed in runs)


def fail_entries_of(event_type: str):
    """SendMessageBatch takes every entry but those of ``event_type``, which fail as SQS's own fault."""
    def action(aws, operation, params, real):
        bad = [e for e in params["Entries"] if e["MessageAttributes"]["event_type"]["StringValue"] == event_type]
        response = real({**params, "Entries": [e for e in params["Entries"] if e not in bad]})
        response["Failed"] = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
                              for e in bad]
        return response
    return action


def test_a_compliance_message_counts_as_sent_when_it_went_out_even_if_a_later_record_failed(stack, faults, runs,
                                                                                            capsys, caplog):
    """The tombstone's notice goes out, the deletion event after it fails: the notice is counted in the run
    that sent it, and the retry sends (and counts) only the deletion event."""
    accepted(stack, favorites("a"))
    stack.drain()
    receive_all(stack)
    accepted(stack, deletion("11"))
    capsys.readouterr()
    rule = faults.inject("sqs", "SendMessageBatch", fail_entries_of("post.delete"))
    stack.drain()

    assert rule.fired == 1
    (first, failed), (second, failed_again) = runs[-2:]
    assert len(first) == 2 and failed == first[1:] and (second, failed_again) == (first[1:], [])
    out = capsys.readouterr().out
    blobs = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    assert values(blobs, "ComplianceMessagesSent", service="publisher") == [1.0]
    assert sum(values(blobs, "EventsPublished", service="publisher")) == 1  # the deletion event; the notice is none
    assert values(blobs, "FanoutFailures", service="publisher") == [1.0]
    assert values(blobs, "EventsPublishedToBus") == []  # EventBusMode off: nothing claims the bus got any
    logged = "\n".join(caplog.messages)  # not stdout: the logger keeps the stream of the test that loaded it
    assert "PutEvents entries retried" not in logged and "fan-out incomplete" in logged
    assert sorted(r.event_key for r in messages(stack)) == ["aaa:42:tweet_delete:11", "xrelay:post.redacted:11"]


def test_an_entry_sqs_refuses_for_good_mid_batch_is_set_aside_and_the_entries_after_it_count_as_published(
        stack, faults, runs, capsys):
    def refuse_poison(aws, operation, params, real):
        bad = [e for e in params["Entries"] if "POISON" in e["MessageBody"]]
        response = real({**params, "Entries": [e for e in params["Entries"] if e not in bad]})
        response["Failed"] = [{"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents",
                               "Message": "injected"} for e in bad]
        return response

    faults.inject("sqs", "SendMessageBatch", refuse_poison, times=10**6)
    for like in ("a", "POISON", "b", "c"):  # one delivery each: in this order on the stream, in one batch
        accepted(stack, favorites(like))
    capsys.readouterr()
    stack.drain()

    blobs = emf(capsys)
    assert sum(values(blobs, "EventsPublished", service="publisher")) == 3
    assert values(blobs, "EventsSetAside", service="publisher") == [1.0]
    assert all(failed == [] for _, failed in runs)
    assert counted(messages(stack)) == Counter({like_key(x): 1 for x in "abc"})


@pytest.mark.parametrize("bus_stack", ["also"], indirect=True)
def test_with_the_queue_and_the_bus_the_bus_gets_only_what_the_queue_took_before_its_first_failure(bus_stack,  # noqa: F811
                                                                                                   faults):
    """EventBusMode=also: the queue fails b (not for good) and takes c and d; Lambda retries from b, which
    sends c and d to the queue again. The bus waits for the retry for all three, so each reaches it once."""
    def fail_b(aws, operation, params, real):
        bad = [e for e in params["Entries"]
               if e["MessageAttributes"]["event_key"]["StringValue"] == like_key("b")]
        response = real({**params, "Entries": [e for e in params["Entries"] if e not in bad]})
        response["Failed"] = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
                              for e in bad]
        return response

    rule = faults.inject("sqs", "SendMessageBatch", fail_b)
    like_each(bus_stack, "a", "b", "c", "d")
    bus_stack.drain()

    assert rule.fired == 1
    assert bus_keys(on_the_bus(bus_stack)) == [like_key(x) for x in "abcd"]
    assert counted(messages(bus_stack)) == Counter({like_key("a"): 1, like_key("b"): 1, like_key("c"): 2,
                                                    like_key("d"): 2})  # the queue's at-least-once duplicates


# ------------------------------------------------------------------------------------------- SQS's limits


def test_a_batch_of_many_small_events_goes_out_in_calls_of_ten_entries(stack, batches):
    likes = [f"l{i:02}" for i in range(23)]
    like_each(stack, *likes)
    stack.drain()

    assert [len(b) for b in batches] == [10, 10, 3]
    assert counted(messages(stack)) == Counter({like_key(x): 1 for x in likes})
    assert SQS_MAX_ENTRIES == 10


def test_large_events_are_packed_within_the_byte_limit_not_one_a_call(stack, batches):
    """Five events of ~90 KB each: two fit a call of 262,144 bytes, three do not."""
    for i in range(5):
        words = base64.b64encode(random.Random(i).randbytes(66_000)).decode()  # ~88 KB, incompressible
        tweet = {"for_user_id": "42", "tweet_create_events": [
            {"id_str": f"50{i}", "text": words, "user": {"id_str": "42"}}]}
        accepted(stack, json.dumps(tweet).encode())
    stack.drain()

    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(message_size(e) for e in b) <= SQS_MAX_BYTES for b in batches)
    got = messages(stack)
    assert sorted(r.event_key for r in got) == [f"aaa:42:tweet:50{i}" for i in range(5)]
    assert not any(r.stored for r in got)  # each fits a message: the full record, no pointer


def test_an_event_over_the_limit_goes_as_a_pointer_and_is_counted_as_one(stack, batches, capsys):
    words = base64.b64encode(random.Random(7).randbytes(200_000)).decode()  # ~267 KB: over the queue's limit
    accepted(stack, json.dumps({"for_user_id": "42", "tweet_create_events": [
        {"id_str": "700", "text": words, "user": {"id_str": "42"}}]}).encode())
    accepted(stack, favorites("small"))
    capsys.readouterr()
    stack.drain()

    blobs = emf(capsys)
    assert values(blobs, "OversizeEventsAsPointers", service="publisher") == [1.0]
    assert sum(values(blobs, "EventsPublished", service="publisher")) == 2
    got = {r.event_key: r for r in messages(stack)}
    assert got["aaa:42:tweet:700"].stored is not None and got[like_key("small")].stored is None
    assert [len(b) for b in batches] == [2]  # the pointer is small: both in one call


def record_of_size(size: int) -> EventRecord:
    """A record whose message (body and attributes, as SQS counts them) is exactly ``size`` bytes."""
    def record(text: str) -> EventRecord:
        return EventRecord(event_key="aaa:42:tweet:1", source=Source.AAA, event_type="post.create",
                           source_event_type="tweet_create", known_type=True, user_id="42",
                           subscription=Subscription(for_user_id="42"), received_at=datetime(2026, 1, 1, tzinfo=UTC),
                           delivery_id="0" * 64, event={"text": text})

    message = outgoing("1", record(""), TABLE)
    base = message_size({"MessageBody": message.body, "MessageAttributes": message.attributes})
    return record("a" * (size - base))


def test_a_message_of_exactly_the_queues_limit_goes_whole_and_one_byte_more_as_a_pointer():
    exact = outgoing("1", record_of_size(SQS_MAX_BYTES), TABLE)
    assert message_size({"MessageBody": exact.body, "MessageAttributes": exact.attributes}) == 262_144
    assert exact.size == 262_144 and not exact.pointer
    assert EventRecord.model_validate_json(exact.body).event["text"].startswith("a")

    over = outgoing("1", record_of_size(SQS_MAX_BYTES + 1), TABLE)
    assert over.pointer and over.size < 4096
    pointer = EventRecord.model_validate_json(over.body)
    assert (pointer.event, pointer.stored.table, pointer.stored.key) == (None, TABLE, {"pk": "aaa:42:tweet:1"})
    assert over.attributes == exact.attributes  # consumers still filter on them

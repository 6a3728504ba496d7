"""Issue 13: one record that can never be published must not stop every later event.

The publisher sets such a record aside (a note on the PublishFailuresQueue, EventsSetAside) and the
rest flows on; what it cannot classify fails the batch, and the local stream poller then does what
Lambda does: retries up to MaximumRetryAttempts, bisects, and describes the batch it gives up on the
on-failure destination.
"""

import base64
import json
import random
from datetime import UTC, datetime

import pytest

from helpers import client_error, connection_error, emf, post, published_keys, receive_all, values
from xrelay.events.models import EventRecord, Source, Subscription
from xrelay.publishing.publisher import SET_ASIDE_KIND, decode_message
from xrelay.storage.store import EventStore, event_item
from xrelay.tools.operate.repair import failed_batch


def favorites(*ids: str) -> bytes:
    return json.dumps({"for_user_id": "42", "favorite_events": [
        {"id": i, "favorited_status": {"id_str": "11"}, "timestamp_ms": "1700000000000"} for i in ids]}).encode()


def failure_notes(stack) -> list[dict]:
    return [json.loads(m["Body"]) for m in receive_all(stack, "PublishFailuresQueue")]


def drain(stack, rounds: int = 400) -> None:
    """Poll until the stream is empty (the pollers retry without sleeping here)."""
    for _ in range(rounds):
        if not any(p.poll_once()[0] for p in stack.pollers()):
            return
    raise AssertionError("the stream never drained")


def test_a_large_post_embedding_a_deleted_post_is_redacted_and_everything_after_it_flows(stack):
    """It used to fail its redaction with a ValidationException and hold every later event."""
    deletion = {"for_user_id": "42", "tweet_delete_events": [
        {"status": {"id": "9", "user_id": "7"}, "timestamp_ms": "1700000000000"}]}
    assert post(stack, json.dumps(deletion).encode())[0] == 200
    big = base64.b64encode(random.Random(1).randbytes(270_000)).decode()  # too large for one SQS message
    tweet = {"for_user_id": "42", "tweet_create_events": [{
        "id_str": "100", "text": big, "user": {"id_str": "42"},
        "quoted_status": {"id_str": "9", "text": "deleted words", "user": {"id_str": "7"}}}]}
    assert post(stack, json.dumps(tweet).encode())[1]["new"] == 1
    assert post(stack, favorites("f1"))[1]["new"] == 1
    drain(stack)

    stored = EventStore(stack.stack.physical("EventsTable"), 7).get("aaa:42:tweet:100")
    assert stored.redacted and "deleted words" not in json.dumps(stored.event)
    assert published_keys(stack) == ["aaa:42:favorite:f1", "aaa:42:tweet:100", "aaa:42:tweet_delete:9"]
    assert failure_notes(stack) == []


def stored_by_an_older_version(stack, key: str) -> None:
    """An event an earlier xrelay stored with a key near DynamoDB's limit, embedding post 9: its post
    reference item (post-ref#9#<key>) is over the 2048-byte key limit, which DynamoDB (and moto) refuse."""
    record = EventRecord(event_key=key, source=Source.AAA, event_type="like.create", source_event_type="favorite",
                         known_type=True, user_id="42", subscription=Subscription(for_user_id="42"),
                         received_at=datetime.now(UTC), delivery_id="0" * 64,
                         event={"id": "x", "favorited_status": {"id_str": "9", "text": "t"}}, context={})
    from xrelay.aws import client

    client("dynamodb").put_item(TableName=stack.stack.physical("EventsTable"), Item=event_item(record, 7))


def test_a_record_dynamodb_refuses_for_good_is_set_aside_and_later_events_flow(stack, capsys):
    poison = "aaa:42:favorite:" + "p" * 2030
    post(stack, favorites("before"))
    stored_by_an_older_version(stack, poison)
    post(stack, favorites("after"))
    drain(stack)

    assert published_keys(stack) == ["aaa:42:favorite:after", "aaa:42:favorite:before"]
    [note] = failure_notes(stack)
    assert note["kind"] == SET_ASIDE_KIND and note["event_key"] == poison
    assert "ValidationException" in note["reason"] and note["stored"]["key"] == {"pk": poison}
    assert sum(values(emf(capsys), "EventsSetAside")) == 1


def refuse_entries_with(marker: str):
    def action(aws, operation, params, real):
        bad = [e for e in params["Entries"] if marker in e["MessageBody"]]
        response = real({**params, "Entries": [e for e in params["Entries"] if e not in bad]})
        response["Failed"] = [{"Id": e["Id"], "SenderFault": True, "Code": "InvalidMessageContents",
                               "Message": "Invalid binary character"} for e in bad]
        return response
    return action


def test_an_entry_sqs_refuses_as_the_senders_fault_is_set_aside(stack, faults):
    post(stack, favorites("a", "POISON", "b"))
    faults.inject("sqs", "SendMessageBatch", refuse_entries_with("POISON"), times=1000)
    drain(stack)
    assert published_keys(stack) == ["aaa:42:favorite:a", "aaa:42:favorite:b"]
    [note] = failure_notes(stack)
    assert note["event_key"] == "aaa:42:favorite:POISON" and "InvalidMessageContents" in note["reason"]


def test_a_batch_sqs_refuses_whole_is_sent_one_by_one_and_only_the_bad_entry_set_aside(stack, faults):
    post(stack, favorites("a", "POISON", "b"))
    faults.inject("sqs", "SendMessageBatch", client_error("AWS.SimpleQueueService.InvalidMessageContents", 400),
                  times=1000, when=lambda params: any("POISON" in e["MessageBody"] for e in params["Entries"]))
    drain(stack)
    assert published_keys(stack) == ["aaa:42:favorite:a", "aaa:42:favorite:b"]
    assert [n["event_key"] for n in failure_notes(stack)] == ["aaa:42:favorite:POISON"]


def test_a_transient_failure_is_still_retried_not_set_aside(stack, faults):
    post(stack, favorites("a", "b"))
    rule = faults.inject("sqs", "SendMessageBatch", client_error("RequestThrottled", 400), times=3)
    drain(stack)
    assert rule.fired == 3 and published_keys(stack) == ["aaa:42:favorite:a", "aaa:42:favorite:b"]
    assert failure_notes(stack) == []


# -------------------------------------------------------------------------------- the local poller, as Lambda


def test_the_poller_gives_up_after_maximum_retry_attempts_and_describes_the_batch_on_the_destination(stack, faults):
    """A failure the publisher cannot classify (here: SQS unreachable for one record, forever) is retried
    MaximumRetryAttempts times (100 in template.yaml), then described on the on-failure destination:
    `xrelay events republish --from-failures` reads it back, and later events flow meanwhile."""
    post(stack, favorites("STUCK"))
    faults.inject("sqs", "SendMessageBatch", connection_error, times=10_000,
                  when=lambda params: any("STUCK" in e["MessageBody"] for e in params["Entries"]))
    [poller] = stack.pollers()
    assert (poller.max_retries, poller.bisect, poller.on_failure) == (100, True, "PublishFailuresQueue")
    drain(stack, rounds=1000)
    post(stack, favorites("later"))
    drain(stack)

    assert published_keys(stack) == ["aaa:42:favorite:later"]
    [message] = receive_all(stack, "PublishFailuresQueue")
    info = json.loads(message["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["DDBStreamBatchInfo"]["batchSize"] == 1
    assert failed_batch(message) is not None  # the republish command understands it
    assert poller.given_up == 1


def test_a_function_error_is_bisected_down_to_the_record_that_causes_it(stack, monkeypatch):
    post(stack, favorites(*[f"k{i}" for i in range(7)], "CRASH", *[f"m{i}" for i in range(8)]))
    real_invoke = stack.invoke
    crashed: list[int] = []  # the sizes of the batches that held the crashing record

    def invoke(function, event):
        if function == "PublisherFunction":
            if any("CRASH" in json.dumps(r["dynamodb"].get("Keys", {})) for r in event["Records"]):
                crashed.append(len(event["Records"]))
                raise RuntimeError("the function crashed")
        return real_invoke(function, event)

    monkeypatch.setattr(stack, "invoke", invoke)
    [poller] = stack.pollers()
    poller.max_retries = 6
    drain(stack)

    # Halved until the crashing record is alone (the healthy halves go through), then retried alone.
    # (Intake writes a delivery's events concurrently: the record's place in the stream varies.)
    assert crashed[:5] == [16, 8, 4, 2, 1] and set(crashed[5:]) <= {1}
    keys = [decode_message(m["Body"]).event_key for m in receive_all(stack)]
    assert sorted(keys) == sorted(f"aaa:42:favorite:{k}" for k in [*[f"k{i}" for i in range(7)],
                                                                   *[f"m{i}" for i in range(8)]])
    [message] = receive_all(stack, "PublishFailuresQueue")
    assert json.loads(message["Body"])["DDBStreamBatchInfo"]["batchSize"] == 1


@pytest.mark.parametrize("retries", [0, 2])
def test_maximum_retry_attempts_is_the_number_of_retries_after_the_first_try(stack, monkeypatch, retries):
    post(stack, favorites("CRASH"))
    calls: list[int] = []
    real_invoke = stack.invoke

    def invoke(function, event):
        if function == "PublisherFunction":
            calls.append(1)
            raise RuntimeError("always")
        return real_invoke(function, event)

    monkeypatch.setattr(stack, "invoke", invoke)
    [poller] = stack.pollers()
    poller.max_retries = retries
    drain(stack)
    assert len(calls) == retries + 1 and poller.given_up == 1


def test_without_a_failure_queue_a_refused_record_fails_its_batch_and_lambda_gives_it_up(stack, faults, monkeypatch):
    """A publisher deployed without PUBLISH_FAILURES_QUEUE_URL cannot set aside: the record fails its batch,
    and the event source mapping's retries and on-failure destination take over, as before."""
    post(stack, favorites("POISON"))
    faults.inject("sqs", "SendMessageBatch", refuse_entries_with("POISON"), times=1000)
    monkeypatch.setattr(stack.module("PublisherFunction"), "FAILURES_URL", None)
    [poller] = stack.pollers()
    poller.max_retries = 2
    drain(stack)
    [message] = receive_all(stack, "PublishFailuresQueue")
    assert json.loads(message["Body"])["DDBStreamBatchInfo"]["batchSize"] == 1 and poller.given_up == 1
    assert published_keys(stack) == []

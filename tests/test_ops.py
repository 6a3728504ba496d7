"""`xrelay dlq redrive` and `xrelay events tail` (xrelay.tools.operate.ops) against the local stack in moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest

from conftest import EACH_USER_INDEX, fixture_bytes, fixture_json, users_indexed
from helpers import client_error, post, receive_all, stored_keys
from test_command_schemas import validate
from xrelay.aws import client
from xrelay.events.models import json_schema
from xrelay.events.normalize import delivery_id, normalize
from xrelay.storage.store import EventStore
from xrelay.tools.cli.cli import main
from xrelay.tools.operate import ops

# ---------------------------------------------------------------------------- dlq redrive


def dead_letters(stack, n: int) -> dict[str, dict[str, Any]]:
    """Put ``n`` messages shaped like the publisher's (String, Number and a Binary attribute) in the DLQ."""
    sqs, dlq = client("sqs"), stack.stack.queue_url("EventsDLQ")
    sent = {}
    for start in range(0, n, 10):
        entries = []
        for i in range(start, min(n, start + 10)):
            body = json.dumps({"event_key": f"xaa:post.create:k{i:03d}", "n": i})
            attrs = {"event_key": {"DataType": "String", "StringValue": f"xaa:post.create:k{i:03d}"},
                     "schema_version": {"DataType": "Number", "StringValue": "1"},
                     "raw": {"DataType": "Binary", "BinaryValue": bytes([i % 256, 0, 255])}}
            entries.append({"Id": str(i), "MessageBody": body, "MessageAttributes": attrs})
            sent[body] = attrs
        assert not sqs.send_message_batch(QueueUrl=dlq, Entries=entries).get("Failed")
    return sent


def contents(stack, logical_id: str) -> dict[str, dict[str, Any]]:
    return {m["Body"]: m.get("MessageAttributes", {}) for m in receive_all(stack, logical_id)}


def redrive(stack, progress: list[str] | None = None, **kwargs) -> ops.RedriveResult:
    """``progress``, when given, collects the progress lines."""
    kwargs.setdefault("wait_seconds", 0)
    return ops.redrive(client("sqs"), stack.stack.queue_url("EventsDLQ"), stack.stack.queue_url("EventsQueue"),
                       progress=(progress if progress is not None else []).append, sleep=lambda s: None, **kwargs)


def test_redrive_moves_every_message_with_its_attributes(stack, capsys):
    sent = dead_letters(stack, 23)
    assert main(["dlq", "redrive", "--json"]) == 0
    out = capsys.readouterr()
    result = validate("dlq-redrive", out.out)
    # moto has no StartMessageMoveTask: the copy is what runs here
    assert (result["method"], result["moved"], result["failed"], result["not_deleted"], result["ok"]) == \
        ("copy", 23, 0, 0, True)
    assert "StartMessageMoveTask is not available" in out.err and "moved 23 of ~23" in out.err
    assert contents(stack, "EventsQueue") == sent
    assert contents(stack, "EventsDLQ") == {}


def test_a_send_failing_part_way_loses_nothing(stack, faults):
    sent = dead_letters(stack, 25)
    faults.inject("sqs", "SendMessageBatch", client_error("ServiceUnavailable", 503), after=1)
    result = redrive(stack)
    assert (result.method, result.moved, result.failed, result.status, result.ok) == ("copy", 10, 10, "STOPPED", False)
    assert "ServiceUnavailable" in result.errors[0]
    moved, left = contents(stack, "EventsQueue"), contents(stack, "EventsDLQ")
    assert len(moved) == 10 and len(left) == 15  # the unsent batch is visible in the DLQ again at once
    assert {**moved, **left} == sent and not moved.keys() & left.keys()


def test_entries_the_queue_refuses_stay_in_the_dlq(stack, faults):
    sent = dead_letters(stack, 10)

    def refuse_one(aws, operation, params, real):
        entries = params["Entries"]
        answer = real({**params, "Entries": [e for e in entries if e["Id"] != "3"]})
        answer.setdefault("Failed", []).append({"Id": "3", "Code": "InternalError", "SenderFault": False})
        return answer

    faults.inject("sqs", "SendMessageBatch", refuse_one)
    result = redrive(stack)
    assert (result.moved, result.failed, result.ok) == (9, 1, False)
    left = contents(stack, "EventsDLQ")
    assert len(left) == 1 and {**contents(stack, "EventsQueue"), **left} == sent


def test_a_failed_delete_is_reported_and_nothing_is_lost(stack, faults):
    sent = dead_letters(stack, 4)
    faults.inject("sqs", "DeleteMessageBatch", client_error("InternalError", 500))
    result = redrive(stack)
    assert (result.moved, result.not_deleted, result.ok) == (4, 4, False)
    assert contents(stack, "EventsQueue") == sent  # and they reappear in the DLQ after the visibility timeout


def test_max_moves_at_most_n(stack, capsys):
    sent = dead_letters(stack, 15)
    assert main(["dlq", "redrive", "--max", "12"]) == 0
    assert "copy: 12 moved, 0 not sent" in capsys.readouterr().out
    moved = contents(stack, "EventsQueue")
    assert len(moved) == 12 and len(contents(stack, "EventsDLQ")) == 3 and moved.items() <= sent.items()


def test_the_move_task_is_used_where_sqs_has_it(stack, faults):
    dead_letters(stack, 3)
    calls: list[dict[str, Any]] = []
    started = faults.inject("sqs", "StartMessageMoveTask",
                            lambda aws, op, params, real: calls.append(params) or {"TaskHandle": "task-1"})
    states = iter([("RUNNING", 1), ("COMPLETED", 3)])

    def list_tasks(aws, op, params, real):
        status, moved = next(states)
        return {"Results": [{"Status": status, "SourceArn": params["SourceArn"], "ApproximateNumberOfMessagesMoved": moved,
                             "ApproximateNumberOfMessagesToMove": 3}]}

    faults.inject("sqs", "ListMessageMoveTasks", list_tasks, times=2)
    lines: list[str] = []
    result = redrive(stack, lines)
    assert started.fired == 1 and calls[0]["SourceArn"].endswith(stack.stack.physical("EventsDLQ").rsplit("/", 1)[-1])
    assert calls[0]["DestinationArn"].endswith(stack.stack.physical("EventsQueue").rsplit("/", 1)[-1])
    assert (result.method, result.moved, result.status, result.ok) == ("move-task", 3, "COMPLETED", True)
    assert lines[-2:] == ["moved 1 of ~3 (running)", "moved 3 of ~3 (completed)"]
    # not waited for: returned running, with the handle to follow or cancel it
    faults.inject("sqs", "StartMessageMoveTask", lambda aws, op, params, real: {"TaskHandle": "task-2"})
    running = redrive(stack, wait=False)
    assert (running.method, running.status, running.task_handle, running.ok) == ("move-task", "RUNNING", "task-2", True)


def test_other_move_task_errors_are_not_hidden_by_the_fallback(stack, faults):
    dead_letters(stack, 1)
    faults.inject("sqs", "StartMessageMoveTask", client_error("AccessDenied", 403))
    with pytest.raises(Exception, match="AccessDenied"):
        redrive(stack)
    assert len(contents(stack, "EventsDLQ")) == 1


def test_an_empty_dlq(stack, capsys):
    assert main(["dlq", "redrive", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["moved"] == 0


# ---------------------------------------------------------------------------- events tail

USER = "2244994945"


def store_fixture(stack, name: str, received_at: datetime, delay: timedelta | None = timedelta(seconds=2)) -> list[str]:
    """Store a fixture's events as intake would have at ``received_at``, ``delay`` after they happened
    (None: when the fixture says, in 2025); their keys."""
    body = fixture_bytes(name)
    store = EventStore(stack.stack.physical("EventsTable"), 30, index_users=users_indexed(stack))
    records = normalize(fixture_json(name), delivery=delivery_id(body), received_at=received_at).events
    for record in records:
        if delay is not None:
            record = record.model_copy(update={"occurred_at": received_at - delay})
        assert store.put_new(record)
    return [r.event_key for r in records]


def tail_output(capsys, *args: str) -> list[str]:
    assert main(["events", "tail", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_tail_once_json_lines_are_event_records(stack, capsys):
    for name in ("xaa/01_post.create.json", "aaa/tweet_create_two.json", "xaa/07_like.create.json"):
        assert post(stack, fixture_bytes(name))[0] == 200
    capsys.readouterr()  # the handler's EMF metric lines
    lines = tail_output(capsys, "--once", "--json")
    schema = json_schema()
    records = [json.loads(line) for line in lines]
    for record in records:
        jsonschema.validate(record, schema)
    assert sorted(r["event_key"] for r in records) == stored_keys(stack)
    received = [r["received_at"] for r in records]
    assert received == sorted(received)


@EACH_USER_INDEX
def test_tail_filters_by_type_and_user(stack, capsys):
    now = datetime.now(UTC)
    posts = store_fixture(stack, "xaa/01_post.create.json", now - timedelta(minutes=1))
    likes = store_fixture(stack, "xaa/07_like.create.json", now - timedelta(minutes=1))
    tweets = store_fixture(stack, "aaa/tweet_create_two.json", now - timedelta(seconds=30))
    json_keys = lambda lines: sorted(json.loads(line)["event_key"] for line in lines)  # noqa: E731

    assert json_keys(tail_output(capsys, "--once", "--json", "--type", "post.create")) == sorted(posts + tweets)
    assert json_keys(tail_output(capsys, "--once", "--json", "--type", "like.create", "--type", "no.such")) == likes
    assert json_keys(tail_output(capsys, "--once", "--json", "--user", USER)) == sorted(tweets)
    assert json_keys(tail_output(capsys, "--once", "--json", "--user", USER, "--type", "like.create")) == []


@EACH_USER_INDEX
def test_a_user_tail_shows_replayed_events_within_x_replay_window(stack, capsys):
    now = datetime.now(UTC)
    replayed = store_fixture(stack, "aaa/tweet_create_two.json", now - timedelta(seconds=5), delay=timedelta(hours=23))
    keys = lambda lines: sorted(json.loads(line)["event_key"] for line in lines)  # noqa: E731
    assert keys(tail_output(capsys, "--once", "--json", "--user", USER)) == sorted(replayed)


@EACH_USER_INDEX
def test_a_user_tail_misses_what_arrived_more_than_a_day_after_it_happened_only_through_the_index(stack, capsys):
    # documented: the ByUser index is ordered by when events happened; the scan sees everything
    stale = store_fixture(stack, "aaa/tweet_create_two.json", datetime.now(UTC), delay=None)  # happened in 2025
    by_user = tail_output(capsys, "--once", "--user", USER)[1:]
    assert sorted(line.split()[-1] for line in by_user) == ([] if users_indexed(stack) else sorted(stale))
    assert sorted(line.split()[-1] for line in tail_output(capsys, "--once")[1:]) == sorted(stale)


def test_tail_since(stack, capsys):
    now = datetime.now(UTC)
    old = store_fixture(stack, "xaa/01_post.create.json", now - timedelta(minutes=20))
    new = store_fixture(stack, "xaa/07_like.create.json", now - timedelta(minutes=2))
    default = tail_output(capsys, "--once")  # the last 5 minutes
    assert default[0].split() == ["received", "source", "type", "user", "key"]
    assert [line.split()[-1] for line in default[1:]] == new
    assert sorted(line.split()[-1] for line in tail_output(capsys, "--once", "--since", "30m")[1:]) == sorted(old + new)
    since = (now - timedelta(minutes=21)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(tail_output(capsys, "--once", "--since", since)) == 1 + len(old + new)
    assert main(["events", "tail", "--once", "--since", "yesterday"]) == 2


def test_tail_line():
    doc = fixture_json("other/xaa_replayed_like.json")
    record = normalize(doc, delivery="d", received_at=datetime(2026, 11, 25, 8, 0, 1, 500000, tzinfo=UTC)).events[0]
    line = ops.tail_line(record)
    assert line.startswith("2026-11-25T08:00:01.500Z  xaa     like.create*")
    assert line.endswith(record.event_key) and (record.user_id or "-") in line


@EACH_USER_INDEX
def test_each_event_is_printed_once_and_late_writes_are_caught(stack):
    store = EventStore(stack.stack.physical("EventsTable"), 30, index_users=users_indexed(stack))
    now = datetime.now(UTC)
    tail = ops.EventTail(store, now - timedelta(minutes=5))
    first = store_fixture(stack, "xaa/01_post.create.json", now - timedelta(seconds=5))
    assert [r.event_key for r in tail.poll()] == first
    assert tail.poll() == []
    # stamped before the newest one printed, written after the poll (a slow PutItem): still shown, once
    late = store_fixture(stack, "xaa/07_like.create.json", now - timedelta(seconds=20))
    assert [r.event_key for r in tail.poll()] == late
    assert tail.poll() == []
    # the same by user (through the ByUser index, or a Scan without it)
    user_tail = ops.EventTail(store, now - timedelta(minutes=5), user=USER)
    tweets = store_fixture(stack, "aaa/tweet_create_two.json", now - timedelta(seconds=1))
    assert sorted(r.event_key for r in user_tail.poll()) == sorted(tweets)
    assert user_tail.poll() == []


def test_follow_prints_new_events_until_ctrl_c(stack, capsys, monkeypatch):
    now = datetime.now(UTC)
    keys = store_fixture(stack, "xaa/01_post.create.json", now - timedelta(seconds=10))
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        if len(polls) == 1:
            keys.extend(store_fixture(stack, "xaa/07_like.create.json", datetime.now(UTC)))
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(ops.time, "sleep", sleep)
    assert main(["events", "tail", "--interval", "0.5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines[1:]] == keys and polls == [0.5, 0.5]


def test_parse_since():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert ops.parse_since("90s", now) == now - timedelta(seconds=90)
    assert ops.parse_since("2h", now) == now - timedelta(hours=2)
    assert ops.parse_since("1d", now) == now - timedelta(days=1)
    assert ops.parse_since("2026-11-25T08:00:00Z") == datetime(2026, 11, 25, 8, tzinfo=UTC)
    with pytest.raises(ValueError):
        ops.parse_since("soon")

"""Set-aside notes on the publisher's failure queue: status tells them from failed batches, and
`xrelay events set-aside` lists them and gives them up on record (`republish` cannot help them).

Runs against the local stack (moto): the notes are sent by the publisher's own FailureQueue.
"""

from __future__ import annotations

import json
import logging

import pytest

from test_status import BATCH_FAILURE, healthy, problem, status_json  # noqa: F401 - healthy is a fixture
from xrelay.aws import client
from xrelay.publishing.publisher import FailureQueue
from xrelay.tools.cli.cli import main
from xrelay.tools.operate import set_aside

KEY = "xaa:1996103847155826990:post.create"


def failures_url(stack) -> str:
    return stack.stack.queue_url("PublishFailuresQueue")


def set_aside_one(stack, key: str = KEY, reason: str = "ValidationException: Item size has exceeded") -> None:
    sink = FailureQueue(client("sqs"), failures_url(stack), stack.stack.physical("EventsTable"),
                        logging.getLogger("test"))
    assert sink("800000000003126276362", key, reason) and sink.count == 1


def depth(stack) -> int:
    attrs = client("sqs").get_queue_attributes(QueueUrl=failures_url(stack), AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_counts_batches_and_notes_apart_each_with_its_own_step(healthy, capsys):  # noqa: F811
    sqs = client("sqs")
    sqs.send_message(QueueUrl=failures_url(healthy), MessageBody=BATCH_FAILURE)
    set_aside_one(healthy)
    set_aside_one(healthy, key="aaa:1:favorite")
    code, report = status_json(capsys)
    assert code == 1
    kinds = report.publish_failures
    assert (kinds.batches, kinds.set_aside, kinds.other, kinds.read, kinds.complete) == (1, 2, 0, 3, True)
    findings = [f"{p.message} / do: {p.action}" for p in report.problems if p.check == "queues"]
    (batch,) = [f for f in findings if "failed batch" in f]
    (notes,) = [f for f in findings if "set-aside note" in f]
    assert "holds 1 failed batch(es)" in batch and "republish --from-failures" in batch
    assert "holds 2 set-aside note(s)" in notes and "xrelay events set-aside list" in notes
    assert "republish" not in notes
    # Looking hid nothing: every message is visible again for republish or set-aside list.
    assert depth(healthy) == (3, 0)


def test_a_message_of_neither_kind_is_reported_as_such(healthy, capsys):  # noqa: F811
    client("sqs").send_message(QueueUrl=failures_url(healthy), MessageBody="{}")
    code, report = status_json(capsys)
    assert code == 1 and report.publish_failures.other == 1
    assert "1 message(s) that are neither" in problem(report, "queues")


def test_a_note_is_listed_then_discarded_on_record_and_republish_leaves_it(healthy, capsys):  # noqa: F811
    set_aside_one(healthy)
    # republish --from-failures handles batches only: the note stays (and no batch failed).
    code, out, _ = run(capsys, "events", "republish", "--from-failures")
    assert code == 0 and "skipped a message that is not a stream batch failure" in out
    assert depth(healthy) == (1, 0)  # and is visible again at once, for set-aside list

    code, out, _ = run(capsys, "events", "set-aside", "list", "--json")
    (line,) = out.splitlines()
    note = set_aside.SetAsideNote.model_validate_json(line)
    assert (note.event_key, note.sequence) == (KEY, "800000000003126276362")
    assert note.reason.startswith("ValidationException") and note.table == healthy.stack.physical("EventsTable")
    code, out, _ = run(capsys, "events", "set-aside", "list")
    assert code == 0 and KEY in out and "1 set-aside note(s)" in out

    code, out, _ = run(capsys, "events", "set-aside", "discard", note.id[:8], "--reason", "told consumers",
                       "--by", "ops")
    assert code == 0 and f"discarded the note on {KEY}" in out
    assert depth(healthy) == (0, 0)
    code, out, _ = run(capsys, "events", "set-aside", "list", "--discarded", "--json")
    (kept,) = [json.loads(line) for line in out.splitlines()]
    assert (kept["sk"], kept["event_key"], kept["discarded_by"], kept["discard_reason"]) == (
        note.id, KEY, "ops", "told consumers")
    code, report = status_json(capsys)
    assert code == 0 and report.publish_failures.set_aside == 0


@pytest.mark.parametrize("notes", [0, 2])
def test_discard_needs_exactly_one_matching_note(healthy, capsys, notes):  # noqa: F811
    for n in range(notes):
        set_aside_one(healthy, key=f"aaa:{n}:favorite")
    code, _, err = run(capsys, "events", "set-aside", "discard", "", "--reason", "x")
    failure = err.strip().splitlines()[-1]  # one line, after the stack banner
    assert code == 2 and failure.startswith("xrelay: ")
    assert f"{'no' if not notes else notes} set-aside note(s) match" in failure
    assert depth(healthy) == (notes, 0)  # nothing deleted, nothing left hidden


def test_discard_without_a_user_name_asks_for_by_instead_of_a_traceback(healthy, capsys, monkeypatch):  # noqa: F811
    set_aside_one(healthy)

    def no_name():
        raise KeyError("getpwuid(): uid not found: 1234")  # a container user with no passwd entry

    monkeypatch.setattr("getpass.getuser", no_name)
    code, _, err = run(capsys, "events", "set-aside", "discard", "", "--reason", "x")  # "": the one note
    assert code == 2 and err.strip().splitlines()[-1].endswith("give --by NAME")
    assert depth(healthy) == (1, 0)  # nothing discarded

"""Issue 16: at INFO intake writes one line per delivery, its EMF document (log bytes were most of its
cost after the writes), with the metric names and dimensions operators alarm on unchanged; the
delivery's summary and events at DEBUG."""

import io
import json
import logging
from types import SimpleNamespace

import pytest

from conftest import fixture_bytes
from helpers import post, values


def lines(capsys) -> tuple[list[dict], list[dict]]:
    """(log lines, EMF documents) printed so far."""
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [p for p in printed if "_aws" not in p], [p for p in printed if "_aws" in p]


def directives(doc: dict) -> dict[str, list[str]]:
    """metric name -> its dimension names, from one EMF document."""
    return {m["Name"]: d["Dimensions"][0] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}


def test_a_delivery_prints_one_line_its_emf_document_with_every_metric_and_the_request_id(stack, capsys):
    import sys

    # The handler's logger writes to the stdout of when it was made (maybe an earlier test's capture).
    for handler in stack.module("IntakeFunction").logger.handlers:
        handler.stream = sys.stdout
    assert post(stack, fixture_bytes("aaa/tweet_create_two.json"))[0] == 200
    logs, docs = lines(capsys)
    assert logs == [] and len(docs) == 1
    assert directives(docs[0]) == {"DeliveriesSignedLegacy": ["Stage", "service"], "EventsStored": ["Stage", "service"],
                                   "EventsReceived": ["Stage", "Source", "EventType", "service"]}
    assert values(docs, "EventsReceived", Source="aaa", EventType="post.create", Stage="dev", service="intake") == [2.0]
    assert values(docs, "EventsStored", Stage="dev", service="intake") == [2.0]
    assert docs[0]["request_id"]  # ties the metrics to Lambda's and Powertools' lines of the same invocation
    assert len(json.dumps(docs[0], separators=(",", ":"))) < 560  # was 801 bytes in two lines


def test_at_debug_the_delivery_is_summarised_with_its_events(stack, capsys):
    import sys

    logger = stack.module("IntakeFunction").logger
    for handler in logger.handlers:
        handler.stream = sys.stdout
    logger.setLevel("DEBUG")
    try:
        assert post(stack, fixture_bytes("aaa/tweet_create_two.json"))[0] == 200
    finally:
        logger.setLevel("INFO")
    logs, docs = lines(capsys)
    (line,) = [entry for entry in logs if entry["message"] == "delivery accepted"]
    assert (line["level"], line["events"], line["new"], line["duplicates"], line["quarantined"]) == (
        "DEBUG", 2, 2, 0, False)
    assert len(line["event_keys"]) == 2 and line["event_types"] == ["post.create"]
    assert line["correlation_id"] and line["function_request_id"] == docs[0]["request_id"]


def test_the_request_id_is_kept_when_no_count_has_a_document_of_its_own(capsys, monkeypatch):
    from xrelay.observability import count_with, make_metrics

    monkeypatch.setenv("STAGE", "dev")
    metrics = make_metrics("probe-metadata")
    metrics.add_metadata("request_id", "req-9")
    count_with(metrics, "ControlMessages", 1, Kind="replay_job_status")
    metrics.flush_metrics()
    (doc,) = lines(capsys)[1]
    assert doc["request_id"] == "req-9" and values([doc], "ControlMessages", Kind="replay_job_status") == [1.0]


def test_counts_needing_other_values_of_a_dimension_go_to_a_second_document(capsys, monkeypatch):
    from xrelay.observability import count, count_with, make_metrics

    monkeypatch.setenv("STAGE", "dev")
    metrics = make_metrics("probe")
    count(metrics, "EventsStored", 3)
    count_with(metrics, "EventsReceived", 2, Source="aaa", EventType="post.create")
    count_with(metrics, "EventsReceived", 1, Source="aaa", EventType="like.create")
    count_with(metrics, "EventsReceived", 1, Source="aaa", EventType="post.create")  # summed with the first
    count_with(metrics, "ControlMessages", 1, Kind="replay_job_status")
    metrics.flush_metrics()
    _, docs = lines(capsys)
    assert len(docs) == 2
    assert values(docs, "EventsReceived", EventType="post.create", Stage="dev") == [3.0]
    assert values(docs, "EventsReceived", EventType="like.create", Stage="dev") == [1.0]
    assert values(docs, "ControlMessages", Kind="replay_job_status") == [1.0]
    assert values(docs, "EventsStored") == [3.0]
    for doc in docs:  # every directive's dimensions have their values at the document's root
        for names in directives(doc).values():
            assert all(name in doc for name in names)
    with pytest.warns(UserWarning, match="No application metrics"):  # flushed: nothing is printed twice
        metrics.flush_metrics()
    assert lines(capsys)[1] == []


def test_at_debug_the_full_lambda_context_and_the_events_are_logged():
    from aws_lambda_powertools import Logger

    from xrelay.observability import compact_lambda_context

    stream = io.StringIO()
    logger = Logger(service="probe-debug", level="DEBUG", logger_handler=logging.StreamHandler(stream))
    context = SimpleNamespace(aws_request_id="req-1", function_name="IntakeFunction", memory_limit_in_mb=512,
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:IntakeFunction")

    @compact_lambda_context(logger)
    def handler(event, ctx):
        logger.info("hello")

    handler({}, context)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["function_request_id"] == "req-1" and line["function_arn"].endswith("IntakeFunction")

    logger.setLevel("INFO")
    handler({}, context)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["request_id"] == "req-1" and "function_arn" not in line

"""Issue 16: intake writes one short log line and one EMF document per delivery (log bytes were most
of its cost after the writes), with the metric names and dimensions operators alarm on unchanged."""

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


def test_a_delivery_prints_one_log_line_and_one_emf_document_with_every_metric(stack, capsys):
    import sys

    # The handler's logger writes to the stdout of when it was made (maybe an earlier test's capture).
    for handler in stack.module("IntakeFunction").logger.handlers:
        handler.stream = sys.stdout
    assert post(stack, fixture_bytes("aaa/tweet_create_two.json"))[0] == 200
    logs, docs = lines(capsys)
    assert len(docs) == 1 and len(logs) == 1
    assert directives(docs[0]) == {"DeliveriesSignedLegacy": ["Stage", "service"], "EventsStored": ["Stage", "service"],
                                   "EventsReceived": ["Stage", "Source", "EventType", "service"]}
    assert values(docs, "EventsReceived", Source="aaa", EventType="post.create", Stage="dev", service="intake") == [2.0]
    assert values(docs, "EventsStored", Stage="dev", service="intake") == [2.0]
    line = logs[0]
    assert line["message"] == "delivery accepted" and (line["events"], line["new"], line["duplicates"]) == (2, 2, 0)
    assert line["request_id"] and line["correlation_id"]
    assert not {"function_arn", "function_name", "function_memory_size", "cold_start", "quarantined"} & set(line)
    assert len(json.dumps(line, separators=(",", ":"))) < 320  # was 541 bytes with Powertools' Lambda context


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

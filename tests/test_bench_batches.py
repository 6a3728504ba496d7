"""Issue 16: bench section 8 prices the publisher at the events a stream batch holds, from the template's
batching window and a stated volume, and prints the worst case (each event alone) beside it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_cost_batches", ROOT / "bench" / "cost.py")
cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cost)


def yaml_template() -> dict:
    from xrelay.tools.cli.template import load

    return load(ROOT / "template.yaml")


def model(window_s: float, batch_size: int = 100) -> dict:
    calls = {"scenarios": [{"name": "XAA 1 event", "events": 4, "publisher_invocations": 4,
                            "async": {"by_operation": {"sqs.SendMessageBatch": 4}}}]}
    sizes = {"wcu_mean": 1.0, "billed_storage_bytes_mean": 600, "index_users": False,
             "per_event": [{"raw_bytes": 900, "gsi_bytes": 0, "by_user_bytes_if_on": 60, "by_post_bytes": 0}]}
    settings = {"memory_mb": 512, "retention_days": 30, "pitr": True, "access_log_bytes": 100,
                "platform_bytes": {"intake": 0, "publisher": 0}, "publisher_batch_size": batch_size,
                "publisher_batch_window_s": window_s}
    wall = {"wall_ms_reference": 10, "cpu_ms_reference": 2, "wall_ms_floor": 10, "cpu_ms_floor": 2, "wall_ms_ten": 20}
    cpu = {"log_reference": {"bytes_per_delivery": 500}, "log_publisher": {"bytes_per_batch": 200}}
    return cost.cost_model(settings, cpu, wall, sizes, calls)


def test_without_a_window_each_event_is_alone_and_the_worst_case_is_the_figure():
    m = model(window_s=0)
    assert m["publisher_batches"]["events_per_batch"] == 1
    assert m["publisher_batches"]["alone_total"] == pytest.approx(m["xrelay_total"])
    assert m["xrelay"]["Lambda requests"] == pytest.approx(2 * cost.PRICES["lambda_per_million_requests"])


def test_a_window_shares_the_publishers_invocation_its_send_and_its_log_line():
    rate = cost.MONTHLY_EVENTS / (cost.DAYS_PER_MONTH * 86400)  # events per second
    alone, batched = model(window_s=0), model(window_s=1)
    per_batch = batched["publisher_batches"]["events_per_batch"]
    assert per_batch == pytest.approx(1 + rate)
    share = 1 / per_batch
    p = cost.PRICES
    assert batched["xrelay"]["Lambda requests"] == pytest.approx(p["lambda_per_million_requests"] * (1 + share))
    assert batched["xrelay"]["SQS requests"] == pytest.approx(alone["xrelay"]["SQS requests"] * share)
    assert batched["log_bytes_per_delivery"]["publisher"] == pytest.approx(200 * share)
    for part in ("HTTP API requests", "DynamoDB writes", "storage (+PITR)"):  # per event whatever the batch
        assert batched["xrelay"][part] == alone["xrelay"][part]
    assert batched["publisher_batches"]["alone_total"] == pytest.approx(alone["xrelay_total"])
    assert batched["xrelay_total"] < alone["xrelay_total"]


def test_a_batch_holds_at_most_batch_size_events_and_sends_one_message_batch_per_ten():
    full = model(window_s=300, batch_size=25)  # 1 + 0.38 x 300 would be 115 events: BatchSize caps it
    assert full["publisher_batches"]["events_per_batch"] == 25
    alone = model(window_s=0)
    assert full["xrelay"]["SQS requests"] == pytest.approx(alone["xrelay"]["SQS requests"] * 3 / 25)


def test_the_template_sets_the_window_the_model_reads():
    settings = cost.template_settings()
    template = yaml_template()
    mapping = template["Resources"]["PublisherFunction"]["Properties"]["Events"]["NewEvents"]["Properties"]
    assert settings["publisher_batch_window_s"] == mapping["MaximumBatchingWindowInSeconds"] >= 1

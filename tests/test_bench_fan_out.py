"""The README's EventBusMode cost figures (section "Which to choose") are bench/cost.py's model,
not numbers typed once: a price or the model changing fails here until the README follows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_cost", ROOT / "bench" / "cost.py")
cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cost)


def fan_out(send_message_batch_calls_per_event: float) -> dict[str, float]:
    events = 10
    calls = {"scenarios": [{"name": "XAA 1 event", "events": events, "publisher_invocations": events,
                            "async": {"by_operation": {"sqs.SendMessageBatch":
                                                       send_message_batch_calls_per_event * events}}}]}
    row = {"raw_bytes": 500, "gsi_bytes": 100, "by_user_bytes_if_on": 100, "by_post_bytes": 0}
    sizes = {"wcu_mean": 2.0, "billed_storage_bytes_mean": 1000, "index_users": True, "per_event": [row]}
    settings = {"memory_mb": 512, "retention_days": 30, "pitr": True, "access_log_bytes": 200,
                "platform_bytes": {"intake": 0, "publisher": 0}}
    wall = {"wall_ms_reference": 10, "cpu_ms_reference": 5, "wall_ms_floor": 10, "cpu_ms_floor": 5, "wall_ms_ten": 20}
    cpu = {"log_reference": {"bytes_per_delivery": 300}, "log_publisher": {"bytes_per_batch": 200}}
    return {mode: round(d, 2) for mode, d in cost.cost_model(settings, cpu, wall, sizes, calls)["fan_out"].items()}


@pytest.mark.parametrize("calls_per_event,queue", [(1, "$0.40"), (0.1, "$0.04")])
def test_the_readme_quotes_the_models_publishing_cost_by_event_bus_mode(calls_per_event, queue):
    readme = (ROOT / "README.md").read_text()
    model = fan_out(calls_per_event)
    assert queue == f"${model['off (queue)']:.2f}" and queue in readme
    bus, target = model["only (bus)"], model["per SQS target of a bus rule"]
    assert f"${bus:.2f} for `PutEvents`" in readme and f"SQS target costs its own ${target:.2f}" in readme
    if calls_per_event == 1:  # the quiet stream bench section 8 measures
        assert (f"queue ${model['off (queue)']:.2f},\nbus ${bus:.2f}, both ${model['also (both)']:.2f}, "
                f"and ${target:.2f} for each SQS target") in readme
        assert f"{bus / model['off (queue)']:.1f} times at worst" in readme
    else:  # full batches of ten
        assert f"the two added: ${bus + model['off (queue)']:.2f}" in readme
        assert f"about {bus / model['off (queue)']:.0f} times the queue's publishing at full batches" in readme

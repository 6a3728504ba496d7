"""bench/cost.py's Endpoint=FunctionUrl row: the default's parts without the HTTP API's request charge
and the access-log line, everything else as measured for the default (section 8)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_cost", ROOT / "bench" / "cost.py")
cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cost)


def modelled(access_log_bytes: int) -> dict:
    calls = {"scenarios": [{"name": "XAA 1 event", "events": 1, "publisher_invocations": 1,
                            "async": {"by_operation": {"sqs.SendMessageBatch": 1}}}]}
    sizes = {"wcu_mean": 2.0, "billed_storage_bytes_mean": 1000, "index_users": False,
             "per_event": [{"raw_bytes": 500, "gsi_bytes": 0, "by_user_bytes_if_on": 100, "by_post_bytes": 0}]}
    settings = {"memory_mb": 512, "retention_days": 30, "pitr": True, "access_log_bytes": access_log_bytes,
                "architectures": ["arm64"], "platform_bytes": {"intake": 0, "publisher": 0}}
    wall = {"wall_ms_reference": 10, "cpu_ms_reference": 5, "wall_ms_floor": 10, "cpu_ms_floor": 5, "wall_ms_ten": 20}
    cpu = {"log_reference": {"bytes_per_delivery": 800, "lines_per_delivery": 2}, "log_publisher": {"bytes_per_batch": 200}}
    result = {"settings": settings, "probe_cpu": cpu, "probe_wall": wall,
              **cost.cost_model(settings, cpu, wall, sizes, calls)}
    result["function_url"] = cost.function_url_option(result)
    return result


@pytest.mark.parametrize("access_log_bytes", [0, 234])
def test_the_function_url_option_drops_the_api_requests_and_the_access_log_and_nothing_else(access_log_bytes):
    model = modelled(access_log_bytes)
    option, default = model["function_url"], model["xrelay"]
    assert set(option["parts"]) == set(default) - {"HTTP API requests"}
    for part in set(option["parts"]) - {"CloudWatch Logs ingest"}:
        assert option["parts"][part] == default[part]
    access_log_dollars = 1e6 * access_log_bytes / 1024 ** 3 * cost.PRICES["logs_ingest_per_gb"]
    assert option["parts"]["CloudWatch Logs ingest"] == pytest.approx(default["CloudWatch Logs ingest"]
                                                                      - access_log_dollars)
    assert option["saving"] == pytest.approx(cost.PRICES["http_api_per_million_requests"] + access_log_dollars)
    assert option["ratio"] == pytest.approx(option["total"] / model["floor_total"])
    assert option["floor_behind_url"] == pytest.approx(model["floor_total"] - cost.PRICES["http_api_per_million_requests"])


def test_section_8_prints_the_option_beside_the_default():
    model = modelled(234)
    text = "\n".join(cost.render_function_url(model))
    assert f"${model['function_url']['total']:.2f} per million events" in text
    assert f"{model['function_url']['ratio']:.2f}x the floor" in text and "HTTP API" not in text.split("by part:")[1]

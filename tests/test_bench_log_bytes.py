"""Issue 16: bench section 8 counts the log bytes the template's settings produce (Lambda's platform lines
per LoggingConfig, the access-log format) and the publisher's measured lines, not fixed assumptions."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_cost_logs", ROOT / "bench" / "cost.py")
cost = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cost)

PARAMS = {"PlatformLogLevel": {"Default": "WARN"}}


def function(**logging_config) -> dict:
    return {"Properties": {"LoggingConfig": {"LogGroup": {"Ref": "G"}, **logging_config}}}


def test_platform_lines_follow_the_functions_logging_config():
    assert cost.platform_bytes(function(), PARAMS) == len(cost.PLATFORM_LINES)  # Lambda's default: text
    assert cost.platform_bytes(function(LogFormat="JSON", SystemLogLevel={"Ref": "PlatformLogLevel"}), PARAMS) == 0
    info = {"PlatformLogLevel": {"Default": "INFO"}}
    json_lines = cost.platform_bytes(function(LogFormat="JSON", SystemLogLevel={"Ref": "PlatformLogLevel"}), info)
    assert json_lines == len(cost.PLATFORM_LINES_JSON.encode())
    for line in cost.PLATFORM_LINES_JSON.splitlines():  # the samples are Lambda's JSON events
        assert json.loads(line)["type"] in {"platform.start", "platform.report"}


def test_the_template_defaults_leave_out_the_platform_lines_and_keep_a_short_access_log():
    settings = cost.template_settings()
    assert settings["platform_bytes"] == {"intake": 0, "publisher": 0}
    assert 60 < settings["access_log_bytes"] < 120  # one JSON line: ip, route, status, error, service, stage


def test_the_log_bytes_per_delivery_add_the_publishers_measured_lines_per_event():
    events = 10
    calls = {"scenarios": [{"name": "XAA 1 event", "events": events, "publisher_invocations": events / 2,
                            "async": {"by_operation": {"sqs.SendMessageBatch": events}}}]}
    sizes = {"wcu_mean": 2.0, "billed_storage_bytes_mean": 1000, "index_users": False,
             "per_event": [{"raw_bytes": 500, "gsi_bytes": 0, "by_user_bytes_if_on": 100, "by_post_bytes": 0}]}
    settings = {"memory_mb": 512, "retention_days": 30, "pitr": True, "access_log_bytes": 100,
                "platform_bytes": {"intake": 10, "publisher": 20}}
    wall = {"wall_ms_reference": 10, "cpu_ms_reference": 5, "wall_ms_floor": 10, "cpu_ms_floor": 5, "wall_ms_ten": 20}
    cpu = {"log_reference": {"bytes_per_delivery": 500}, "log_publisher": {"bytes_per_batch": 200}}
    logs = cost.cost_model(settings, cpu, wall, sizes, calls)["log_bytes_per_delivery"]
    assert logs["publisher"] == (200 + 20) / 2  # a batch per two events here
    assert logs["total"] == 500 + 10 + 100 + 110
    assert logs["floor"] == len(cost.PLATFORM_LINES)

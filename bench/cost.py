"""Cost per million events on list prices, xrelay beside a floor design (``make bench``, section 8).

The floor design is what any receiver must do: HTTP API -> one Lambda -> HMAC check + json.loads ->
one conditional PutItem of the raw event (1 WRU) -> one SQS SendMessage; nothing logged but Lambda's
platform lines. xrelay's figures come from the template's own settings (memory, retention, PITR, the
access-log format, Lambda's platform lines as each function's LoggingConfig sets them, the publisher's
batch size) and from measurements:

- the probe (``python bench/cost.py --probe``, a fresh process with IntakeFunction's environment) runs
  the real handler, ``functions/intake/app.py`` (Powertools logger and metrics included), against
  bench/fake_aws.py, a responder in another process that answers at the HTTP level, so botocore's
  serialisation and parsing are in the CPU figure and the responder's are not. It measures the bytes
  the handler writes to stdout (CloudWatch Logs) per delivery, CPU per event, and, with a 5 ms
  DynamoDB, the wall time per delivery: deliveries per second per concurrent execution and the
  concurrency 2,500 deliveries per second need. It also runs ``functions/publisher/app.py`` on one
  stream batch of one new event (``events/PublisherFunction.json``) for the publisher's log bytes;
- write units, stored bytes and SQS calls per event come from sections 3 and 4 of bench/run.py.

Lambda's billed duration is modelled as the measured wall time, with its CPU part stretched by the
share of a vCPU the memory size buys (1,769 MB = one vCPU): this machine's CPU is not Lambda's.
One event per delivery (as XAA sends); the per-delivery parts are divided by the reference
delivery's events. Monthly fixed costs (custom metrics, alarms, secrets, the schedules) are not
per event and are left out.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "xrelay"
FIXTURES = ROOT / "tests" / "fixtures"
REFERENCE_DELIVERY = FIXTURES / "xaa" / "01_post.create.json"  # one event, as XAA sends

# List prices, us-east-1, arm64, in one place. Source: the AWS pricing pages (aws.amazon.com/<service>/
# pricing: api-gateway, lambda, dynamodb (on-demand, after the 2024-11-01 reduction), sqs, cloudwatch),
# as read 2025-06; past the free tiers, first volume tier.
PRICES_AS_OF = "2025-06 (us-east-1, arm64, list, first tier, no free tier)"
PRICES = {
    "http_api_per_million_requests": 1.00,      # HTTP API, first 300 million a month
    "lambda_per_million_requests": 0.20,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "dynamodb_per_million_wru": 0.625,          # on-demand write request units
    "dynamodb_storage_per_gb_month": 0.25,
    "dynamodb_pitr_per_gb_month": 0.20,         # continuous backups, on the table's size
    "sqs_per_million_requests": 0.40,           # standard queue, per 64 KB chunk
    "eventbridge_per_million_entries": 1.00,    # PutEvents, custom events, per 64 KB chunk (EventBusMode)
    "logs_ingest_per_gb": 0.50,                 # CloudWatch Logs, standard class
}
LAMBDA_MB_PER_VCPU = 1769
DAYS_PER_MONTH = 30.44
FLOOR_MEMORY_MB = 128  # the floor's function: HMAC + one PutItem fit the smallest size
# Lambda's own lines per warm invocation in its text log format: START, END, REPORT (the floor's).
PLATFORM_LINES = (
    "START RequestId: 6f0d3a8e-93b5-4c1e-b7a1-2a6a6f1d9c55 Version: $LATEST\n"
    "END RequestId: 6f0d3a8e-93b5-4c1e-b7a1-2a6a6f1d9c55\n"
    "REPORT RequestId: 6f0d3a8e-93b5-4c1e-b7a1-2a6a6f1d9c55\tDuration: 21.37 ms\tBilled Duration: 22 ms\t"
    "Memory Size: 512 MB\tMax Memory Used: 97 MB\t\n"
)
# The same in Lambda's JSON log format, at SystemLogLevel INFO (platform.start, platform.report); at
# WARN Lambda writes neither (AWS Lambda docs, "Log-level filtering").
PLATFORM_LINES_JSON = (
    '{"time":"2026-12-04T23:15:02.114Z","type":"platform.start","record":{"requestId":'
    '"6f0d3a8e-93b5-4c1e-b7a1-2a6a6f1d9c55","version":"$LATEST"}}\n'
    '{"time":"2026-12-04T23:15:02.136Z","type":"platform.report","record":{"requestId":'
    '"6f0d3a8e-93b5-4c1e-b7a1-2a6a6f1d9c55","metrics":{"durationMs":21.37,"billedDurationMs":22,'
    '"memorySizeMB":512,"maxMemoryUsedMB":97},"status":"success"}}\n'
)
# Values of an ordinary delivery for the access log's $context variables.
ACCESS_LOG_VALUES = {
    "requestId": "Xk3bQjPoIAMEbXw=", "requestTime": "04/Dec/2026:23:15:02 +0000", "identity.sourceIp": "203.0.113.17",
    "routeKey": "POST /webhook", "status": "200", "responseLatency": "24", "integrationLatency": "22",
    "error.message": "-", "integrationErrorMessage": "-",
}
# The volume the cost is modelled at: a million events a month, the unit of the figures. It only
# matters to how many events share a publisher invocation (the stream's batching window).
MONTHLY_EVENTS = 1_000_000
REPLAY_BURST_PER_SECOND = 2500  # X's replay: up to 2,500 deliveries per second, never retried


# ============================================================================ the probe (own process)


def _ten_event_delivery() -> bytes:
    doc = json.loads((FIXTURES / "aaa" / "tweet_create.json").read_bytes())
    template = doc["tweet_create_events"][0]
    base = int(template["id_str"]) + 2000
    doc["tweet_create_events"] = [{**template, "id": base + i, "id_str": str(base + i), "text": f"tweet {i}"}
                                  for i in range(10)]
    return json.dumps(doc, separators=(",", ":")).encode()


def _wire(path: Path) -> bytes:
    return json.dumps(json.loads(path.read_bytes()), separators=(",", ":"), ensure_ascii=False).encode()


def probe(mode: str, rounds: int) -> dict[str, Any]:
    """Runs inside a fresh interpreter with IntakeFunction's environment and AWS_ENDPOINT_URL set."""
    sys.path[:0] = [str(LAYER), str(ROOT / "functions" / "intake")]
    import gc

    import app  # the real handler: Powertools' logger and metrics, the template's environment

    from xrelay.aws import client
    from xrelay.credentials import SigningSecrets
    from xrelay.receiving.signature import SIGNATURE_HEADER, sign, verify
    from xrelay.tools.local.local import FakeContext, api_event

    secret = "bench-consumer-secret"
    app.load_signing_secrets = lambda *_: SigningSecrets(consumer=secret)  # a warm cache hit

    def event(body: bytes) -> dict[str, Any]:
        return api_event("POST", "/webhook", "", {"content-type": "application/json",
                                                  SIGNATURE_HEADER: sign(secret, body)}, body)

    fixtures = sorted(p for sub in ("xaa", "aaa", "other") for p in (FIXTURES / sub).glob("*.json"))
    reference = event(_wire(REFERENCE_DELIVERY))
    ten = event(_ten_event_delivery())
    everything = [event(_wire(p)) for p in fixtures]
    ddb, sqs = client("dynamodb"), client("sqs")

    def invoke(evt: dict[str, Any]) -> dict[str, Any]:
        answer = app.handler(evt, FakeContext("IntakeFunction"))
        if answer["statusCode"] != 200:
            raise RuntimeError(f"intake answered {answer['statusCode']}: {answer['body']}")
        return json.loads(answer["body"])

    def floor(evt: dict[str, Any]) -> None:
        """The floor design's whole handler: verify, parse, one conditional PutItem, one SendMessage."""
        body = evt["body"].encode()
        verify(evt["headers"][SIGNATURE_HEADER], body, [secret])
        doc = json.loads(body)
        ddb.put_item(TableName="floor", Item={"pk": {"S": str(hash(body))}, "doc": {"S": evt["body"]}},
                     ConditionExpression="attribute_not_exists(pk)")
        sqs.send_message(QueueUrl="https://sqs.us-east-1.amazonaws.com/123456789012/floor",
                         MessageBody=json.dumps(doc))

    def timed(fn, evt, n: int) -> tuple[float, float]:
        """The fastest wall and CPU seconds of one call, after a warm-up call: the least disturbed
        by other work on the machine (a shared 2-core box makes medians of milliseconds noisy)."""
        fn(evt)
        walls, cpus = [], []
        for _ in range(n):
            gc.collect()
            wall, cpu = time.perf_counter(), time.process_time()
            fn(evt)
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
        return min(walls), min(cpus)

    out: dict[str, Any] = {"mode": mode}
    capture = Path(os.environ["XRELAY_BENCH_CAPTURE"])
    saved = os.dup(1)
    try:
        with open(capture, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            for evt in everything + [reference, ten]:  # warm-up: first-call imports, connections
                invoke(evt)
                floor(evt)
            if mode == "cpu":
                # Log bytes: what the handler writes per delivery (Lambda sends stdout to CloudWatch Logs).
                sys.stdout.flush()
                for name, evts in (("reference", [reference]), ("fixtures", everything), ("ten", [ten])):
                    start = os.fstat(sink.fileno()).st_size
                    events = sum(invoke(e)["events"] for e in evts)
                    sys.stdout.flush()
                    written = capture.read_bytes()[start:]
                    out[f"log_{name}"] = {"bytes_per_delivery": len(written) / len(evts),
                                          "lines_per_delivery": written.count(b"\n") / len(evts),
                                          "events_per_delivery": events / len(evts)}
                out["log_publisher"] = publisher_log_bytes(capture, sink)
                # CPU per event, whole path (handler + botocore + HTTP), and the floor's.
                cpu_runs, floor_runs, event_count = [], [], 0
                for _ in range(rounds):
                    gc.collect()
                    start = time.process_time()
                    event_count = sum(invoke(e)["events"] for e in everything)
                    cpu_runs.append(time.process_time() - start)
                    gc.collect()
                    start = time.process_time()
                    for e in everything:
                        floor(e)
                    floor_runs.append(time.process_time() - start)
                out["fixtures"] = {"deliveries": len(everything), "events": event_count}
                out["cpu_us_per_event"] = statistics.median(cpu_runs) / event_count * 1e6
                # The floor writes one item per delivery: its CPU per delivery, per the same events.
                out["floor_cpu_us_per_event"] = statistics.median(floor_runs) / event_count * 1e6
                wall, cpu = timed(invoke, reference, rounds)
                out["reference_cpu_ms"] = cpu * 1000
                wall, cpu = timed(floor, reference, rounds)
                out["floor_reference_cpu_ms"] = cpu * 1000
            else:
                for name, fn, evt in (("reference", invoke, reference), ("ten", invoke, ten),
                                      ("floor", floor, reference)):
                    wall, cpu = timed(fn, evt, rounds)
                    out[f"wall_ms_{name}"], out[f"cpu_ms_{name}"] = wall * 1000, cpu * 1000
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    return out


def publisher_log_bytes(capture: Path, sink) -> dict[str, float]:
    """What PublisherFunction writes for one stream batch of one new event (a quiet stream), its real
    handler against the same responder: events/PublisherFunction.json, after a warm-up batch."""
    import importlib.util

    from xrelay.tools.local.local import FakeContext

    spec = importlib.util.spec_from_file_location("publisher_app", ROOT / "functions" / "publisher" / "app.py")
    publisher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(publisher)
    batch = json.loads((ROOT / "events" / "PublisherFunction.json").read_text())
    publisher.handler(batch, FakeContext("PublisherFunction"))
    sys.stdout.flush()
    start = os.fstat(sink.fileno()).st_size
    answer = publisher.handler(batch, FakeContext("PublisherFunction"))
    sys.stdout.flush()
    if answer.get("batchItemFailures"):
        raise RuntimeError(f"publisher failed its batch: {answer}")
    written = capture.read_bytes()[start:]
    return {"bytes_per_batch": len(written), "lines_per_batch": written.count(b"\n"),
            "events_per_batch": sum(r["eventName"] == "INSERT" for r in batch["Records"])}


# ============================================================================ driving the probe


def run_probe(env: dict[str, str], mode: str, delay_ms: float, rounds: int, scratch: Path) -> dict[str, Any]:
    fake = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_aws.py")), "--delay-ms",
                             str(delay_ms)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(fake.stdout.readline())
        capture = scratch / f"stdout-{mode}.log"
        probe_env = {**env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "XRELAY_BENCH_CAPTURE": str(capture)}
        done = subprocess.run([sys.executable, "-P", str(Path(__file__)), "--probe", mode, "--rounds", str(rounds)],
                              env=probe_env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cost probe ({mode}) failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout)
    finally:
        fake.terminate()
        fake.wait()


def platform_bytes(function: dict[str, Any], params: dict[str, Any]) -> int:
    """Lambda's own lines per invocation as the function's LoggingConfig sets them (Parameter defaults)."""
    config = function["Properties"].get("LoggingConfig", {})
    level = config.get("SystemLogLevel", "INFO")
    if isinstance(level, dict):
        level = params[level["Ref"]]["Default"]
    if config.get("LogFormat", "Text") != "JSON":
        return len(PLATFORM_LINES.encode())
    return 0 if level == "WARN" else len(PLATFORM_LINES_JSON.encode())


def template_settings() -> dict[str, Any]:
    sys.path.insert(0, str(LAYER))
    from xrelay.tools.cli.template import load

    doc = load(ROOT / "template.yaml")
    params, resources = doc["Parameters"], doc["Resources"]
    function = doc["Globals"]["Function"]
    access_format = resources["WebhookApi"]["Properties"]["AccessLogSettings"]["Format"]["Fn::Sub"]
    stage = params["Stage"].get("Default", "dev")
    line = access_format.replace("${Stage}", stage)
    for name, value in sorted(ACCESS_LOG_VALUES.items(), key=lambda kv: -len(kv[0])):
        line = line.replace(f"$context.{name}", value)
    if "$context." in line:
        raise RuntimeError(f"access-log variable without a sample value: {line}")
    table = resources["EventsTable"]["Properties"]
    mapping = resources["PublisherFunction"]["Properties"]["Events"]["NewEvents"]["Properties"]

    return {
        "memory_mb": function["MemorySize"],
        "architectures": function["Architectures"],
        "retention_days": int(params["RetentionDays"]["Default"]),
        "pitr": bool(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]),
        "access_log_bytes": len(line.encode()) + 1,
        "platform_bytes": {name: platform_bytes(resources[f"{name.capitalize()}Function"], params)
                           for name in ("intake", "publisher")},
        "publisher_batch_size": mapping["BatchSize"],
        "publisher_batch_window_s": mapping.get("MaximumBatchingWindowInSeconds", 0),
        "indexes": [g["IndexName"] for g in table.get("GlobalSecondaryIndexes", [])],
    }


def billed_ms(wall_ms: float, cpu_ms: float, memory_mb: int) -> float:
    """Lambda's duration for ``wall_ms`` measured here, its CPU stretched to the memory size's vCPU share."""
    stretch = max(1.0, LAMBDA_MB_PER_VCPU / memory_mb)
    return math.ceil(max(0.0, wall_ms - cpu_ms) + cpu_ms * stretch)  # billed per 1 ms, rounded up


def measure(env: dict[str, str], sizes: dict[str, Any], calls: dict[str, Any], rounds: int,
            scratch: Path) -> dict[str, Any]:
    settings = template_settings()
    cpu = run_probe(env, "cpu", 0.0, rounds, scratch)
    wall = run_probe(env, "wall", 5.0, rounds, scratch)
    cost = {"settings": settings, "probe_cpu": cpu, "probe_wall": wall, **cost_model(settings, cpu, wall, sizes, calls)}
    cost["function_url"] = function_url_option(cost)
    return cost


def cost_model(settings: dict[str, Any], cpu: dict[str, Any], wall: dict[str, Any], sizes: dict[str, Any],
               calls: dict[str, Any]) -> dict[str, Any]:
    p, mb = PRICES, settings["memory_mb"]
    per_m = 1e6  # everything below is dollars per million events (one event per delivery)
    gb = 1024 ** 3
    months_stored = settings["retention_days"] / DAYS_PER_MONTH
    storage_rate = p["dynamodb_storage_per_gb_month"] + (p["dynamodb_pitr_per_gb_month"] if settings["pitr"] else 0)
    platform = len(PLATFORM_LINES.encode())  # the floor's function: text format, Lambda's defaults

    # xrelay ----------------------------------------------------------------
    ref = next(s for s in calls["scenarios"] if s["name"].startswith("XAA 1 event"))
    intake_ms = billed_ms(wall["wall_ms_reference"], wall["cpu_ms_reference"], mb)
    # The bench's scenario invokes the publisher once per delivery: each event alone in its stream batch.
    alone_invocations = ref["publisher_invocations"] / max(1, ref["events"])
    alone_sqs_requests = ref["async"]["by_operation"].get("sqs.SendMessageBatch", 0) / ref["events"]
    # On AWS a stream batch gathers records for up to MaximumBatchingWindowInSeconds after its first one.
    # At MONTHLY_EVENTS arriving at random (Poisson, rate r), a batch holds its first event plus r x window
    # more on average (BatchSize at most); burstier traffic, X's replays above all, fills batches faster.
    rate = MONTHLY_EVENTS / (DAYS_PER_MONTH * 86400)
    events_per_batch = min(settings.get("publisher_batch_size", 1),
                           1 + rate * settings.get("publisher_batch_window_s", 0))
    publisher_ms_per_batch = intake_ms  # assumption: one stream batch's work ~ one delivery's (same client calls)
    platforms = settings["platform_bytes"]
    # The publisher's measured bytes per batch (its EMF document) and Lambda's lines, per invocation.
    publisher_bytes = cpu["log_publisher"]["bytes_per_batch"] + platforms["publisher"]

    def xrelay_parts(per_batch: float) -> tuple[dict[str, float], float]:
        """xrelay's $ per million events by part, and its log bytes per delivery, at ``per_batch``
        events per publisher invocation (one SendMessageBatch per batch of up to ten)."""
        invocations = alone_invocations / per_batch
        log_bytes = (cpu["log_reference"]["bytes_per_delivery"] + platforms["intake"] + settings["access_log_bytes"]
                     + invocations * publisher_bytes)
        return {
            "HTTP API requests": p["http_api_per_million_requests"],
            "Lambda requests": p["lambda_per_million_requests"] * (1 + invocations),
            "Lambda duration": per_m * p["lambda_arm64_per_gb_second"] * mb / 1024
            * (intake_ms + invocations * publisher_ms_per_batch) / 1000,
            "DynamoDB writes": p["dynamodb_per_million_wru"] * sizes["wcu_mean"],
            "storage (+PITR)": per_m * sizes["billed_storage_bytes_mean"] / gb * storage_rate * months_stored,
            "SQS requests": p["sqs_per_million_requests"] * alone_sqs_requests * math.ceil(per_batch / 10) / per_batch,
            "CloudWatch Logs ingest": per_m * log_bytes / gb * p["logs_ingest_per_gb"],
        }, log_bytes

    xrelay, log_bytes = xrelay_parts(events_per_batch)
    publisher_invocations = alone_invocations / events_per_batch
    sqs_requests = alone_sqs_requests  # the fan-out figures below: each event alone, the worst case
    alone_total = sum(xrelay_parts(1.0)[0].values())
    # the floor ---------------------------------------------------------------
    floor_ms = billed_ms(wall["wall_ms_floor"], wall["cpu_ms_floor"], FLOOR_MEMORY_MB)
    # The floor's item per event: the raw event, a 20-character key, a TTL (DynamoDB sizing rules).
    floor_items = [r["raw_bytes"] + len("pk") + 20 + len("doc") + len("expires_at") + 6 for r in sizes["per_event"]]
    floor_wru = statistics.mean(math.ceil(b / 1024) for b in floor_items)
    floor_item = statistics.mean(floor_items) + 100  # billed storage: 100 bytes of overhead per item
    floor = {
        "HTTP API requests": p["http_api_per_million_requests"],
        "Lambda requests": p["lambda_per_million_requests"],
        "Lambda duration": per_m * p["lambda_arm64_per_gb_second"] * FLOOR_MEMORY_MB / 1024 * floor_ms / 1000,
        "DynamoDB writes": p["dynamodb_per_million_wru"] * floor_wru,
        "storage (+PITR)": per_m * floor_item / gb * storage_rate * months_stored,
        "SQS requests": p["sqs_per_million_requests"] * 1,
        "CloudWatch Logs ingest": per_m * platform / gb * p["logs_ingest_per_gb"],
    }
    # What each index costs per million events (its write units and its share of storage): the
    # figures behind making an index optional (issue 16).
    rows = sizes["per_event"]
    indexes = {}
    # ByUser is priced as if on (UserIndex=true), whatever the default: what turning it on would add.
    for index, key in (("ByUser", "by_user_bytes_if_on"), ("ByPost", "by_post_bytes")):
        with_entry = [r for r in rows if r[key]]
        wru = sum(math.ceil(r[key] / 1024) for r in with_entry) / len(rows)
        stored = sum(r[key] + 100 for r in with_entry) / len(rows)
        indexes[index] = {"entries_per_event": len(with_entry) / len(rows), "wru_per_event": wru,
                          "dollars": p["dynamodb_per_million_wru"] * wru
                          + per_m * stored / gb * storage_rate * months_stored}
    indexes["ByUser"]["on_by_default"] = sizes["index_users"]
    # What publishing to consumers costs by EventBusMode (issue 17): the queue's measured
    # SendMessageBatch calls per event, one PutEvents entry per event (records under 64 KB), and what
    # each SQS target of a bus rule adds (EventBridge sends it one message per event).
    queue = p["sqs_per_million_requests"] * sqs_requests
    bus = p["eventbridge_per_million_entries"] * 1
    fan_out = {"off (queue)": queue, "only (bus)": bus, "also (both)": queue + bus,
               "per SQS target of a bus rule": p["sqs_per_million_requests"] * 1}
    per_second = 1000 / wall["wall_ms_reference"]
    per_second_ten = 1000 / wall["wall_ms_ten"]
    return {
        "prices_as_of": PRICES_AS_OF,
        "wru_per_event": {"xrelay": sizes["wcu_mean"], "floor": floor_wru},
        "indexes": indexes,
        "fan_out": fan_out,
        "xrelay": xrelay,
        "floor": floor,
        "xrelay_total": sum(xrelay.values()),
        "publisher_batches": {"monthly_events": MONTHLY_EVENTS, "events_per_batch": events_per_batch,
                              "window_s": settings.get("publisher_batch_window_s", 0),
                              "alone_total": alone_total, "alone_ratio": alone_total / sum(floor.values())},
        "floor_total": sum(floor.values()),
        "ratio": sum(xrelay.values()) / sum(floor.values()),
        "billed_ms": {"intake": intake_ms, "floor": floor_ms},
        "log_bytes_per_delivery": {"handler": cpu["log_reference"]["bytes_per_delivery"],
                                   "platform": platforms["intake"], "access_log": settings["access_log_bytes"],
                                   "publisher": publisher_invocations * publisher_bytes, "total": log_bytes,
                                   "floor": platform},
        "deliveries_per_second_per_execution": {"1 event": per_second, "10 events": per_second_ten,
                                                "floor": 1000 / wall["wall_ms_floor"]},
        "concurrency_for_burst": {"1 event": math.ceil(REPLAY_BURST_PER_SECOND / per_second),
                                  "10 events": math.ceil(REPLAY_BURST_PER_SECOND / per_second_ten),
                                  "floor": math.ceil(REPLAY_BURST_PER_SECOND * wall["wall_ms_floor"] / 1000)},
    }


def function_url_option(cost: dict[str, Any]) -> dict[str, Any]:
    """The Endpoint=FunctionUrl option: a Lambda function URL has no per-request charge and writes no
    access log, so its parts are the default's without the HTTP API's requests and the access-log line.
    The function runs the same intake per POST (the CRC's GETs are not per event), so Lambda, DynamoDB,
    SQS and the handler's own log bytes are the default's."""
    logs = cost["log_bytes_per_delivery"]
    parts = {part: dollars for part, dollars in cost["xrelay"].items() if part != "HTTP API requests"}
    log_bytes = logs["total"] - logs["access_log"]
    parts["CloudWatch Logs ingest"] = 1e6 * log_bytes / 1024 ** 3 * PRICES["logs_ingest_per_gb"]
    total = sum(parts.values())
    floor_behind_url = cost["floor_total"] - cost["floor"]["HTTP API requests"]
    return {"parts": parts, "total": total, "saving": cost["xrelay_total"] - total, "log_bytes": log_bytes,
            "ratio": total / cost["floor_total"], "floor_behind_url": floor_behind_url,
            "ratio_to_floor_behind_url": total / floor_behind_url}


def render_function_url(cost: dict[str, Any]) -> list[str]:
    f = cost["function_url"]
    return [f"   Endpoint=FunctionUrl (no HTTP API requests, no access log, {f['log_bytes']:.0f} log bytes per "
            f"delivery): ${f['total']:.2f} per million events, {f['ratio']:.2f}x the floor (${f['saving']:.2f} less "
            f"than the default); the floor itself behind a function URL: ${f['floor_behind_url']:.2f}, "
            f"{f['ratio_to_floor_behind_url']:.2f}x",
            "   by part: " + ", ".join(f"{part} {dollars:.3f}" for part, dollars in f["parts"].items())]


def render(cost: dict[str, Any], table) -> list[str]:
    out = [f"8. Cost per million events, list prices {cost['prices_as_of']}; one event per delivery; "
           f"template: {cost['settings']['memory_mb']} MB {cost['settings']['architectures'][0]}, "
           f"{cost['settings']['retention_days']} days kept, PITR {'on' if cost['settings']['pitr'] else 'off'}"]
    rows = [[part, f"{cost['xrelay'][part]:.3f}", f"{cost['floor'][part]:.3f}"] for part in cost["xrelay"]]
    rows.append(["total", f"{cost['xrelay_total']:.2f}", f"{cost['floor_total']:.2f}"])
    out.append(table(["$ per million events", "xrelay", "floor"], rows))
    wru = cost["wru_per_event"]
    by_user = cost["indexes"]["ByUser"]
    batches = cost["publisher_batches"]
    out.append(f"   publisher: {batches['events_per_batch']:.2f} events per stream batch at "
               f"{batches['monthly_events']:,} events a month arriving at random, with the stream's "
               f"{batches['window_s']} s batching window; were each event alone in its batch (the worst case): "
               f"${batches['alone_total']:.2f}, {batches['alone_ratio']:.2f}x")
    out.append(f"   xrelay / floor: {cost['ratio']:.2f}x; write units per new event: xrelay {wru['xrelay']:.2f} "
               f"(table + {'ByUser + ' if by_user['on_by_default'] else ''}ByPost), floor {wru['floor']:.2f}")
    other = (f"without ByUser: {cost['xrelay_total'] - by_user['dollars']:.2f}" if by_user["on_by_default"]
             else f"with UserIndex=true: {cost['xrelay_total'] + by_user['dollars']:.2f}")
    out.append("   the indexes' share (writes + storage): " + ", ".join(
        f"{name}{'' if name != 'ByUser' or by_user['on_by_default'] else ' (off by default; if on)'} "
        f"${i['dollars']:.2f} ({i['entries_per_event']:.2f} entries, {i['wru_per_event']:.2f} WRU per event)"
        for name, i in cost["indexes"].items()) + f"; {other}")
    out.append("   publishing to consumers by EventBusMode, $ per million events: " + ", ".join(
        f"{mode} {dollars:.2f}" for mode, dollars in cost["fan_out"].items()))
    logs, cpu, wall = cost["log_bytes_per_delivery"], cost["probe_cpu"], cost["probe_wall"]
    out.append(f"   log bytes per delivery: handler {logs['handler']:.0f} "
               f"({cpu['log_reference']['lines_per_delivery']:.0f} lines; all fixtures: "
               f"{cpu['log_fixtures']['bytes_per_delivery']:.0f} B, 10-event delivery: "
               f"{cpu['log_ten']['bytes_per_delivery']:.0f} B) + Lambda's platform lines {logs['platform']} "
               f"+ access log {logs['access_log']} + publisher {logs['publisher']:.0f} (its "
               f"{cpu['log_publisher']['lines_per_batch']} lines per batch + platform "
               f"{cost['settings']['platform_bytes']['publisher']}) = {logs['total']:.0f} B; floor {logs['floor']} B")
    out.append(f"   CPU per event incl. botocore + HTTP (fake at the HTTP level, {cpu['fixtures']['events']} fixture "
               f"events): xrelay {cpu['cpu_us_per_event']:.0f} us, floor {cpu['floor_cpu_us_per_event']:.0f} us "
               f"({cpu['cpu_us_per_event'] / cpu['floor_cpu_us_per_event']:.1f}x)")
    d, c = cost["deliveries_per_second_per_execution"], cost["concurrency_for_burst"]
    out.append(f"   with a 5 ms DynamoDB (fastest of the rounds): 1-event delivery {wall['wall_ms_reference']:.1f} ms "
               f"({d['1 event']:.0f}/s per concurrent execution), 10-event {wall['wall_ms_ten']:.1f} ms "
               f"({d['10 events']:.0f}/s), floor {wall['wall_ms_floor']:.1f} ms ({d['floor']:.0f}/s)")
    out.append(f"   concurrency for {REPLAY_BURST_PER_SECOND:,} deliveries/s: {c['1 event']} (1-event), "
               f"{c['10 events']} (10-event), floor {c['floor']}; billed ms per delivery: intake "
               f"{cost['billed_ms']['intake']:.0f} at {cost['settings']['memory_mb']} MB, floor "
               f"{cost['billed_ms']['floor']:.0f} at {FLOOR_MEMORY_MB} MB")
    if "function_url" in cost:
        out.extend(render_function_url(cost))
    out.append("   assumed, not measured: the publisher's duration per stream batch ~ intake's per delivery, "
               "random (Poisson) arrivals at a million events a month, Lambda's JSON platform lines at INFO "
               "(samples, bench/cost.py); not "
               "counted: the reference items of embedded posts and the tombstones (writes beyond the event's own)")
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", choices=("cpu", "wall"), required=True)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    result = probe(args.probe, args.rounds)
    print(json.dumps(result))

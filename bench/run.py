"""xrelay benchmark: ratios and counts that keep cold start, per-event CPU, AWS calls and storage honest.

Run with ``make bench`` (``.venv/bin/python bench/run.py``); ``--json PATH`` also writes the figures as
JSON. Nothing here is asserted by the tests: the figures are for reading and comparing between commits.
Ratios are used where absolute times depend on the machine.

1. Cold import. Fresh interpreters doing what Lambda's init does: the function's environment (the
   template's variables, plausible values, dummy credentials), ``layers/xrelay`` and the function
   directory on ``sys.path``, ``import app``. Wall time of the whole process, median of ``--runs``
   runs after one warm-up (so .pyc files exist), variants interleaved. The "lean floor" is a process
   that imports boto3, creates an SQS and a DynamoDB client and defines and instantiates one small
   pydantic model: what any boto3 + pydantic function pays. Ratios are given for the whole process
   and for the imports alone (minus the bare interpreter). Each handler is also timed with what its
   first request adds before any network call (the lazy import of Powertools' parameters and its
   Secrets Manager client): X's CRC deadline includes it. The warm-up run reports which heavy
   modules each process has in ``sys.modules`` after init, and how many boto3 clients are alive.
2. Warm CPU per event. ``Intake.handle`` (signature, parse, normalise, conditional put) over every
   fixture delivery (as compact JSON, the way X sends it) in one warm process, ``time.process_time``,
   median of rounds, as a ratio to the floor "HMAC-SHA256 signature check + json.loads" of the same
   bodies. DynamoDB is an in-memory fake with PutItem's ``attribute_not_exists`` semantics, so network
   and moto time are excluded; the secret comes from memory (a warm function's cache hit). Logs
   (Powertools, INFO) go to a null stream, EMF metric lines to /dev/null. Also: the duplicate path
   (every event already stored) and the new-event path plus the per-invocation metric flush that
   ``@metrics.log_metrics`` does.
3. AWS API calls per event, against moto (``mock_aws``, the template's tables and queues as in
   tests/conftest.py), counted at ``BaseClient._make_api_call`` by operation (API calls as the code
   issues them; botocore retries below that are not counted, and moto never throttles). Request
   path = calls made inside IntakeFunction while handling the POST; async path = calls made inside
   PublisherFunction invocations driven by the stream (``stack.drain()``). The stream reads of the
   event source mapping itself (GetRecords, GetShardIterator) are Lambda's, not the functions', and
   are left out. The Secrets Manager read happens on the first POST only and is reported apart.
4. Bytes and write units per event, for every event the fixtures produce: the item that
   ``store.event_item`` builds, sized with DynamoDB's rules (UTF-8 attribute names + values: S = UTF-8
   length, N = ceil(significant digits / 2) + 1, B = raw length, BOOL = 1); WCU = ceil(size / 1 KB)
   for the base table plus the ByUser GSI entry (keys + pk + event_type + source) when the item has
   ``user_key`` (under the template's default UserIndex/PurgeOnRevoke; the entry's size with the index
   on is measured either way), plus 1 for the ByPost entry (pk + post_id) when it has ``post_id``.
   The item's parts are reported apart: the compressed record, the plain attributes, their names. Ratios compare
   stored bytes with the raw (compact JSON) delivery bytes each event came in, and the SQS message
   (``publisher.outgoing``: body + attributes) with the same. A duplicate's failed conditional put is
   billed for the item too (table only: no GSI write, no stream record).
5. The reconcile, per run: calls to X (reads and writes, by endpoint) and AWS calls (by operation),
   against the strict fake X of the tests and moto, for a desired state of 10 AAA users and 50 XAA
   subscriptions (25 public, 25 private). Runs: from nothing; again with no drift; after X lost
   5 XAA subscriptions and 1 AAA user; and a no-drift run of an app with 2,500 XAA subscriptions
   on its webhook (X pages by 1,000). The figure to watch is writes per change (1.0) and 0 writes
   when nothing drifted.
6. The replay, per ReplayFunction run. 7. The shipped .pyc after a SAM-style zip.
8. Cost per million events on list prices, xrelay beside a floor design, by component (bench/cost.py:
   the price table, the model and its assumptions). Log bytes per delivery, CPU per event and the
   wall time per delivery are measured on the real IntakeFunction handler against bench/fake_aws.py,
   a responder in its own process that answers at the HTTP level (botocore's work is counted, the
   fake's is not), with no delay and with a 5 ms DynamoDB; write units, stored bytes and SQS calls
   come from sections 3 and 4.
9. What each function ships (bench/ships.py): its layers and code, unzipped and zipped, beside the one
   layer all functions attached before issue 16, and each handler's cold import over either.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "xrelay"
FUNCTIONS = ROOT / "functions"
FIXTURES = ROOT / "tests" / "fixtures"
REGION = "us-east-1"
ACCOUNT = "123456789012"
RETENTION_DAYS = 30  # the template's default RetentionDays
FIXED_NOW = datetime(2026, 1, 1, tzinfo=UTC)  # section 4 sizes must not depend on today's date

# Before anything imports boto3 or xrelay: throwaway credentials, no user config, no endpoint override.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "X_CONSUMER_SECRET"):
    os.environ.pop(_var, None)
os.environ.update(
    AWS_DEFAULT_REGION=REGION,
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_EC2_METADATA_DISABLED="true",
    AWS_CONFIG_FILE=os.devnull,
    AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    POWERTOOLS_METRICS_NAMESPACE="xrelay",
    POWERTOOLS_DEV="false",
    STAGE="dev",
    # As in tests/conftest.py: moto's in-process mock serves DynamoDB Streams on this endpoint only.
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS=f"https://streams.dynamodb.{REGION}.amazonaws.com",
)
sys.path.insert(0, str(LAYER))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cost  # noqa: E402  (bench/cost.py: section 8)
import ships  # noqa: E402  (bench/ships.py: section 9)

# Powertools warns on every invocation that emits no metric (e.g. a control message); not news here.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def log(message: str) -> None:
    """Progress goes to stderr: stdout carries only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_stdout():
    """Send fd 1 to /dev/null: the handlers log and print EMF metrics to stdout, as in Lambda."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def fixture_paths() -> list[Path]:
    return sorted(p for sub in ("xaa", "aaa", "other") for p in (FIXTURES / sub).glob("*.json"))


def fixture_name(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


def wire_body(path: Path) -> bytes:
    """A fixture as X sends it: compact JSON (the files are pretty-printed for reading)."""
    return json.dumps(json.loads(path.read_bytes()), separators=(",", ":"), ensure_ascii=False).encode()


# ============================================================================ 1. cold import

# Heavy modules worth knowing about at init. botocore's top-level package alone is light (Powertools
# imports it); botocore.client is the client machinery that boto3.client() pulls in.
HEAVY_MODULES = ("boto3", "botocore.client", "urllib3", "pydantic", "aws_xray_sdk",
                 "aws_lambda_powertools.utilities.parameters")

FLOOR_CODE = """
import boto3
from pydantic import BaseModel
sqs = boto3.client("sqs")
ddb = boto3.client("dynamodb")
class Probe(BaseModel):
    key: str
    count: int = 0
Probe(key="k")
"""

HANDLER_CODE = """
import sys
sys.path[:0] = [{layer!r}, {function_dir!r}]
import app
"""

# What the first request adds before its first network call: load_consumer_secrets imports Powertools'
# parameters lazily and get_secret builds its SecretsProvider (a boto3 Secrets Manager client).
FIRST_CALL_CODE = """
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider()  # as get_secret does, kept for the process
"""

REPORT_CODE = """
import gc, json, sys
botocore_client = sys.modules.get("botocore.client")
clients = sum(isinstance(o, botocore_client.BaseClient) for o in gc.get_objects()) if botocore_client else 0
print(json.dumps({{"modules": len(sys.modules), "boto3_clients": clients,
                  "heavy": {{name: name in sys.modules for name in {heavy!r}}}}}))
"""


def lambda_env(function: str) -> dict[str, str]:
    """What the template (Globals + the function) sets, with plausible values; no user environment."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LAMBDA_TASK_ROOT": "/tmp",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "STAGE": "dev",
        "EVENTS_TABLE": "xrelay-EventsTable-BENCH",
        "STATE_TABLE": "xrelay-StateTable-BENCH",
        "EVENTS_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/xrelay-EventsQueue-BENCH",
        "X_APP_SECRET_ARN": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:xrelay/x-app-AbCdEf",
        "RETENTION_DAYS": str(RETENTION_DAYS),
        "SECRET_CACHE_SECONDS": "300",
        "XRELAY_TRACING": "false",
        "POWERTOOLS_METRICS_NAMESPACE": "xrelay",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": function,
    }


def run_python(code: str, env: dict[str, str]) -> tuple[float, str]:
    """Wall milliseconds of one fresh interpreter running ``code`` (and its stdout)."""
    # -P: do not put the cwd on sys.path, so nothing but the function dir can shadow a module.
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-P", "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"cold-import probe failed:\n{done.stderr}")
    return elapsed, done.stdout


def measure_cold_imports(runs: int) -> dict[str, Any]:
    variants = {
        "bare interpreter": ("pass", lambda_env("bench")),
        "lean floor": (FLOOR_CODE, lambda_env("bench")),
        "CrcFunction": (HANDLER_CODE.format(layer=str(LAYER), function_dir=str(FUNCTIONS / "crc")),
                        lambda_env("crc")),
        "IntakeFunction": (HANDLER_CODE.format(layer=str(LAYER), function_dir=str(FUNCTIONS / "intake")),
                           lambda_env("intake")),
    }
    for name in ("CrcFunction", "IntakeFunction"):
        code, env = variants[name]
        variants[f"{name} + first call"] = (code + FIRST_CALL_CODE, env)
    report_code = REPORT_CODE.format(heavy=HEAVY_MODULES)
    modules: dict[str, Any] = {}
    for name, (code, env) in variants.items():  # warm-up: writes .pyc files, and says what got imported
        _, out = run_python(code + report_code, env)
        modules[name] = json.loads(out)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):  # interleaved, so drift on the machine hits every variant alike
        for name, (code, env) in variants.items():
            times[name].append(run_python(code, env)[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    bare, floor = median["bare interpreter"], median["lean floor"]
    handlers = {}
    for name in variants:
        if name in ("bare interpreter", "lean floor"):
            continue
        handlers[name] = {
            "ms": median[name],
            "ratio_to_floor": median[name] / floor,
            "imports_ratio_to_floor": (median[name] - bare) / (floor - bare),
            "spread_ms": [min(times[name]), max(times[name])],
        }
    return {
        "runs": runs,
        "bare_ms": bare,
        "floor_ms": floor,
        "bare_spread_ms": [min(times["bare interpreter"]), max(times["bare interpreter"])],
        "floor_spread_ms": [min(times["lean floor"]), max(times["lean floor"])],
        "handlers": handlers,
        "modules_after_init": modules,
    }


# ============================================================================ 2. warm CPU per event


class ConditionalCheckFailed(Exception):
    """What botocore raises for a failed condition, as far as xrelay.aws.error_code can tell."""

    def __init__(self) -> None:
        super().__init__("The conditional request failed")
        self.response = {"Error": {"Code": "ConditionalCheckFailedException"}}


class FakeDynamoDB:
    """PutItem with ``attribute_not_exists(<key>)`` (every event), and UpdateItem accepted as applied
    (revocations and replay-job reports: state-table updates whose outcome the CPU figure does not
    depend on). No ``__len__``: the stores treat a falsy client as "none given" and build a real one."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str | None], dict[str, Any]] = {}

    def put_item(self, TableName: str, Item: dict[str, Any], ConditionExpression: str | None = None) -> dict:
        key = (TableName, Item["pk"]["S"], Item.get("sk", {}).get("S"))
        if ConditionExpression and ConditionExpression.startswith("attribute_not_exists") and key in self.items:
            raise ConditionalCheckFailed()
        self.items[key] = Item
        return {}

    def update_item(self, **kwargs: Any) -> dict:
        self.updates = getattr(self, "updates", 0) + 1
        return {}


def measure_warm_cpu(rounds: int) -> dict[str, Any]:
    from aws_lambda_powertools import Logger

    from xrelay.credentials import SigningSecrets
    from xrelay.observability import make_metrics
    from xrelay.receiving.intake import Intake
    from xrelay.receiving.signature import SIGNATURE_HEADER, sign, verify
    from xrelay.storage.store import EventStore, StateStore

    secret = "bench-consumer-secret"
    secrets = SigningSecrets(consumer=secret)
    # X signs; signing is not intake's cost, so headers are made up front.
    deliveries = [(body, {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, body)})
                  for body in map(wire_body, fixture_paths())]
    null = open(os.devnull, "w")  # the logger writes here; closed after the measurement
    logger = Logger(service="bench-intake", level="INFO", logger_handler=logging.StreamHandler(null))
    metrics = make_metrics("intake")
    fake = FakeDynamoDB()
    intake = Intake(events=EventStore("events", RETENTION_DAYS, ddb=fake), state=StateStore("state", ddb=fake),
                    load_secrets=lambda: secrets, log=logger, metrics=metrics)

    def intake_pass(*, fresh: bool, flush: bool) -> tuple[float, Counter]:
        if fresh:
            fake.items.clear()
        tally: Counter = Counter()
        gc.collect()
        start = time.process_time()
        for body, headers in deliveries:
            answer = intake.handle(body, headers)
            # Lambda's @metrics.log_metrics flushes (serialises + prints) once per invocation; without
            # it, clear so that values never pile up to Powertools' 100-per-metric auto-flush.
            if flush:
                metrics.flush_metrics()
            else:
                metrics.clear_metrics()
            tally["status_" + str(answer.status)] += 1
            tally["events"] += answer.body.get("events", 0)
            tally["new"] += answer.body.get("new", 0)
            tally["duplicates"] += answer.body.get("duplicates", 0)
        return time.process_time() - start, tally

    def floor_pass() -> float:
        gc.collect()
        start = time.process_time()
        for body, headers in deliveries:
            verify(headers[SIGNATURE_HEADER], body, [secret])
            json.loads(body)
        return time.process_time() - start

    samples: dict[str, list[float]] = {"floor": [], "new": [], "duplicate": [], "new_with_flush": []}
    with null, quiet_stdout():
        _, first = intake_pass(fresh=True, flush=False)  # warm-up, and what one pass contains
        for _ in range(rounds):
            samples["floor"].append(floor_pass())
            samples["new"].append(intake_pass(fresh=True, flush=False)[0])
            elapsed, dup = intake_pass(fresh=False, flush=False)  # the store now holds every event
            samples["duplicate"].append(elapsed)
            samples["new_with_flush"].append(intake_pass(fresh=True, flush=True)[0])
    if first["status_200"] != len(deliveries) or dup["new"] != 0:
        raise RuntimeError(f"unexpected intake answers: {dict(first)} / duplicates pass {dict(dup)}")
    events = first["events"]
    median = {name: statistics.median(values) for name, values in samples.items()}
    per_event_us = {name: value / events * 1e6 for name, value in median.items()}
    return {
        "rounds": rounds,
        "deliveries": len(deliveries),
        "events": events,
        "per_event_us": per_event_us,
        "per_delivery_us": {name: value / len(deliveries) * 1e6 for name, value in median.items()},
        "ratio_to_floor": {name: median[name] / median["floor"] for name in ("new", "duplicate", "new_with_flush")},
        "first_pass": dict(first),
    }


# ============================================================================ 3. AWS API calls per event


class CallCounter:
    """Every botocore API call, tagged with the function being invoked (None: harness or Lambda's poller)."""

    def __init__(self) -> None:
        self.scope: str | None = None
        self.calls: list[tuple[str | None, str, str, dict[str, Any]]] = []
        self.invocations: Counter = Counter()

    def take(self) -> tuple[list[tuple[str | None, str, str, dict[str, Any]]], Counter]:
        calls, invocations = self.calls, self.invocations
        self.calls, self.invocations = [], Counter()
        return calls, invocations


def ten_tweet_delivery() -> bytes:
    """An AAA delivery of 10 distinct tweets (XAA carries one event per delivery, so AAA it is)."""
    doc = json.loads((FIXTURES / "aaa" / "tweet_create.json").read_bytes())
    template = doc["tweet_create_events"][0]
    base = int(template["id_str"]) + 1000  # distinct from the 1-event fixture's tweet
    doc["tweet_create_events"] = [{**template, "id": base + i, "id_str": str(base + i), "text": f"tweet {i}"}
                                  for i in range(10)]
    return json.dumps(doc).encode()


def deletion_of_the_stored_post() -> bytes:
    """xaa/02_post.delete.json naming xaa/01's post, which the first scenario stored: intake writes the
    tombstone too; the publisher redacts the copy and sends the compliance message (xrelay.publishing.compliance)."""
    stored = json.loads((FIXTURES / "xaa" / "01_post.create.json").read_bytes())
    doc = json.loads((FIXTURES / "xaa" / "02_post.delete.json").read_bytes())
    doc["data"]["payload"]["id"] = stored["data"]["payload"]["id"]
    return json.dumps(doc).encode()


def summarise(calls: list[tuple[str | None, str, str, dict[str, Any]]], function: str) -> dict[str, Any]:
    mine = [(service, op, params) for scope, service, op, params in calls if scope == function]
    secrets = [c for c in mine if c[0] == "secretsmanager"]
    counted = [c for c in mine if c[0] != "secretsmanager"]
    messages = sum(len(p.get("Entries", [])) if op == "SendMessageBatch" else 1
                   for service, op, p in counted if service == "sqs" and op.startswith("SendMessage"))
    return {
        "calls": len(counted),
        "by_operation": dict(sorted(Counter(f"{s}.{op}" for s, op, _ in counted).items())),
        "secrets_calls": len(secrets),
        "sqs_messages": messages,
    }


def measure_api_calls() -> dict[str, Any]:
    import botocore.client
    from moto import mock_aws

    from xrelay.aws import client
    from xrelay.receiving.signature import SIGNATURE_HEADER, sign
    from xrelay.tools.local.local import DEV_CONSUMER_SECRET, LocalStack, api_event

    counter = CallCounter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        counter.calls.append((counter.scope, self.meta.service_model.service_name, operation_name, api_params))
        return original(self, operation_name, api_params)

    class CountingStack(LocalStack):
        def invoke(self, function: str, event: dict[str, Any]) -> Any:
            counter.invocations[function] += 1
            outer, counter.scope = counter.scope, function
            try:
                return super().invoke(function, event)
            finally:
                counter.scope = outer

    def post(stack: CountingStack, body: bytes) -> dict[str, Any]:
        event = api_event("POST", "/webhook", "", {"content-type": "application/json",
                                                   SIGNATURE_HEADER: sign(DEV_CONSUMER_SECRET, body)}, body)
        result = stack.invoke("IntakeFunction", event)
        if result["statusCode"] != 200:
            raise RuntimeError(f"intake answered {result['statusCode']}: {result['body']}")
        return json.loads(result["body"])

    scenarios = [
        ("XAA 1 event (post.create)", (FIXTURES / "xaa" / "01_post.create.json").read_bytes()),
        ("AAA 1 event (tweet_create)", (FIXTURES / "aaa" / "tweet_create.json").read_bytes()),
        ("AAA 10 events (tweet_create x10)", ten_tweet_delivery()),
        ("XAA 1 event, redelivered", (FIXTURES / "xaa" / "01_post.create.json").read_bytes()),
        ("AAA 10 events, redelivered", ten_tweet_delivery()),
        ("XAA 1 deletion of a stored post", deletion_of_the_stored_post()),
    ]
    results: dict[str, Any] = {"scenarios": []}
    botocore.client.BaseClient._make_api_call = counting
    try:
        with quiet_stdout(), mock_aws():
            client.cache_clear()
            stack = CountingStack(ROOT, "xrelay-bench")
            stack.provision()
            for function in ("IntakeFunction", "PublisherFunction"):
                stack.module(function)  # Lambda's init: the app module, under the function's environment
            stack.drain()  # open the stream iterators (the event source mapping's own setup)
            counter.take()

            # First POST of the sandbox: the only one that reads the secret (cached 300 s after).
            post(stack, (FIXTURES / "aaa" / "favorite.json").read_bytes())
            first_calls, _ = counter.take()
            results["first_post_secrets_calls"] = summarise(first_calls, "IntakeFunction")["secrets_calls"]
            results["first_post_secret_operations"] = sorted({op for _, service, op, _ in first_calls
                                                              if service == "secretsmanager"})
            stack.drain()
            warm_up_messages = summarise(counter.take()[0], "PublisherFunction")["sqs_messages"]

            for name, body in scenarios:
                answer = post(stack, body)
                request_calls, _ = counter.take()
                stack.drain()
                async_calls, invocations = counter.take()
                request = summarise(request_calls, "IntakeFunction")
                publisher = summarise(async_calls, "PublisherFunction")
                events = answer["events"]
                results["scenarios"].append({
                    "name": name, "events": events, "new": answer["new"], "duplicates": answer["duplicates"],
                    "request": request, "async": publisher,
                    "publisher_invocations": invocations["PublisherFunction"],
                    "request_calls_per_event": request["calls"] / events,
                    "async_calls_per_event": publisher["calls"] / events,
                    "total_calls_per_event": (request["calls"] + publisher["calls"]) / events,
                    "sqs_messages_per_event": publisher["sqs_messages"] / events,
                })

            # Cross-check the message count against the queue itself.
            sqs = client("sqs")
            queue_attrs = sqs.get_queue_attributes(QueueUrl=stack.stack.queue_url("EventsQueue"),
                                                   AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            results["queue_messages"] = int(queue_attrs["ApproximateNumberOfMessages"])
            results["counted_messages"] = warm_up_messages + sum(s["async"]["sqs_messages"]
                                                                 for s in results["scenarios"])
            client.cache_clear()
    finally:
        botocore.client.BaseClient._make_api_call = original
    return results


# ============================================================================ 5. reconcile calls per run

@contextlib.contextmanager
def counting_aws_calls(calls: list[str]):
    """Append every botocore call made inside to ``calls``, as "service.Operation"."""
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original


def measure_reconcile() -> dict[str, Any]:
    from moto import mock_aws

    sys.path.insert(0, str(ROOT / "tests"))
    from fakex import FakeX
    from xrelay.aws import client
    from xrelay.storage.store import StateStore
    from xrelay.subscriptions.desired import DesiredState
    from xrelay.subscriptions.reconcile import StackUsers, reconcile
    from xrelay.subscriptions.users import StoredUser, UserCredentialStore
    from xrelay.tools.local.local import LocalStack

    url = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
    aaa = [str(4_000_000_000 + i) for i in range(10)]
    public = [str(5_000_000_000 + i) for i in range(25)]
    private = [str(6_000_000_000 + i) for i in range(25)]
    desired = DesiredState.model_validate({
        "webhook": {"url": url},
        "account_activity": [{"user_id": u} for u in aaa],
        "activity": [{"event_type": "post.create", "filter": {"user_id": u}} for u in public]
        + [{"event_type": "like.create", "filter": {"user_id": u}} for u in private],
    })
    aws_calls: list[str] = []
    def run(fake: FakeX, state: StateStore, secrets: UserCredentialStore, want: DesiredState) -> dict[str, Any]:
        fake.requests.clear()
        aws_calls.clear()
        with fake.client() as x:
            report = reconcile(want, x, StackUsers(state, secrets), state)
        reads = [r for r in fake.requests if not r.is_write]
        writes = [r for r in fake.requests if r.is_write]
        changes = report.created + report.updated + report.deleted + sum(1 for d in report.done if "webhook" in d)
        return {"x_reads": len(reads), "x_writes": len(writes), "changes": changes,
                "writes_per_change": len(writes) / changes if changes else None,
                "x_by_endpoint": dict(sorted(Counter(f"{r.endpoint} ({r.auth})" for r in fake.requests).items())),
                "aws_calls": len(aws_calls), "aws_by_operation": dict(sorted(Counter(aws_calls).items())),
                "drift": report.plan.drift, "errors": dict(report.errors)}

    results: dict[str, Any] = {"desired": {"aaa_users": len(aaa), "xaa": len(desired.activity)}}
    with counting_aws_calls(aws_calls), quiet_stdout(), mock_aws():
        client.cache_clear()
        stack = LocalStack(ROOT, "xrelay-bench")
        stack.provision()
        state = StateStore(stack.stack.physical("StateTable"))
        secrets = UserCredentialStore("xrelay-bench")
        # check_spec off: the tests hold the fake to X's spec; here it would time openapi-core, not xrelay.
        fake = FakeX(aaa_subscription_limit=10_000, xaa_subscription_limit=100_000, page_size=1000, check_spec=False)
        for user_id in aaa + private:
            secrets.put(StoredUser(user_id, fake.register_oauth1_user(user_id)))
        results["from nothing"] = run(fake, state, secrets, desired)
        results["no drift"] = run(fake, state, secrets, desired)
        hook = next(iter(fake.webhooks))
        for sub_id in list(fake.xaa_subscriptions)[:5]:
            del fake.xaa_subscriptions[sub_id]
        fake.aaa_subscriptions[hook].remove(aaa[0])
        results["after X lost 6"] = run(fake, state, secrets, desired)
        for i in range(2_500 - len(fake.xaa_subscriptions)):
            fake.add_xaa_subscription("post.delete", {"user_id": str(7_000_000_000 + i)}, webhook_id=hook)
        big = DesiredState.model_validate({
            **desired.model_dump(exclude={"warnings"}),
            "activity": [{"event_type": s["event_type"], "filter": s["filter"]}
                         for s in fake.xaa_subscriptions.values()]})
        results["no drift, 2,500 XAA"] = run(fake, state, secrets, big)
        client.cache_clear()
    return results


# ============================================================================ 6. replay: calls per run


def measure_replay() -> dict[str, Any]:
    """What one ReplayFunction run costs in AWS and X calls, at rest and around one outage's replay.

    The handler's whole path (``replay.run_for_stack``): webhook id from the state table, the
    ledger, and the app secret and X only when a job is to be started."""
    from aws_lambda_powertools.utilities.parameters import clear_caches
    from moto import mock_aws

    sys.path.insert(0, str(ROOT / "tests"))
    from fakex import FakeX
    from xrelay.aws import client
    from xrelay.config import Settings
    from xrelay.recovery.outages import Ledger, ReplayPolicy, parse_time
    from xrelay.recovery.replay import run_for_stack
    from xrelay.storage.store import StateStore
    from xrelay.subscriptions.desired import DesiredState
    from xrelay.tools.local.local import LocalStack

    aws_calls: list[str] = []
    now = parse_time("2026-11-26T12:00:00Z")
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
    fake = FakeX(clock=lambda: now.timestamp(), check_spec=False)  # time xrelay, not the spec check
    policy = ReplayPolicy()
    results: dict[str, Any] = {}

    def run(name: str, settings: Settings) -> None:
        fake.requests.clear()
        aws_calls.clear()
        clear_caches()  # a cold sandbox: a scheduled run every 5 minutes rarely finds a warm one
        report = run_for_stack(settings, transport=fake.transport(), now=now, policy=policy).report
        assert report is not None
        results[name] = {"aws_calls": len(aws_calls), "aws_by_operation": dict(sorted(Counter(aws_calls).items())),
                         "x_calls": len(fake.requests), "jobs_started": report.jobs_started}

    saved = {k: os.environ.get(k) for k in ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_BEARER_TOKEN")}
    os.environ.update(X_CONSUMER_KEY=fake.consumer_key, X_CONSUMER_SECRET=fake.consumer_secret,
                      X_BEARER_TOKEN=fake.bearer_token)  # the stack's app secret is the fake's app
    try:
        with quiet_stdout(), mock_aws():
            client.cache_clear()
            stack = LocalStack(ROOT, "xrelay-bench")
            stack.provision()
            settings = Settings.from_env(stack.environment("ReplayFunction"))
            state = StateStore(settings.state_table)
            state.put_desired(DesiredState.model_validate({"webhook": {"url": url}}).to_json(), "bench", now)
            hook = fake.add_webhook(url)
            state.record_webhook_check(url, hook, "valid", now)
            ledger = Ledger(settings.state_table)
            with counting_aws_calls(aws_calls):
                run("empty ledger", settings)
                ledger.open("alarm", "IntakeUnavailableAlarm", now - timedelta(hours=3))
                ledger.close("alarm", "IntakeUnavailableAlarm", now - timedelta(hours=2))
                run("outage closed: starts its job", settings)
                run("job running: waits", settings)
                (job_id,) = fake.replay_jobs
                fake.complete_replay(job_id)
                ledger.record_job_status(job_id, "Complete", webhook_id=hook, at=now)
                run("after Complete: counts it", settings)
                run("at rest after recovery", settings)
                for i in range(50):  # a flapping alarm: 50 short outages, 23 to 3 hours ago
                    start = now - timedelta(hours=23) + timedelta(minutes=24 * i)
                    ledger.open("alarm", "IntakeUnavailableAlarm", start)
                    ledger.close("alarm", "IntakeUnavailableAlarm", start + timedelta(minutes=3))
                run("50 new outages: counts them, starts 1 job", settings)
            client.cache_clear()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return results


# ============================================================================ 7. shipped .pyc, after a SAM-style zip


PYC_FUNCTIONS = ("crc", "intake", "publisher", "reconcile", "replay")


def sam_zip_copy(src: Path, dst: Path) -> None:
    """``src`` as Lambda unpacks what sam deploy zipped: every file dated 1980-01-01 (make_zip sets no date)."""
    shutil.copytree(src, dst)
    for path in dst.rglob("*"):
        os.utime(path, (315532800, 315532800))


def measure_shipped_pyc(runs: int) -> dict[str, Any]:
    """Cold import of each handler over the built layer: with the unchecked-hash .pyc the layer's makefile
    ships, against the timestamp .pyc that pip writes (what SAM's python build method ships), which
    the 1980 zip dates make stale, so Python recompiles on every cold start (and cannot cache: /opt is
    read-only, played by PYTHONDONTWRITEBYTECODE). The layer is built for this machine's architecture,
    with the same makefile: it downloads the pinned wheels, so it needs the package registry."""
    import importlib.util
    import platform
    import tempfile

    arch = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}.get(platform.machine())
    if arch is None:
        return {"skipped": f"no wheel platform for {platform.machine()}"}
    with tempfile.TemporaryDirectory(prefix="xrelay-bench-pyc-") as tmp:
        built = Path(tmp) / "built"
        for name in ships.ONE_FOR_ALL:  # the layers the functions attach (tracing off), in one directory
            done = subprocess.run(["make", "--no-print-directory", "-C", str(ships.layer_sources()[name]),
                                   f"build-{name}", f"ARTIFACTS_DIR={built}", f"PLATFORM={arch}",
                                   f"PYTHON={sys.executable}",
                                   f"PYTHON_VERSION={sys.version_info[0]}.{sys.version_info[1]}",
                                   f"PYC_MAGIC={int.from_bytes(importlib.util.MAGIC_NUMBER[:2], 'little')}",
                                   f"RUNTIME_DIR={Path(tmp) / 'unchecked' / 'python'}"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return {"skipped": f"building {name} failed (offline?): " + done.stderr.strip()[-300:]}
        sam_zip_copy(built, Path(tmp) / "unchecked")
        stale = Path(tmp) / "stale-build"
        shutil.copytree(built, stale)
        for cache in list(stale.rglob("__pycache__")):
            shutil.rmtree(cache)
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(stale)], check=True)  # as pip does
        sam_zip_copy(stale, Path(tmp) / "timestamp")
        variants = {}
        for kind in ("unchecked", "timestamp"):
            layer = Path(tmp) / kind / "python"
            for fn in PYC_FUNCTIONS:
                env = {**lambda_env(fn), "PYTHONDONTWRITEBYTECODE": "1"}
                variants[(fn, kind)] = (HANDLER_CODE.format(layer=str(layer), function_dir=str(FUNCTIONS / fn)), env)
        for code, env in variants.values():  # warm the OS file cache
            run_python(code, env)
        times: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
        for _ in range(runs):
            for key, (code, env) in variants.items():
                times[key].append(run_python(code, env)[0])
    out: dict[str, Any] = {"runs": runs, "platform": arch, "functions": {}}
    for fn in PYC_FUNCTIONS:
        shipped, stale_ms = (statistics.median(times[(fn, k)]) for k in ("unchecked", "timestamp"))
        out["functions"][fn] = {"unchecked_ms": shipped, "timestamp_ms": stale_ms, "ratio": shipped / stale_ms,
                                "saved_ms": stale_ms - shipped}
    return out


# ============================================================================ 4. bytes and write units per event


def attribute_size(name: str, value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute (name + value), for the types event items use."""
    (kind, inner), = value.items()
    if kind == "S":
        size = len(inner.encode("utf-8"))
    elif kind == "N":
        significant = inner.lstrip("-").replace(".", "").strip("0") or "0"
        size = math.ceil(len(significant) / 2) + 1
    elif kind == "B":
        size = len(inner)
    elif kind in ("BOOL", "NULL"):
        size = 1
    else:
        raise ValueError(f"no sizing rule here for DynamoDB type {kind}")
    return len(name.encode("utf-8")) + size


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(attribute_size(name, value) for name, value in item.items())


GSI_ATTRIBUTES = ("pk", "user_key", "ts", "event_type", "source")  # table key + index keys + INCLUDE projection
BY_POST_ATTRIBUTES = ("pk", "post_id")  # the ByPost entry of an event item (ref_of is on reference items only)


def default_index_users() -> bool:
    """Whether the template's defaults index events by user (Condition IndexUsers)."""
    from xrelay.storage.store import users_indexed
    from xrelay.tools.cli.template import load

    params = load(ROOT / "template.yaml")["Parameters"]
    return users_indexed({name: params[name]["Default"] for name in ("UserIndex", "PurgeOnRevoke")})


def measure_sizes() -> dict[str, Any]:
    from xrelay.events.normalize import UnrecognisedDelivery, delivery_id, normalize
    from xrelay.publishing.publisher import outgoing
    from xrelay.storage.store import event_item

    index_users = default_index_users()
    rows = []
    for path in fixture_paths():
        body = wire_body(path)
        try:
            result = normalize(json.loads(body), delivery=delivery_id(body), received_at=FIXED_NOW)
        except UnrecognisedDelivery:
            continue
        for record in result.events:
            item = event_item(record, RETENTION_DAYS, index_users)
            size = item_size(item)
            gsi = item_size({k: item[k] for k in GSI_ATTRIBUTES}) if "user_key" in item else 0
            indexed = event_item(record, RETENTION_DAYS, index_users=True)  # what ByUser would hold if on
            by_user_if_on = item_size({k: indexed[k] for k in GSI_ATTRIBUTES}) if "user_key" in indexed else 0
            by_post = item_size({k: item[k] for k in BY_POST_ATTRIBUTES}) if "post_id" in item else 0
            message = outgoing("1", record, "xrelay-EventsTable-BENCH")
            rows.append({
                "fixture": fixture_name(path),
                "event_type": record.event_type,
                "raw_bytes": len(body) / len(result.events),  # the delivery's wire bytes, shared by its events
                "record_json_bytes": len(record.model_dump_json().encode()),
                "record_blob_bytes": len(item["record"]["B"]),
                "plain_bytes": size - attribute_size("record", item["record"]),
                "name_bytes": sum(len(name) for name in item),
                "item_bytes": size,
                "gsi_bytes": gsi,
                "by_user_bytes_if_on": by_user_if_on,
                "by_post_bytes": by_post,
                "wcu": math.ceil(size / 1024) + (math.ceil(gsi / 1024) if gsi else 0) + (1 if by_post else 0),
                "duplicate_wcu": math.ceil(size / 1024),  # a failed conditional put still pays for the item
                "sqs_bytes": message.size,
                "sqs_body_bytes": len(message.body.encode()),
                "sqs_pointer": message.pointer,
            })

    def total(key: str) -> float:
        return sum(r[key] for r in rows)

    n = len(rows)
    return {
        "events": n,
        "index_users": index_users,
        "record_blob_bytes_mean": total("record_blob_bytes") / n,
        "plain_bytes_mean": total("plain_bytes") / n,
        "name_bytes_mean": total("name_bytes") / n,
        "with_gsi_entry": sum(1 for r in rows if r["gsi_bytes"]),
        "with_by_post_entry": sum(1 for r in rows if r["by_post_bytes"]),
        "item_bytes_mean": total("item_bytes") / n,
        "item_bytes_max": max(r["item_bytes"] for r in rows),
        "item_bytes_max_fixture": max(rows, key=lambda r: r["item_bytes"])["fixture"],
        "gsi_bytes_mean": total("gsi_bytes") / max(1, sum(1 for r in rows if r["gsi_bytes"])),
        # Storage is billed with 100 bytes of overhead per item and per index entry.
        "billed_storage_bytes_mean": (total("item_bytes") + total("gsi_bytes") + total("by_post_bytes") + 100 * n
                                      + 100 * sum(1 for r in rows if r["gsi_bytes"])
                                      + 100 * sum(1 for r in rows if r["by_post_bytes"])) / n,
        "items_over_1kb": sum(1 for r in rows if r["item_bytes"] > 1024),
        "wcu_mean": total("wcu") / n,
        "wcu_max": max(r["wcu"] for r in rows),
        "duplicate_wcu_mean": total("duplicate_wcu") / n,
        "raw_bytes_mean": total("raw_bytes") / n,
        "stored_to_raw": total("item_bytes") / total("raw_bytes"),
        "blob_to_record_json": total("record_blob_bytes") / total("record_json_bytes"),
        "sqs_bytes_mean": total("sqs_bytes") / n,
        "sqs_bytes_max": max(r["sqs_bytes"] for r in rows),
        "sqs_to_raw": total("sqs_bytes") / total("raw_bytes"),
        "sqs_pointers": sum(1 for r in rows if r["sqs_pointer"]),
        "per_event": rows,
    }


# ============================================================================ report


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def spread(values: list[float]) -> str:
    return f"{values[0]:.0f}-{values[1]:.0f}"


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    cold = results["cold_import"]
    out.append(f"1. Cold import (fresh process, median of {cold['runs']} after 1 warm-up; lower ratio is better)")
    rows = [["bare interpreter (python -c pass)", f"{cold['bare_ms']:.0f}", spread(cold["bare_spread_ms"]), "", ""],
            ["lean floor (boto3 + 2 clients + pydantic model)", f"{cold['floor_ms']:.0f}",
             spread(cold["floor_spread_ms"]), "1.00", "1.00"]]
    for name, h in cold["handlers"].items():
        label = name.replace(" + first call", ": import app + first request's lazy imports (no network)")
        label = label if label != name else f"{name}: import app"
        rows.append([label, f"{h['ms']:.0f}", spread(h["spread_ms"]), f"{h['ratio_to_floor']:.2f}",
                     f"{h['imports_ratio_to_floor']:.2f}"])
    out.append(table(["process", "ms", "min-max", "x floor", "x floor, minus bare python"], rows))
    out.append("")
    mods = cold["modules_after_init"]
    names = ["lean floor", "CrcFunction", "CrcFunction + first call", "IntakeFunction", "IntakeFunction + first call"]
    rows = [["modules in sys.modules"] + [mods[n]["modules"] for n in names],
            ["boto3 clients alive after init"] + [mods[n]["boto3_clients"] for n in names]]
    rows += [[f"imports {m}"] + [yes_no(mods[n]["heavy"][m]) for n in names] for m in HEAVY_MODULES]
    out.append(table(["after init", "floor", "crc", "crc+1st call", "intake", "intake+1st call"], rows))

    warm = results["warm_cpu"]
    out.append("")
    first = warm["first_pass"]
    out.append(f"2. Warm CPU per event (process_time, median of {warm['rounds']} rounds over {warm['deliveries']} "
               f"fixture deliveries = {warm['events']} events; DynamoDB faked in memory: no network/moto time)")
    out.append(f"   the 'new events' pass starts from an empty store: {first['new']} new, {first['duplicates']} "
               f"repeating an earlier fixture's event; the duplicates pass finds all {warm['events']} stored")
    labels = {"floor": "floor: HMAC-SHA256 verify + json.loads", "new": "Intake.handle, new events",
              "duplicate": "Intake.handle, duplicates (all stored)",
              "new_with_flush": "Intake.handle, new + per-invocation metric flush"}
    rows = [[labels[k], f"{warm['per_event_us'][k]:.1f}", f"{warm['per_delivery_us'][k]:.1f}",
             "1.00" if k == "floor" else f"{warm['ratio_to_floor'][k]:.1f}"] for k in labels]
    out.append(table(["path", "us/event", "us/delivery", "x floor"], rows))

    calls = results["api_calls"]
    out.append("")
    out.append("3. AWS API calls per event (moto; request = IntakeFunction, async = PublisherFunction via the stream)")
    rows, operations = [], []
    for s in calls["scenarios"]:
        rows.append([s["name"], s["events"], f"{s['new']}/{s['duplicates']}",
                     f"{s['request']['calls']} ({s['request_calls_per_event']:.2f})", s["publisher_invocations"],
                     f"{s['async']['calls']} ({s['async_calls_per_event']:.2f})", f"{s['total_calls_per_event']:.2f}",
                     s["async"]["sqs_messages"]])
        by_operation = Counter(s["request"]["by_operation"]) + Counter(s["async"]["by_operation"])
        operations.append(f"   {s['name']}: " + (", ".join(f"{op} x{n}" for op, n in sorted(by_operation.items()))
                                                  or "-"))
    out.append(table(["delivery", "events", "new/dup", "request calls (/ev)", "publisher runs",
                      "async calls (/ev)", "calls/ev", "SQS msgs"], rows))
    out.extend(operations)
    out.append(f"   first call only: the first POST of a sandbox reads the secret "
               f"({calls['first_post_secrets_calls']} call: {', '.join(calls['first_post_secret_operations'])}); "
               f"warm POSTs read it again only after SECRET_CACHE_SECONDS (300 s). Excluded above.")
    out.append("   XAA carries one event per delivery, so the 10-event delivery is AAA. Stream reads by the event "
               "source mapping (GetRecords) are not counted.")
    out.append(f"   SQS check: {calls['counted_messages']} messages counted in SendMessageBatch entries, "
               f"{calls['queue_messages']} on the queue.")

    sizes = results["sizes"]
    out.append("")
    out.append(f"4. Bytes and write units per event ({sizes['events']} fixture events, "
               f"{sizes['with_gsi_entry']} with a ByUser GSI entry (UserIndex "
               f"{'on' if sizes['index_users'] else 'off'} by default), {sizes['with_by_post_entry']} a ByPost one; "
               "DynamoDB sizing rules)")
    rows = [
        ["raw delivery bytes per event, compact JSON (mean)", f"{sizes['raw_bytes_mean']:.0f}"],
        ["stored item bytes (mean / max)",
         f"{sizes['item_bytes_mean']:.0f} / {sizes['item_bytes_max']} ({sizes['item_bytes_max_fixture']})"],
        ["  of which: compressed record / plain attributes (names alone)",
         f"{sizes['record_blob_bytes_mean']:.0f} / {sizes['plain_bytes_mean']:.0f} ({sizes['name_bytes_mean']:.0f})"],
        ["GSI entry bytes (mean, when present)", f"{sizes['gsi_bytes_mean']:.0f}"],
        ["billed storage bytes incl. 100 B/item overhead (mean)", f"{sizes['billed_storage_bytes_mean']:.0f}"],
        ["events whose item exceeds 1 KB (2+ WCU on the table)", f"{sizes['items_over_1kb']} of {sizes['events']}"],
        ["WCU per new event, table + GSIs (mean / max)", f"{sizes['wcu_mean']:.2f} / {sizes['wcu_max']}"],
        ["WCU per duplicate (failed conditional put; mean)", f"{sizes['duplicate_wcu_mean']:.2f}"],
        ["stored item bytes / raw bytes", f"{sizes['stored_to_raw']:.2f}"],
        ["zlib record blob / record JSON", f"{sizes['blob_to_record_json']:.2f}"],
        ["SQS message bytes, body + attributes (mean / max)",
         f"{sizes['sqs_bytes_mean']:.0f} / {sizes['sqs_bytes_max']}"],
        ["SQS message bytes / raw bytes", f"{sizes['sqs_to_raw']:.2f}"],
        ["events sent as pointers (too big for SQS)", sizes["sqs_pointers"]],
    ]
    out.append(table(["figure", "value"], rows))
    rec = results["reconcile"]
    out.append("")
    out.append(f"5. Reconcile, per run (strict fake X + moto; desired: {rec['desired']['aaa_users']} AAA users, "
               f"{rec['desired']['xaa']} XAA subscriptions, half of them private)")
    rows = []
    for name in ("from nothing", "no drift", "after X lost 6", "no drift, 2,500 XAA"):
        r = rec[name]
        rows.append([name, r["drift"], r["x_reads"], r["x_writes"], r["changes"],
                     "-" if r["writes_per_change"] is None else f"{r['writes_per_change']:.2f}", r["aws_calls"]])
    out.append(table(["run", "drift", "X reads", "X writes", "changes", "writes/change", "AWS calls"], rows))
    for name in ("no drift", "after X lost 6"):
        out.append(f"   {name}: X " + ", ".join(f"{k} x{n}" for k, n in rec[name]["x_by_endpoint"].items()))
        out.append(f"   {name}: AWS " + ", ".join(f"{k} x{n}" for k, n in rec[name]["aws_by_operation"].items()))
    rep = results["replay"]
    out.append("")
    out.append("6. Replay, per ReplayFunction run (its whole path, cold secret cache; strict fake X + moto)")
    out.append(table(["run", "AWS calls", "X calls", "jobs started"],
                     [[name, r["aws_calls"], r["x_calls"], r["jobs_started"]] for name, r in rep.items()]))
    for name in ("job running: waits", "outage closed: starts its job"):
        out.append(f"   {name}: AWS " + ", ".join(f"{k} x{n}" for k, n in rep[name]["aws_by_operation"].items()))
    pyc = results["pyc"]
    out.append("")
    if "skipped" in pyc:
        out.append(f"7. Shipped .pyc: skipped ({pyc['skipped']})")
    else:
        out.append(f"7. Cold import over the built layer after a SAM-style zip ({pyc['platform']}, median of "
                   f"{pyc['runs']}): the unchecked-hash .pyc shipped vs. pip's timestamp .pyc, stale after the zip")
        out.append(table(["handler", "shipped .pyc ms", "stale .pyc ms", "ratio", "saved ms"],
                         [[fn, f"{r['unchecked_ms']:.0f}", f"{r['timestamp_ms']:.0f}", f"{r['ratio']:.2f}",
                           f"{r['saved_ms']:.0f}"] for fn, r in pyc["functions"].items()]))
    if "cost" in results:
        out.append("")
        out.extend(cost.render(results["cost"], table))
    if "ships" in results:
        out.append("")
        out.extend(ships.render(results["ships"], table))
    return "\n".join(out)


def measure_what_ships(results: dict[str, Any], runs: int) -> None:
    """Section 9 (bench/ships.py): builds every layer twice (for Lambda, for this machine)."""
    log(f"9: what each function ships, and its cold import over its own layers ({runs} runs x 10 processes)")
    with tempfile.TemporaryDirectory(prefix="xrelay-bench-ships-") as scratch:
        try:
            results["ships"] = ships.measure(runs, Path(scratch), lambda_env)
        except RuntimeError as exc:  # offline: the wheels cannot be fetched
            log(f"section 9 skipped: {exc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="cold-import runs per variant (median; default 9)")
    parser.add_argument("--rounds", type=int, default=50, help="warm-CPU rounds (median; default 50)")
    parser.add_argument("--pyc-runs", type=int, default=7, help="cold-import runs per .pyc variant (default 7)")
    parser.add_argument("--cost-rounds", type=int, default=20, help="cost-probe rounds (median; default 20)")
    parser.add_argument("--only-cost", action="store_true", help="only section 8 (cost), with sections 3 and 4")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if args.runs < 1 or args.rounds < 1:
        parser.error("--runs and --rounds must be at least 1")

    started = time.perf_counter()
    results: dict[str, Any] = {"python": sys.version.split()[0]}
    if args.only_cost:  # section 8 and the two it reads (3, 4): a quick before/after of a change
        results["api_calls"], results["sizes"] = measure_api_calls(), measure_sizes()
        with tempfile.TemporaryDirectory() as scratch:
            results["cost"] = cost.measure(lambda_env("intake"), results["sizes"], results["api_calls"],
                                           args.cost_rounds, Path(scratch))
        print("\n".join(cost.render(results["cost"], table)))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        return
    log(f"1/8 cold imports ({args.runs} runs x 6 processes)")
    results["cold_import"] = measure_cold_imports(args.runs)
    log(f"2/8 warm CPU ({args.rounds} rounds)")
    results["warm_cpu"] = measure_warm_cpu(args.rounds)
    log("3/8 AWS API calls (moto)")
    results["api_calls"] = measure_api_calls()
    log("4/8 bytes per event")
    results["sizes"] = measure_sizes()
    log("5/8 reconcile calls per run (fake X + moto)")
    results["reconcile"] = measure_reconcile()
    log("6/8 replay calls per run (fake X + moto)")
    results["replay"] = measure_replay()
    log(f"7/8 shipped .pyc after a SAM-style zip ({args.pyc_runs} runs x 10 processes; builds the layer)")
    results["pyc"] = measure_shipped_pyc(args.pyc_runs)
    log(f"8/8 cost per million events (the real intake handler against an HTTP-level fake, {args.cost_rounds} rounds)")
    with tempfile.TemporaryDirectory() as scratch:
        results["cost"] = cost.measure(lambda_env("intake"), results["sizes"], results["api_calls"],
                                       args.cost_rounds, Path(scratch))
    measure_what_ships(results, args.pyc_runs)
    results["seconds"] = time.perf_counter() - started

    print(render(results))
    print(f"\n(bench took {results['seconds']:.1f} s; Python {results['python']})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""``xrelay local``: the whole stack on one machine, no Docker and no AWS account.

* AWS is moto in server mode (``--aws-port``); the tables and queues are created by submitting
  the resources of ``template.yaml`` that moto's CloudFormation supports as a stack, so the
  template stays the only list of them.
* The X app secret (``<stack>/x-app``, the ``XAppSecretArn`` Parameter) is seeded from the
  environment: ``X_CONSUMER_KEY``, ``X_CONSUMER_SECRET``, ``X_BEARER_TOKEN`` (a printed
  development default for each one unset) and the optional ``X_CLIENT_ID``, ``X_CLIENT_SECRET``,
  ``X_PREVIOUS_CONSUMER_SECRET`` and ``X_PREVIOUS_CLIENT_SECRET`` (both signing secrets, and
  their rotation).
  ``X_API_BASE_URL``, when set, replaces the ``XApiBaseUrl`` Parameter in the functions'
  environment (a fake or a proxy of X), and ``CRC_SIGNING_SECRET`` the ``CrcSigningSecret`` one.
* The template's HTTP routes are served on ``--port`` by the real handlers, called with API
  Gateway HTTP API (payload 2.0) events.
* What runs asynchronously in AWS runs here too: each DynamoDB-stream trigger is polled and its
  function invoked with Lambda-shaped batches, honouring ``batchItemFailures``; each ``rate(...)``
  Schedule event invokes its function at that rate, with an EventBridge ``Scheduled Event`` (the
  first run a few seconds after start). ``cron(...)`` schedules and CloudWatch alarm rules do not
  run locally (moto evaluates no alarms): ``xrelay invoke`` runs those functions by hand.

Functions run in this process, one invocation at a time (as one Lambda sandbox would), each
with the environment the template gives it.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from xrelay.aws import client
from xrelay.tools.cli import template as tpl
from xrelay.tools.cli.stack import Stack

DEV_CONSUMER_SECRET = "xrelay-local-development-secret"
DEV_CONSUMER_KEY = "xrelay-local-development-consumer-key"
DEV_BEARER_TOKEN = "xrelay-local-development-bearer-token"
# The local X app secret's fields: (environment variable, field, development default; None: optional).
APP_SECRET_ENV: tuple[tuple[str, str, str | None], ...] = (
    ("X_CONSUMER_KEY", "consumer_key", DEV_CONSUMER_KEY),
    ("X_CONSUMER_SECRET", "consumer_secret", DEV_CONSUMER_SECRET),
    ("X_BEARER_TOKEN", "bearer_token", DEV_BEARER_TOKEN),
    ("X_CLIENT_ID", "client_id", None),
    ("X_CLIENT_SECRET", "client_secret", None),
    # Rotation of either signing secret (README "X's two signing schemes").
    ("X_PREVIOUS_CONSUMER_SECRET", "previous_consumer_secret", None),
    ("X_PREVIOUS_CLIENT_SECRET", "previous_client_secret", None),
)
# Variables of this process's environment that replace a function's template value in local runs.
LOCAL_ENV_OVERRIDES = ("X_API_BASE_URL", "CRC_SIGNING_SECRET")
LOCAL_RESOURCE_TYPES = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Events::EventBus")
# Conditional resources made locally when their Condition holds (others are extras, e.g. e-mail).
LOCAL_CONDITIONAL_TYPES = ("AWS::Events::EventBus",)
# With EventBusMode on: a rule sending every xrelay entry on the bus to this queue, to see them.
BUS_RULE = "xrelay-local-all"
BUS_QUEUE_SUFFIX = "-bus-events"
REGION = "us-east-1"


def use_local_aws(endpoint: str) -> None:
    """Point this process's boto3 at ``endpoint`` with throwaway credentials."""
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        del os.environ[name]  # a per-service endpoint would win over ours and reach real AWS
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    client.cache_clear()


def consumer_secret_from_env() -> tuple[str, bool]:
    """The consumer secret local deliveries are signed with, and whether it is the development default."""
    value = os.environ.get("X_CONSUMER_SECRET")
    return (value, False) if value else (DEV_CONSUMER_SECRET, True)


def client_secret_from_env() -> str | None:
    """The OAuth 2.0 client secret the local app secret holds (``X_CLIENT_SECRET``); None: none, no default.

    No development default: with a client secret the CRC answers with it (``auto``), so a default
    would break the CRC of a real app given only ``X_CONSUMER_SECRET``.
    """
    return os.environ.get("X_CLIENT_SECRET") or None


def app_secret_from_env() -> tuple[dict[str, str], list[str]]:
    """The local X app secret's JSON object, and the variables whose development default it holds.

    Optional fields (``client_id``, ``client_secret``, ``previous_*``) are present only when their variable is set.
    """
    value: dict[str, str] = {}
    defaulted: list[str] = []
    for variable, name, default in APP_SECRET_ENV:
        if os.environ.get(variable):
            value[name] = os.environ[variable]
        elif default is not None:
            value[name] = default
            defaulted.append(variable)
    return value, defaulted


def app_secret_summary() -> list[str]:
    """One line per field of the local app secret: where it comes from (values only for defaults)."""
    lines = []
    for variable, name, default in APP_SECRET_ENV:
        if os.environ.get(variable):
            lines.append(f"{name:<16} from {variable}")
        elif default is not None:
            lines.append(f"{name:<16} the development default {default!r} (set {variable} to change it)")
        else:
            lines.append(f"{name:<16} not set (optional, {variable})")
    return lines


def app_secret_name(stack_name: str) -> str:
    return f"{stack_name}/x-app"


@dataclass
class FakeContext:
    function_name: str
    memory_limit_in_mb: int = 512
    timeout_s: int = 8

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_STREAM_APPEND = threading.Lock()


def serialise_moto_stream_appends() -> None:
    """Make moto's DynamoDB stream number its records uniquely under concurrent writes, as AWS does.

    moto's ``StreamShard.add`` takes ``len(items)`` as the next sequence number before it appends, so
    two PutItems at once (intake writes a delivery's events concurrently) can get the same number,
    and the stream poller, which resumes from a failed record's number as Lambda does, would then
    publish one record twice and skip another. Patched once, in this process, whichever moto runs
    here (``mock_aws`` in the tests, the threaded server of ``xrelay local``); a no-op without moto.
    """
    try:
        from moto.dynamodb.models.table import StreamShard
    except ImportError:
        return
    if getattr(StreamShard.add, "_xrelay_serialised", False):
        return
    unlocked = StreamShard.add

    def add(self, old, new):  # noqa: ANN001, ANN202 (moto's own signature)
        with _STREAM_APPEND:
            return unlocked(self, old, new)

    add._xrelay_serialised = True  # type: ignore[attr-defined]
    add.__wrapped__ = unlocked  # type: ignore[attr-defined]  (moto's own, for the test that shows the race)
    StreamShard.add = add


class LocalStack:
    """The template's functions wired to AWS resources of a stack (local moto or real)."""

    def __init__(self, root: Path, stack_name: str = "xrelay"):
        serialise_moto_stream_appends()
        self.root = root
        self.template = tpl.load(root / "template.yaml")
        self.stack = Stack(stack_name)
        self._modules: dict[str, ModuleType] = {}
        self._envs: dict[str, dict[str, str]] = {}
        self._lock = threading.RLock()  # one invocation at a time, like one Lambda sandbox
        self.console: Any = None  # xrelay.tools.local.console.Console under `xrelay local`: one line per invocation

    # ---------------------------------------------------------------- provisioning
    def provision(self, parameters: dict[str, str] | None = None, webhook_url: str | None = None) -> None:
        """Create (or update) the X app secret, and the template's tables and queues (idempotent).

        The local stack has the template's Outputs too (``xrelay env`` and consumers read them as on
        AWS): those of the resources created here, ``WebhookUrl`` as ``webhook_url``, and the others
        (dashboard, alarm topic) saying they are not emulated.
        """
        secret_value = json.dumps(app_secret_from_env()[0])
        sm = client("secretsmanager")
        name = app_secret_name(self.stack.name)
        try:
            arn = sm.create_secret(Name=name, SecretString=secret_value)["ARN"]
        except Exception as exc:
            if "ResourceExists" not in type(exc).__name__ and "ResourceExists" not in str(exc):
                raise
            arn = sm.put_secret_value(SecretId=name, SecretString=secret_value)["ARN"]
        params = {"XAppSecretArn": arn, **(parameters or {})}
        if os.environ.get("CRC_SIGNING_SECRET"):  # the Parameter it stands for, as status and doctor read it
            params.setdefault("CrcSigningSecret", os.environ["CRC_SIGNING_SECRET"])
        cfn = client("cloudformation")
        try:
            cfn.describe_stacks(StackName=self.stack.name)
            return
        except Exception:
            pass
        resources = {}
        resolver = tpl.Resolver(self.template, tpl.parameter_values(self.template, params), self.stack.ref,
                                self.stack.get_att, REGION, stack_name=self.stack.name)
        for logical_id, res in self.template["Resources"].items():
            if res["Type"] in LOCAL_RESOURCE_TYPES and self._included(res, resolver):
                resources[logical_id] = {k: v for k, v in res.items()
                                         if k not in ("DeletionPolicy", "UpdateReplacePolicy")}
        body = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": "xrelay local stack: the tables and queues of template.yaml",
            "Parameters": self.template.get("Parameters", {}),
            "Conditions": self.template.get("Conditions", {}),
            "Resources": resources,
            "Outputs": local_outputs(self.template, set(resources), webhook_url),
        }
        cfn.create_stack(StackName=self.stack.name, TemplateBody=json.dumps(body),
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        self._parameters = params
        if "EventBus" in resources and resolver.condition(resources["EventBus"]["Condition"]):
            self.route_bus_to_queue(resolver.resolve(resources["EventBus"]["Properties"]["Name"]))

    def _included(self, res: dict[str, Any], resolver: tpl.Resolver) -> bool:
        if "Condition" not in res:
            return True
        return res["Type"] in LOCAL_CONDITIONAL_TYPES and resolver.condition(res["Condition"])

    def route_bus_to_queue(self, bus_name: str) -> str:
        """A rule on the stack's bus sending every xrelay entry to a queue (``<stack>-bus-events``):
        on AWS the rules are the user's; locally one is enough to see what the bus carries."""
        sqs, events = client("sqs"), client("events")
        url = sqs.create_queue(QueueName=self.stack.name + BUS_QUEUE_SUFFIX)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": [{"prefix": "xrelay."}]}
        events.put_rule(Name=BUS_RULE, EventBusName=bus_name, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=BUS_RULE, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": arn}])
        return url

    # ---------------------------------------------------------------- functions
    def parameters(self) -> dict[str, str]:
        stack = client("cloudformation").describe_stacks(StackName=self.stack.name)["Stacks"][0]
        given = {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])}
        return tpl.parameter_values(self.template, given)

    def environment(self, function: str) -> dict[str, str]:
        """What the template gives ``function``; ``LOCAL_ENV_OVERRIDES`` set here win over it."""
        if function not in self._envs:
            resolver = tpl.Resolver(self.template, self.parameters(), self.stack.ref, self.stack.get_att, REGION,
                                    stack_name=self.stack.name)
            env = resolver.function_environment(function)
            for name in LOCAL_ENV_OVERRIDES:
                if name in env and os.environ.get(name):
                    env[name] = os.environ[name]
            self._envs[function] = env
        return self._envs[function]

    @contextmanager
    def _env(self, function: str):
        saved = dict(os.environ)
        os.environ.update(self.environment(function))
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def module(self, function: str) -> ModuleType:
        with self._lock:
            if function not in self._modules:
                props = self.template["Resources"][function]["Properties"]
                path = self.root / props["CodeUri"] / (props["Handler"].split(".")[0] + ".py")
                spec = importlib.util.spec_from_file_location(f"xrelay_function_{function}", path)
                module = importlib.util.module_from_spec(spec)
                with self._env(function), (self.console.invocation() if self.console else nullcontext()):
                    spec.loader.exec_module(module)
                self._modules[function] = module
            return self._modules[function]

    def context(self, function: str) -> FakeContext:
        """A Lambda context with the function's own Timeout and MemorySize (or the Globals')."""
        props = self.template["Resources"][function]["Properties"]
        defaults = self.template.get("Globals", {}).get("Function", {})
        return FakeContext(function, memory_limit_in_mb=int(props.get("MemorySize", defaults.get("MemorySize", 128))),
                           timeout_s=int(props.get("Timeout", defaults.get("Timeout", 3))))

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        if function not in tpl.functions(self.template):
            raise LookupError(f"template.yaml has no function {function!r}; it has "
                              + ", ".join(sorted(tpl.functions(self.template))))
        handler_name = self.template["Resources"][function]["Properties"]["Handler"].split(".", 1)[1]
        module = self.module(function)
        if self.console is None:
            with self._lock, self._env(function):
                return getattr(module, handler_name)(event, self.context(function))
        with self._lock, self._env(function):
            started, result, error = time.monotonic(), None, None
            try:
                with self.console.invocation():
                    result = getattr(module, handler_name)(event, self.context(function))
                return result
            except Exception as exc:
                error = exc
                raise
            finally:
                self.console.report(function, event, result, error, time.monotonic() - started)

    # ---------------------------------------------------------------- HTTP (API Gateway)
    def http_server(self, host: str, port: int) -> ThreadingHTTPServer:
        routes = {(method, path): fn for method, path, fn in tpl.http_routes(self.template)}
        stack = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                url = urlsplit(self.path)
                function = routes.get((self.command, url.path))
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if function is None:
                    return self._reply(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
                try:
                    result = stack.invoke(function, api_event(self.command, url.path, url.query,
                                                              dict(self.headers.items()), body,
                                                              self.client_address[0]))
                except Exception as exc:  # an unhandled error is API Gateway's 500
                    print(f"[local] {function} raised {type(exc).__name__}: {exc}", flush=True)
                    return self._reply(500, {"content-type": "application/json"},
                                       b'{"message":"Internal Server Error"}')
                payload = result.get("body") or ""
                raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                self._reply(result.get("statusCode", 200), result.get("headers") or {}, raw)

            def _reply(self, status: int, headers: dict[str, str], raw: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, fmt: str, *args: Any) -> None:
                if stack.console is not None and (self.command, urlsplit(self.path).path) in routes:
                    return  # the invocation's own line says more
                print(f"[http] {self.command} {self.path.split('?')[0]} -> {args[1] if len(args) > 1 else ''}",
                      flush=True)

        return ThreadingHTTPServer((host, port), Handler)

    # ---------------------------------------------------------------- DynamoDB streams (event source mappings)
    def pollers(self, stop: threading.Event | None = None) -> list[StreamPoller]:
        if not hasattr(self, "_pollers"):
            stop = stop or threading.Event()
            self._pollers = [StreamPoller(self, function, self.stack.physical(table), props, stop)
                             for function, table, props in tpl.stream_sources(self.template)]
        return self._pollers

    def stream_pollers(self, stop: threading.Event) -> list[threading.Thread]:
        return [threading.Thread(target=p.run, name=f"stream-{p.function}", daemon=True) for p in self.pollers(stop)]

    def scheduled(self) -> list[tuple[str, str, int | None]]:
        """(function, schedule expression, seconds between runs or None for cron) of the template's schedules."""
        return [(function, expression, tpl.rate_seconds(expression))
                for function, _, expression in tpl.schedules(self.template, self.parameters())]

    def schedulers(self, stop: threading.Event, first_delay: float = 5.0) -> list[threading.Thread]:
        """A thread per ``rate(...)`` schedule invoking its function until ``stop`` is set."""

        def run(function: str, every: int) -> None:
            delay = first_delay
            while not stop.wait(delay):
                try:
                    self.invoke(function, scheduled_event(function))
                except Exception as exc:  # like Lambda: a failed run is logged, the schedule goes on
                    print(f"[local] {function} failed: {type(exc).__name__}: {exc}", flush=True)
                delay = every

        return [threading.Thread(target=run, args=(function, every), name=f"schedule-{function}", daemon=True)
                for function, _, every in self.scheduled() if every]

    def drain(self, max_batches: int = 100) -> int:
        """Run the stream triggers synchronously until the streams are empty (tests, `invoke`)."""
        handed_total = 0
        for _ in range(max_batches):
            progress = [p.poll_once() for p in self.pollers()]
            handed_total += sum(h for h, _ in progress)
            if not any(h for h, _ in progress):
                return handed_total
        return handed_total


def local_outputs(template: dict[str, Any], created: set[str], webhook_url: str | None) -> dict[str, Any]:
    """The template's Outputs for the local stack: same keys, values for what exists locally."""
    outputs: dict[str, Any] = {}
    for key, output in template.get("Outputs", {}).items():
        if "Condition" in output:
            continue  # as on AWS with the condition false (e.g. no custom domain)
        value = output["Value"]
        if key == "WebhookUrl" and webhook_url:
            value = webhook_url
        elif not _references(value) <= created:
            value = "not emulated locally"
        outputs[key] = {"Value": value, **({"Description": output["Description"]} if "Description" in output else {})}
    return outputs


def _references(value: Any) -> set[str]:
    """Logical ids an intrinsic function refers to (pseudo parameters are not resources)."""
    import re

    found: set[str] = set()
    if isinstance(value, dict):
        for fn, arg in value.items():
            if fn == "Ref" and isinstance(arg, str) and not arg.startswith("AWS::"):
                found.add(arg)
            elif fn == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else str(arg).split(".")[0])
            elif fn == "Fn::Sub":
                text = arg[0] if isinstance(arg, list) else arg
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)
                          if not name.startswith("AWS::")}
            else:
                found |= _references(arg)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def scheduled_event(function: str) -> dict[str, Any]:
    """What EventBridge Scheduler sends a function on its schedule."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/xrelay-local-{function}Schedule"], "detail": {},
    }


def api_event(method: str, path: str, query: str, headers: dict[str, str], body: bytes,
              source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as Lambda receives it."""
    params = {k: ",".join(v) for k, v in parse_qs(query, keep_blank_values=True).items()}
    try:
        text, is_b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "stage": "$default",
            "requestId": str(uuid.uuid4()), "routeKey": f"{method} {path}", "time": "", "timeEpoch": int(now * 1000),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
        },
        "isBase64Encoded": is_b64,
    }
    if params:
        event["queryStringParameters"] = params
    if body:
        event["body"] = text
    return event


def _lambda_attr(value: dict[str, Any]) -> dict[str, Any]:
    """boto3 gives binary attributes as bytes; Lambda's JSON event has them base64-encoded."""
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": base64.b64encode(bytes(inner)).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(bytes(v)).decode() for v in inner]}
    if kind == "M":
        return {"M": {k: _lambda_attr(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_lambda_attr(v) for v in inner]}
    return value


def lambda_stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    ddb = dict(record["dynamodb"])
    for image in ("Keys", "NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = {k: _lambda_attr(v) for k, v in ddb[image].items()}
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = created.timestamp()
    return {"eventID": record.get("eventID"), "eventName": record["eventName"], "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": REGION, "dynamodb": ddb, "eventSourceARN": stream_arn}


def matches(pattern: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` matches an event-filtering ``pattern`` (Lambda FilterCriteria).

    The subset xrelay's template uses and tests: nested objects, and lists of allowed leaf values,
    each a literal or one of ``{"exists": bool}``, ``{"prefix": str}``, ``{"anything-but": [..]}``.
    """
    if not isinstance(value, dict):
        return False
    for key, wanted in pattern.items():
        if isinstance(wanted, dict):
            if not matches(wanted, value.get(key)):
                return False
            continue
        present, here = key in value, value.get(key)
        if not any(_allowed(rule, present, here) for rule in wanted):
            return False
    return True


def _allowed(rule: Any, present: bool, value: Any) -> bool:
    if not isinstance(rule, dict):
        return present and value == rule
    if "exists" in rule:
        return present == bool(rule["exists"])
    if "prefix" in rule:
        return present and isinstance(value, str) and value.startswith(rule["prefix"])
    if "anything-but" in rule:
        return present and value not in rule["anything-but"]
    raise ValueError(f"filter rule not supported locally: {rule}")


class StreamPoller:
    """A DynamoDB event source mapping, as Lambda runs one.

    Batches (after FilterCriteria), partial failures (``batchItemFailures``: resume from the lowest
    failed record), and what Lambda does with a batch that keeps failing: each failure is a retry,
    ``BisectBatchOnFunctionError`` halves a batch the function raised on before the next try, and after
    ``MaximumRetryAttempts`` (absent: retry until the record expires, as Lambda's -1) the records
    are given up and described on the ``OnFailure`` destination queue (Lambda's invocation record,
    ``DDBStreamBatchInfo``), so a poison pill locally is seen where it would be in AWS.
    """

    def __init__(self, stack: LocalStack, function: str, table: str, props: dict[str, Any],
                 stop: threading.Event, idle_sleep: float = 0.1, retry_sleep: float = 0.5,
                 on_error: Callable[[str], None] = lambda msg: print(msg, flush=True)):
        self.stack, self.function, self.table, self.stop = stack, function, table, stop
        self.batch_size = int(props.get("BatchSize", 100))
        self.filters = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
        self.idle_sleep, self.retry_sleep, self.on_error = idle_sleep, retry_sleep, on_error
        self.max_retries = int(props.get("MaximumRetryAttempts", -1))
        self.bisect = bool(props.get("BisectBatchOnFunctionError", False))
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.on_failure = destination["Fn::GetAtt"][0] if isinstance(destination, dict) and \
            "Fn::GetAtt" in destination else None
        self.pending: list[dict[str, Any]] = []  # read from the shard, not yet handled; [0] is the checkpoint
        self.attempts = 0  # failed invocations since the checkpoint last moved
        self.size: int | None = None  # the bisected batch size while bisecting
        self.region = 0  # records left of the batch being bisected (its halves are handled one by one)
        self.given_up = 0  # records sent to the on-failure destination (or dropped without one)

    def _open(self) -> None:
        self.streams = client("dynamodbstreams")
        self.arn = client("dynamodb").describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        self.shard = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"][0]["ShardId"]
        self.iterator = self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=self.shard,
                                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]

    def poll_once(self) -> tuple[int, bool]:
        """Deliver at most one batch. Returns (records handed to the function, whether it failed)."""
        if not hasattr(self, "iterator"):
            self._open()
        if not self.pending:
            page = self.streams.get_records(ShardIterator=self.iterator, Limit=self.batch_size)
            records = page.get("Records", [])
            self.iterator = page.get("NextShardIterator") or self.iterator
            if not records:
                return 0, False
            shaped = [lambda_stream_record(r, self.arn) for r in records]
            # Lambda drops the records no filter matches before the batch is formed (and never retries them).
            self.pending = [r for r in shaped if not self.filters or any(matches(f, r) for f in self.filters)]
            if not self.pending:
                return len(records), False
        batch = self.pending[:self.size or self.batch_size]
        errored = False
        try:
            result = self.stack.invoke(self.function, {"Records": batch}) or {}
            failures = [f["itemIdentifier"] for f in result.get("batchItemFailures", [])]
        except Exception as exc:  # a function error: the whole batch failed
            self.on_error(f"[local] {self.function} raised {type(exc).__name__}: {exc}")
            failures, errored = [batch[0]["dynamodb"]["SequenceNumber"]], True
        if not failures:
            del self.pending[:len(batch)]
            self.attempts, self.region = 0, self.region - len(batch)
            if self.region <= 0:
                self.size = None
            return len(batch), False
        # Lambda checkpoints up to the lowest failed sequence number and retries from there.
        first = min(failures, key=int)
        done = next((i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] == first), 0)
        del self.pending[:done]
        failing = batch[done:]
        self.attempts = 0 if done else self.attempts
        self.attempts += 1
        if 0 <= self.max_retries < self.attempts:
            self._give_up(failing)
            del self.pending[:len(failing)]
            self.attempts, self.size, self.region = 0, None, 0
        elif errored and self.bisect and len(failing) > 1:
            # Bisecting is for function errors; a partial failure already says where to resume.
            self.region = self.region if self.size else len(failing)
            self.size = (len(failing) + 1) // 2
        return len(batch), True

    def _give_up(self, records: list[dict[str, Any]]) -> None:
        """What Lambda does when the retries are exhausted: the batch's description on the destination."""
        self.given_up += len(records)
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        self.on_error(f"[local] {self.function}: retries exhausted, {len(records)} records given up"
                      + (f" (described on {self.on_failure})" if self.on_failure else " (no on-failure destination)"))
        if not self.on_failure:
            return

        def arrival(ddb: dict[str, Any]) -> str | None:
            when = ddb.get("ApproximateCreationDateTime")
            return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" \
                if isinstance(when, int | float) else None

        record = {
            "requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetryAttemptsExhausted",
                               "functionArn": f"arn:aws:lambda:{REGION}:123456789012:function:{self.function}",
                               "approximateInvokeCount": self.attempts},
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": self.shard, "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"], "approximateArrivalOfFirstRecord": arrival(first),
                "approximateArrivalOfLastRecord": arrival(last), "batchSize": len(records), "streamArn": self.arn},
        }
        client("sqs").send_message(QueueUrl=self.stack.stack.queue_url(self.on_failure), MessageBody=json.dumps(record))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                handed, failed = self.poll_once()
            except Exception as exc:  # moto restarting, network hiccup: keep polling
                self.on_error(f"[local] stream poller for {self.function}: {type(exc).__name__}: {exc}")
                handed, failed = 0, True
            if failed:
                self.stop.wait(self.retry_sleep)
            elif not handed:
                self.stop.wait(self.idle_sleep)


def port_taken(host: str, port: int) -> str | None:
    """Why ``port`` cannot serve the local stack on ``host``, or None when it is free.

    Both ways: something answering there (macOS's AirPlay receiver holds 5000 on every address,
    and a bind to 127.0.0.1 alone may still succeed and then never be reached), and a bind.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        if probe.connect_ex((host, port)) == 0:
            return "something is already listening on it"
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as both servers do: TIME_WAIT is fine
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def wait_listening(host: str, port: int, timeout: float) -> bool:
    """Whether something accepts connections on ``port`` within ``timeout`` seconds."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.05)
    return False

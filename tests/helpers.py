"""Talking to a LocalStack the way X and a consumer would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
from botocore.client import BaseClient
from botocore.exceptions import EndpointConnectionError

from xrelay.aws import client
from xrelay.events.models import Source
from xrelay.publishing.publisher import decode_message
from xrelay.receiving.signature import SIGNATURE_HEADER, sign
from xrelay.tools.local.local import DEV_CONSUMER_SECRET, LocalStack, api_event

if TYPE_CHECKING:
    from fakex import FakeX


def post(stack: LocalStack, body: bytes, *, secret: str | None = DEV_CONSUMER_SECRET,
         headers: dict[str, str] | None = None, base64_body: bool = False) -> tuple[int, dict[str, Any]]:
    sent = {"content-type": "application/json", **(headers or {})}
    if secret is not None:
        sent[SIGNATURE_HEADER] = sign(secret, body)
    event = api_event("POST", "/webhook", "", sent, body)
    if base64_body:
        import base64

        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    result = stack.invoke("IntakeFunction", event)
    return result["statusCode"], json.loads(result["body"])


def crc(stack: LocalStack, query: str) -> tuple[int, dict[str, Any]]:
    result = stack.invoke("CrcFunction", api_event("GET", "/webhook", query, {}, b""))
    return result["statusCode"], json.loads(result["body"])


def stored_keys(stack: LocalStack) -> list[str]:
    """The keys of the stored events (not the table's other items: tombstones, post references...)."""
    table = stack.stack.physical("EventsTable")
    pages = client("dynamodb").get_paginator("scan").paginate(
        TableName=table, ProjectionExpression="pk", FilterExpression="attribute_exists(#r)",
        ExpressionAttributeNames={"#r": "record"})
    return sorted(i["pk"]["S"] for page in pages for i in page["Items"])


def state_items(stack: LocalStack, pk: str) -> list[dict[str, Any]]:
    table = stack.stack.physical("StateTable")
    return client("dynamodb").query(TableName=table, KeyConditionExpression="pk = :p",
                                    ExpressionAttributeValues={":p": {"S": pk}})["Items"]


def receive_all(stack: LocalStack, logical_id: str = "EventsQueue") -> list[dict[str, Any]]:
    """Every message on a queue (received and deleted), as SQS hands them to a consumer."""
    sqs = client("sqs")
    url = stack.stack.queue_url(logical_id)
    out: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                    WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return out
        out.extend(batch)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def published_keys(stack: LocalStack) -> list[str]:
    """The keys of the events on the queue (received and deleted; compliance messages are dropped)."""
    records = [decode_message(m["Body"]) for m in receive_all(stack)]
    return sorted(r.event_key for r in records if r.source is not Source.XRELAY)


# ------------------------------------------------------------------ fault injection (above botocore's retries)

Action = Callable[[BaseClient, str, dict[str, Any], Callable[..., Any]], Any]


def client_error(code: str, status: int, message: str = "injected fault") -> Action:
    """Raise what botocore raises when AWS answers ``status`` with error ``code``."""

    def action(aws: BaseClient, operation: str, params: dict[str, Any], real: Callable[..., Any]) -> Any:
        response = {"Error": {"Code": code, "Message": message},
                    "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 2}}
        raise aws.exceptions.from_code(code)(response, operation)

    return action


def connection_error(aws: BaseClient, operation: str, params: dict[str, Any], real: Callable[..., Any]) -> Any:
    raise EndpointConnectionError(endpoint_url=aws.meta.endpoint_url)


@dataclass
class Rule:
    service: str
    operation: str
    action: Action
    times: int
    after: int
    when: Callable[[dict[str, Any]], bool]
    matched: int = 0
    fired: int = 0


class Faults:
    """Chosen calls fail (or are answered by ``action``); every other call goes to moto untouched."""

    def __init__(self, real: Callable[..., Any]):
        self.real = real
        self.rules: list[Rule] = []

    def inject(self, service: str, operation: str, action: Action, *, times: int = 1, after: int = 0,
               when: Callable[[dict[str, Any]], bool] = lambda params: True) -> Rule:
        """The ``times`` matching calls that follow the first ``after`` matching calls get ``action``."""
        rule = Rule(service, operation, action, times, after, when)
        self.rules.append(rule)
        return rule

    def call(self, aws: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = aws.meta.service_model.service_name
        for rule in self.rules:
            if (rule.service, rule.operation) == (service, operation) and rule.when(params):
                rule.matched += 1
                if rule.after < rule.matched <= rule.after + rule.times:
                    rule.fired += 1
                    return rule.action(aws, operation, params, lambda p: self.real(aws, operation, p))
        return self.real(aws, operation, params)


# ------------------------------------------------------------------ metrics, read back from the EMF lines


def emf(capsys) -> list[dict[str, Any]]:
    """Every CloudWatch embedded-metric-format blob printed so far (one JSON object per line)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()
            if line.startswith("{") and '"_aws"' in line]


def values(blobs: list[dict[str, Any]], name: str, **dimensions: str) -> list[float]:
    """The values of metric ``name`` in blobs carrying ``dimensions`` (EMF gives a list or a scalar)."""
    found: list[float] = []
    for blob in blobs:
        if name in blob and all(blob.get(k) == v for k, v in dimensions.items()):
            found.extend(blob[name] if isinstance(blob[name], list) else [blob[name]])
    return found


def serve(fake: FakeX) -> ThreadingHTTPServer:
    """The fake on a real socket: each request is rebuilt as the httpx.Request X would have received."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            request = httpx.Request(self.command, f"http://{self.headers['host']}{self.path}",
                                    headers=dict(self.headers.items()),
                                    content=self.rfile.read(length) if length else b"")
            response = fake(request)
            body = response.content
            self.send_response(response.status_code)
            for key, value in response.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding"):
                    self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports nothing listens on now (held together, so none is given twice)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def child_env(**extra: str) -> dict[str, str]:
    """This environment for an `xrelay` subprocess, without what would steer it elsewhere, plus ``extra``.

    No endpoint (the child chooses its own emulator), no stack name, no consumer secret (the
    development default, unless ``extra`` gives one); unbuffered, so its console can be read live.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.pop("XRELAY_STACK", None)
    env.pop("X_CONSUMER_SECRET", None)
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


@contextmanager
def until_stopped(proc: subprocess.Popen, url: str, log, deadline_s: float) -> Iterator[None]:
    """An `xrelay local` subprocess, once ``url`` answers a CRC, until the block ends (SIGTERM, then kill).

    Fails the test with ``log``'s text if the process exits or does not answer within ``deadline_s``.
    """
    import pytest

    try:
        deadline = time.monotonic() + deadline_s
        while True:
            if proc.poll() is not None:
                pytest.fail(f"xrelay local exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(url, params={"crc_token": "ready"}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"xrelay local did not answer within {deadline_s} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

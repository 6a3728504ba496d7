"""What ``xrelay local`` keeps across restarts: a snapshot of the stack's data, saved on shutdown.

moto keeps everything in memory. On a clean stop (Ctrl-C, SIGTERM) the local stack writes
``<state dir>/<stack>.json``: every item of the stack's tables (events, desired state, outage
ledger, quarantine, ...), the messages waiting in its queues and the users' authorisations in
Secrets Manager; the next start restores them into the fresh emulator before anything runs.
The X app secret is not kept, nor restored from a snapshot that holds it: it is seeded from the
environment at each start, so a restart with other ``X_*`` variables (a new ``X_CLIENT_SECRET``, a
rotation's ``X_PREVIOUS_*`` dropped) signs and answers the CRC with what the user now gave.

Restored items are written with the tables' streams paused, so the publisher does not publish
again what consumers already had (the waiting messages come back as they were). ``--fresh``
(``make run FRESH=1``) starts empty and deletes the snapshot.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xrelay.aws import client
from xrelay.tools.cli.stack import Stack

SNAPSHOT_VERSION = 1
TABLE, QUEUE = "AWS::DynamoDB::Table", "AWS::SQS::Queue"
BYTES = "__xrelay_bytes_b64__"  # how a binary value is written in the JSON snapshot


@dataclass
class Snapshot:
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # logical id -> items (wire format)
    queues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # logical id -> messages
    secrets: dict[str, str] = field(default_factory=dict)  # name -> SecretString

    def summary(self) -> str:
        items = sum(len(v) for v in self.tables.values())
        messages = sum(len(v) for v in self.queues.values())
        return (f"{items} item(s) in {len(self.tables)} table(s), {messages} queued message(s), "
                f"{len(self.secrets)} secret(s)")

    def to_json(self) -> dict[str, Any]:
        return {"version": SNAPSHOT_VERSION, "tables": {k: [_encode(i) for i in v] for k, v in self.tables.items()},
                "queues": self.queues, "secrets": self.secrets}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {data.get('version')!r}, this xrelay reads {SNAPSHOT_VERSION}")
        return cls({k: [_decode(i) for i in v] for k, v in data.get("tables", {}).items()},
                   data.get("queues", {}), data.get("secrets", {}))


def snapshot_path(state_dir: Path, stack_name: str) -> Path:
    return state_dir / f"{stack_name}.json"


def _resources(stack: Stack, template: dict[str, Any], kind: str) -> list[str]:
    return [logical for logical, res in template["Resources"].items()
            if res["Type"] == kind and logical in stack.resources]


def take(stack: Stack, template: dict[str, Any], keep_secret: Any = lambda name: True) -> Snapshot:
    """Everything of the stack worth keeping. Queues are drained (the process is stopping anyway)."""
    snap = Snapshot()
    ddb = client("dynamodb")
    for logical in _resources(stack, template, TABLE):
        items: list[dict[str, Any]] = []
        for page in ddb.get_paginator("scan").paginate(TableName=stack.physical(logical), ConsistentRead=True):
            items.extend(page["Items"])
        snap.tables[logical] = items
    sqs = client("sqs")
    for logical in _resources(stack, template, QUEUE):
        url, messages = stack.queue_url(logical), []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300,
                                           MessageAttributeNames=["All"]).get("Messages", []):
            messages.extend({"body": m["Body"], "attributes": m.get("MessageAttributes", {})} for m in batch)
        snap.queues[logical] = messages
    sm = client("secretsmanager")
    for page in sm.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            name = secret["Name"]
            if name.startswith(f"{stack.name}/") and keep_secret(name):
                value = sm.get_secret_value(SecretId=name).get("SecretString")
                if value is not None:
                    snap.secrets[name] = value
    return snap


def save(path: Path, snap: Snapshot) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(snap.to_json()))
    os.chmod(tmp, 0o600)  # users' tokens are in it, as they are in the emulated Secrets Manager
    tmp.replace(path)  # a crash while writing never leaves half a snapshot


def load(path: Path) -> Snapshot | None:
    if not path.is_file():
        return None
    return Snapshot.from_json(json.loads(path.read_text()))


def restore(stack: Stack, template: dict[str, Any], snap: Snapshot, keep_secret: Any = lambda name: True) -> None:
    """Put ``snap`` back; a secret ``keep_secret`` refuses is left as the start seeded it."""
    ddb, sqs, sm = client("dynamodb"), client("sqs"), client("secretsmanager")
    tables = {logical: stack.physical(logical) for logical in snap.tables if logical in stack.resources}
    with _streams_paused(list(tables.values())):
        for logical, table in tables.items():
            items = snap.tables[logical]
            for start in range(0, len(items), 25):
                pending = {table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]}
                while pending:
                    pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    for logical, messages in snap.queues.items():
        if logical not in stack.resources:
            continue
        url = stack.queue_url(logical)
        for message in messages:
            extra = {"MessageAttributes": message["attributes"]} if message["attributes"] else {}
            sqs.send_message(QueueUrl=url, MessageBody=message["body"], **extra)
    for name, value in snap.secrets.items():
        if not keep_secret(name):
            continue
        try:
            sm.create_secret(Name=name, SecretString=value)
        except sm.exceptions.ResourceExistsException:
            sm.put_secret_value(SecretId=name, SecretString=value)


@contextmanager
def _streams_paused(tables: list[str]) -> Iterator[None]:
    """Writes made inside leave no stream record (moto in this process only; elsewhere a no-op)."""
    paused = []
    try:
        from moto.dynamodb.models import dynamodb_backends

        for backend in _all_backends(dynamodb_backends):
            for name in tables:
                table = backend.tables.get(name)
                if table is not None and table.stream_shard is not None:
                    paused.append((table, table.stream_shard))
                    table.stream_shard = None
    except (ImportError, AttributeError):
        pass
    try:
        yield
    finally:
        for table, shard in paused:
            table.stream_shard = shard


def _all_backends(backends: Any) -> Iterator[Any]:
    for account in list(backends.keys()):
        for region in list(backends[account].keys()):
            yield backends[account][region]


def _encode(value: Any) -> Any:
    """DynamoDB wire-format items as JSON: binary values base64, in {BYTES: ...}."""
    if isinstance(value, bytes | bytearray):
        return {BYTES: base64.b64encode(bytes(value)).decode()}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {BYTES}:
            return base64.b64decode(value[BYTES])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value

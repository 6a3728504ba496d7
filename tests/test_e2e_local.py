"""`xrelay local` as a real process: X talks HTTP to it, a consumer reads the SQS queue on its moto server.

One subprocess serves the whole module. Only ``test_deliveries_reach_the_queue_exactly_once`` makes
events, so it can assert the exact queue contents; the refusal tests check the event table instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from conftest import FIXTURES, ROOT, fixture_bytes
from helpers import child_env, free_ports, until_stopped
from xrelay.receiving.signature import OAUTH2_HEADER, SIGNATURE_HEADER, sign

pytestmark = pytest.mark.e2e

SECRET = "e2e-consumer-secret"
STACK = "xrelay-e2e"
START_DEADLINE_S = 20
QUEUE_DEADLINE_S = 15
QUIET_PERIOD_S = 1.5  # after the expected count arrived: long enough for the poller (0.1 s idle) to send extras

POST_KEY = "xaa:post.create:user_id=1111111111111111111:2080761390344937796"
LIKE_KEY = "xaa:like.create:direction=outbound,user_id=1111111111111111111:-3402274206530057851"
TWEET_KEYS = ["aaa:2244994945:tweet:1924465506158878990", "aaa:2244994945:tweet:1924465506158878991"]
FAVORITE_KEY = "aaa:2244994945:favorite:a7ba59eab0bfcba386f7acedac279542"
BLOCK_KEY = "aaa:2244994945:block:2244994945>3001969357@1517588749178"  # only ever sent refused


@dataclass
class Local:
    url: str  # the webhook URL X is given
    aws: str  # the moto server
    log: Path  # the process's stdout and stderr

    def aws_client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.aws, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def resource(self, logical_id: str) -> str:
        cfn = self.aws_client("cloudformation")
        summaries = cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}[logical_id]

    def queue_url(self, logical_id: str) -> str:
        name = self.resource(logical_id).rstrip("/").rsplit("/", 1)[-1]
        return self.aws_client("sqs").get_queue_url(QueueName=name)["QueueUrl"]

    def stored(self, key: str) -> bool:
        item = self.aws_client("dynamodb").get_item(TableName=self.resource("EventsTable"),
                                                    Key={"pk": {"S": key}}, ConsistentRead=True)
        return "Item" in item


@contextmanager
def running_local(log_dir: Path, **env: str) -> Iterator[Local]:
    """`xrelay local` as a subprocess with ``env`` added to the child environment, until the block ends."""
    port, aws_port = free_ports(2)
    log = log_dir / "output.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # a state dir of its own: nothing restored from an earlier run
            [sys.executable, "-m", "xrelay.tools.cli.cli", "--stack-name", STACK, "local",
             "--port", str(port), "--aws-port", str(aws_port), "--state-dir", str(log_dir)],
            cwd=ROOT, env=child_env(X_CONSUMER_SECRET=SECRET, **env), stdout=out, stderr=subprocess.STDOUT)
    running = Local(f"http://127.0.0.1:{port}/webhook", f"http://127.0.0.1:{aws_port}", log)
    with until_stopped(proc, running.url, log, START_DEADLINE_S):
        yield running


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    with running_local(tmp_path_factory.mktemp("xrelay-local")) as running:
        yield running


def deliver(local: Local, body: bytes, *, secret: str | None = SECRET,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as X does: signed over the exact bytes, unless ``secret`` is None."""
    sent = {"content-type": "application/json", **(headers or {})}
    if secret is not None:
        sent[SIGNATURE_HEADER] = sign(secret, body)
    response = httpx.post(local.url, content=body, headers=sent, timeout=10)
    return response.status_code, response.json()


def consume(local: Local, expected: int) -> list[dict[str, Any]]:
    """Receive (and delete) messages until ``expected`` arrived, then for a quiet period to catch extras."""
    sqs = local.aws_client("sqs")
    url = local.queue_url("EventsQueue")
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + QUEUE_DEADLINE_S
    quiet_until = None
    while True:
        now = time.monotonic()
        if quiet_until is None and len(messages) >= expected:
            quiet_until = now + QUIET_PERIOD_S
        if (quiet_until is not None and now >= quiet_until) or now >= deadline:
            return messages
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                    WaitTimeSeconds=1).get("Messages", [])
        if batch:
            messages.extend(batch)
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def test_crc_answers_with_the_hmac_of_the_token(local):
    """The CRC GET is answered with sha256=base64(HMAC(consumer secret, token)), the secret given to the process."""
    token = "b3a4c5d6-e2e-Token_=~."
    response = httpx.get(local.url, params={"crc_token": token}, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"response_token": sign(SECRET, token.encode())}


@pytest.mark.parametrize("query", [{"crc_token": '{"for_user_id":"1"}'}, {"crc_token": ""}, {}])
def test_crc_refuses_tokens_that_are_not_token_shaped(local, query):
    """A body-shaped, empty or missing crc_token gets 400 and no signature (no signing oracle)."""
    response = httpx.get(local.url, params=query, timeout=5)
    assert response.status_code == 400
    assert "response_token" not in response.json() and response.json()["error"]


@pytest.mark.parametrize("case,status", [("unsigned", 401), ("forged", 403)])
def test_unsigned_or_forged_delivery_is_refused_and_not_stored(local, case, status):
    """Without a valid signature, a delivery is refused with 401/403 and its event is never stored."""
    body = fixture_bytes("aaa/block.json")
    if case == "unsigned":
        code, answer = deliver(local, body, secret=None)
    else:
        code, answer = deliver(local, body, secret="not-the-consumer-secret")
    assert code == status and answer["error"]
    assert not local.stored(BLOCK_KEY)


def test_an_oauth2_signed_delivery_is_401_naming_the_client_secret_this_stack_lacks(local):
    """Only X_CONSUMER_SECRET is given: a delivery signed in the OAuth 2.0 scheme alone cannot be checked."""
    code, answer = deliver(local, fixture_bytes("aaa/block.json"), secret=None,
                           headers={OAUTH2_HEADER: sign("some-client-secret", fixture_bytes("aaa/block.json"))})
    assert code == 401 and "client_secret" in answer["error"] and OAUTH2_HEADER in answer["error"]
    assert not local.stored(BLOCK_KEY)


def test_signed_body_that_is_not_json_is_400(local):
    """A correctly signed body that is not JSON is refused with 400 and a reason."""
    code, answer = deliver(local, b"block=3001969357")
    assert code == 400 and "not valid JSON" in answer["error"]


def test_deliveries_reach_the_queue_exactly_once(local):
    """Deliveries, redeliveries and a copy of an event in another body: each event reaches the queue once."""
    assert deliver(local, fixture_bytes("xaa/01_post.create.json"))[1] == {
        "status": "accepted", "events": 1, "new": 1, "duplicates": 0}
    assert deliver(local, fixture_bytes("xaa/07_like.create.json"))[1]["new"] == 1
    assert deliver(local, fixture_bytes("aaa/tweet_create_two.json")) == (
        200, {"status": "accepted", "events": 2, "new": 2, "duplicates": 0})

    sent = subprocess.run([sys.executable, "-m", "xrelay.tools.cli.cli", "send", str(FIXTURES / "aaa/favorite.json"),
                           "--url", local.url], cwd=ROOT, env=child_env(X_CONSUMER_SECRET=SECRET), capture_output=True, text=True,
                          timeout=30)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    status, _, answer = sent.stdout.strip().partition(" ")
    assert (status, json.loads(answer)["new"]) == ("200", 1)

    # X redelivers (same bytes), and the minimal copy of the post arrives in a different body.
    assert deliver(local, fixture_bytes("aaa/tweet_create_two.json")) == (
        200, {"status": "accepted", "events": 2, "new": 0, "duplicates": 2})
    assert deliver(local, fixture_bytes("xaa/01_post.create.json"))[1]["duplicates"] == 1
    assert deliver(local, fixture_bytes("xaa/00_post.create.json"))[1]["duplicates"] == 1

    expected = [POST_KEY, LIKE_KEY, *TWEET_KEYS, FAVORITE_KEY]
    messages = consume(local, len(expected))
    keys = Counter(json.loads(m["Body"])["event_key"] for m in messages)
    assert keys == Counter(expected), f"every event exactly once, nothing else; got {keys}"
    for message in messages:
        body = json.loads(message["Body"])
        assert message["MessageAttributes"]["event_key"]["StringValue"] == body["event_key"]
        assert body["event"] is not None and body["stored"] is None
    assert not local.stored(BLOCK_KEY)

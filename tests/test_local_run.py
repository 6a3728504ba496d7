"""`xrelay local` for a newcomer (issue 14): ports checked before anything starts, data kept across
restarts (or not, with --fresh), one console line per request, and the same Outputs as on AWS."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx
import pytest

from conftest import ROOT
from helpers import child_env, free_ports, until_stopped
from xrelay.receiving.signature import SIGNATURE_HEADER, sign
from xrelay.tools.local.console import Console, _Router, describe
from xrelay.tools.local.local import DEV_CONSUMER_SECRET, api_event

STACK = "xrelay-newcomer"
DELIVERY = ROOT / "events" / "deliveries" / "xaa_post_create.json"
POST_KEY = "xaa:post.create:user_id=1111111111111111111:2080761390344937796"


def xrelay_local(state_dir: Path, port: int, aws_port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "xrelay.tools.cli.cli", "--stack-name", STACK, "local", "--port", str(port),
            "--aws-port", str(aws_port), "--no-schedules", "--state-dir", str(state_dir), *extra]


@contextmanager
def running(state_dir: Path, *extra: str):
    port, aws_port = free_ports(2)
    log = state_dir / f"console-{time.monotonic_ns()}.txt"
    with log.open("wb") as out:
        proc = subprocess.Popen(xrelay_local(state_dir, port, aws_port, *extra), cwd=ROOT, env=child_env(),
                                stdout=out, stderr=subprocess.STDOUT)
    url, aws = f"http://127.0.0.1:{port}/webhook", f"http://127.0.0.1:{aws_port}"
    with until_stopped(proc, url, log, 25):
        yield url, aws, log


def aws_client(aws: str, service: str):
    return boto3.client(service, endpoint_url=aws, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def cli(aws: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xrelay.tools.cli.cli", "--stack-name", STACK, *argv], cwd=ROOT,
                          env=child_env(AWS_ENDPOINT_URL=aws), capture_output=True, text=True, timeout=60)


def queued(aws: str) -> list[str]:
    """Bodies of the messages waiting in the events queue (received and left to reappear)."""
    sqs = aws_client(aws, "sqs")
    url = sqs.get_queue_url(QueueName=output(aws, "EventsQueueUrl").rsplit("/", 1)[-1])["QueueUrl"]
    bodies, deadline = [], time.monotonic() + 3
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                    WaitTimeSeconds=1).get("Messages", [])
        bodies += [m["Body"] for m in batch]
    return bodies


def output(aws: str, key: str) -> str:
    stack = aws_client(aws, "cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}[key]


def post(url: str) -> httpx.Response:
    body = DELIVERY.read_bytes()
    return httpx.post(url, content=body, headers={"content-type": "application/json",
                                                  SIGNATURE_HEADER: sign(DEV_CONSUMER_SECRET, body)}, timeout=10)


# --- ports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["port", "aws-port"])
def test_a_taken_port_stops_the_start_at_once_with_one_line_saying_how_to_choose_others(tmp_path, which):
    port, aws_port = free_ports(2)
    taken = port if which == "port" else aws_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        started = time.monotonic()
        result = subprocess.run(xrelay_local(tmp_path, port, aws_port), cwd=ROOT, env=child_env(),
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and time.monotonic() - started < 15
    assert result.stdout == "" and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"port {taken} " in line and f"--{which}" in line and "make run PORT=" in line and "AWS_PORT=" in line
    assert not (tmp_path / f"{STACK}.json").exists()


def test_the_same_port_twice_is_refused(tmp_path):
    (port,) = free_ports(1)
    result = subprocess.run(xrelay_local(tmp_path, port, port), cwd=ROOT, env=child_env(), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "both" in result.stderr


# --- restarts, the console ----------------------------------------------------------------------


@pytest.mark.e2e
def test_a_restart_keeps_events_desired_state_and_waiting_messages_without_publishing_again(tmp_path):
    desired = tmp_path / "desired.yaml"
    desired.write_text("webhook:\n  url: https://example.com/webhook\n")
    with running(tmp_path) as (url, aws, console):
        assert post(url).json()["new"] == 1
        assert cli(aws, "subscriptions", "apply", str(desired)).returncode == 0
        deadline = time.monotonic() + 10
        while "[stream] PublisherFunction" not in console.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    saved = tmp_path / f"{STACK}.json"
    assert "local data saved to" in console.read_text() and saved.is_file()
    assert oct(saved.stat().st_mode & 0o777) == "0o600"

    with running(tmp_path) as (url, aws, console):
        assert "restored from" in console.read_text()
        assert POST_KEY in cli(aws, "events", "list", "--user", "1111111111111111111").stdout
        assert post(url).json() == {"status": "accepted", "events": 1, "new": 0, "duplicates": 1}
        state = aws_client(aws, "dynamodb").scan(TableName=output(aws, "StateTableName"))["Items"]
        (kept,) = [i for i in state if i["pk"]["S"] == "desired"]
        assert str(desired) in json.dumps(kept)  # the desired state applied before the restart
        bodies = queued(aws)
    assert [json.loads(b)["event_key"] for b in bodies] == [POST_KEY]  # kept once, not published again

    with running(tmp_path, "--fresh") as (url, aws, console):
        assert "fresh (--fresh)" in console.read_text()
        assert POST_KEY not in cli(aws, "events", "list", "--user", "1111111111111111111").stdout


@pytest.mark.e2e
def test_the_console_has_one_line_per_request_and_the_json_logs_go_to_the_log_file(tmp_path):
    with running(tmp_path) as (url, aws, console):
        post(url)
        post(url)
        time.sleep(1)
        assert output(aws, "WebhookUrl") == url
        assert output(aws, "EventsTableName").startswith(STACK)
        assert output(aws, "DashboardUrl") == "not emulated locally"
    text = console.read_text()
    assert "[http] POST /webhook -> 200  1 new, 0 duplicate" in text
    assert "[http] POST /webhook -> 200  0 new, 1 duplicate" in text
    assert '"level"' not in text and "_aws" not in text and "Warning" not in text  # no JSON logs, EMF, warnings
    log = (tmp_path / f"{STACK}.log").read_text()
    assert '"level"' in log and "_aws" in log  # the functions' JSON logs and EMF metrics, all there


def test_the_invocation_line_says_method_path_status_counts_and_time():
    event = api_event("POST", "/webhook", "", {}, b"{}")
    result = {"statusCode": 200, "body": json.dumps({"status": "accepted", "events": 2, "new": 1, "duplicates": 1})}
    assert describe("IntakeFunction", event, result, None, 0.0123) == "[http] POST /webhook -> 200  1 new, 1 duplicate  12 ms"
    assert describe("PublisherFunction", {"Records": [{}, {}]}, {"batchItemFailures": [{"itemIdentifier": "1"}]},
                    None, 0.002) == "[stream] PublisherFunction 2 record(s) -> 1 failed  2 ms"
    assert describe("ReconcileFunction", {"detail-type": "Scheduled Event"}, {"ok": False, "error": "X said 503"},
                    None, 0.1) == "[schedule] ReconcileFunction -> failed: X said 503  100 ms"
    assert describe("CrcFunction", api_event("GET", "/webhook", "", {}, b""), None, RuntimeError("boom"),
                    0.001) == "[http] GET /webhook -> 500 (CrcFunction raised RuntimeError: boom)  1 ms"


def test_what_a_function_writes_goes_to_the_log_and_the_console_keeps_its_own_lines(tmp_path):
    console = Console(None)
    logged: list[str] = []
    console.log_write = logged.append  # type: ignore[method-assign]
    real = io.StringIO()
    router = _Router(console, real)
    router.write("banner\n")
    with console.invocation():
        router.write('{"level":"INFO"}\n')
    assert real.getvalue() == "banner\n" and logged == ['{"level":"INFO"}\n']
    console.echo = True
    with console.invocation():
        router.write("echoed\n")
    assert real.getvalue().endswith("echoed\n")


def test_the_local_stack_has_the_templates_outputs(stack):
    from xrelay.aws import client
    from xrelay.tools.cli.template import load

    outputs = client("cloudformation").describe_stacks(StackName="xrelay")["Stacks"][0]["Outputs"]
    keys = {o["OutputKey"] for o in outputs}
    expected = {k for k, o in load(ROOT / "template.yaml")["Outputs"].items() if "Condition" not in o}
    assert keys == expected
    values = {o["OutputKey"]: o["OutputValue"] for o in outputs}
    assert values["EventsTableName"] == stack.stack.physical("EventsTable")
    assert values["EventsQueueArn"].startswith("arn:aws:sqs:us-east-1:")


# --- what a consumer needs ------------------------------------------------------------------------


@pytest.mark.e2e
def test_the_documented_consumer_runs_against_the_local_stack_with_what_xrelay_env_prints(tmp_path):
    from test_command_schemas import validate

    with running(tmp_path) as (url, aws, console):
        assert post(url).json()["new"] == 1
        printed = cli(aws, "env", "--json")
        assert printed.returncode == 0, printed.stderr
        env = validate("env", printed.stdout)
        variables = env["variables"]
        assert env["target"] == "local" and variables["AWS_ENDPOINT_URL"] == aws
        assert variables["XRELAY_EVENTS_QUEUE_URL"].startswith(aws)  # the emulator's URL, usable as it is
        assert variables["XRELAY_WEBHOOK_URL"] == url
        exports = cli(aws, "env").stdout
        assert f"export AWS_ENDPOINT_URL={aws}" in exports and "export XRELAY_EVENTS_TABLE=" in exports

        # Only what `xrelay env` gives: no AWS variables inherited from this process.
        consumer_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | variables
        consumer_env["AWS_SHARED_CREDENTIALS_FILE"] = consumer_env["AWS_CONFIG_FILE"] = "/nonexistent"
        result = subprocess.run([sys.executable, str(ROOT / "examples" / "consumer.py"), "--once"], cwd=tmp_path,
                                env=consumer_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"post.create {POST_KEY}"]


def test_event_record_doc_points_to_the_consumer_example_and_redrive():
    doc = (ROOT / "docs" / "event-record.md").read_text()
    assert "examples/consumer.py" in doc and 'eval "$(.venv/bin/xrelay env)"' in doc
    assert "xrelay dlq redrive" in doc
    assert '"const": 1' not in doc


def test_env_for_a_deployed_stack_names_the_account_and_gives_no_credentials(stack, capsys, monkeypatch):
    from test_command_schemas import validate
    from xrelay.tools.cli.cli import main

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert main(["env", "--json"]) == 0
    env = validate("env", capsys.readouterr().out)
    assert (env["target"], env["account"], env["endpoint_url"]) == ("aws", "123456789012", None)
    variables = env["variables"]
    assert "AWS_ACCESS_KEY_ID" not in variables and "AWS_ENDPOINT_URL" not in variables
    assert variables["XRELAY_EVENTS_TABLE"] == stack.stack.physical("EventsTable")
    assert variables["XRELAY_EVENTS_QUEUE_URL"].endswith(stack.stack.physical("EventsQueue").rsplit("/", 1)[-1])

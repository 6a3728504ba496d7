"""The CLI's expected failures: one line, a documented exit code, never a traceback (issue 14).

Also which target a command talks to: said on stderr, and never the local emulator by surprise.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from conftest import ROOT, WEBHOOK_URL, apply_desired
from xrelay.tools.cli import target
from xrelay.tools.cli.cli import main
from xrelay.tools.cli.cli_errors import UNREACHABLE, USAGE, explain


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    return lines[-1]


@pytest.fixture
def no_stack_running(monkeypatch):
    """The local emulator's endpoint with nothing listening on it."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    from xrelay.aws import client

    client.cache_clear()
    yield endpoint
    client.cache_clear()


@pytest.mark.parametrize("argv", [
    ["events", "list", "--user", "1"],
    ["events", "get", "some-key"],
    ["status"],
    ["subscriptions", "status"],
    ["replay", "status"],
    ["dlq", "redrive"],
])
def test_aws_commands_without_a_running_stack_say_so_in_one_line(no_stack_running, argv, capsys):
    assert main(argv) == UNREACHABLE
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"xrelay: stack 'xrelay' on the local emulator at {no_stack_running} (AWS_ENDPOINT_URL)"
    line = one_line(err)
    assert line.startswith(f"xrelay: cannot reach the local emulator at {no_stack_running}") and "make run" in line


def test_send_without_a_running_stack_says_so(capsys):
    url = f"http://127.0.0.1:{free_port()}/webhook"
    assert main(["send", str(ROOT / "events/deliveries/xaa_post_create.json"), "--url", url]) == UNREACHABLE
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"xrelay: cannot connect to {url}") and "make run" in line


@pytest.mark.parametrize("argv", [
    ["send", "no/such/delivery.json"],
    ["subscriptions", "apply", "no/such/desired.yaml"],
    ["invoke", "CrcFunction", "--event", "no/such/event.json"],
])
def test_a_missing_file_is_one_line_and_exit_2(argv, capsys):
    assert main(argv) == USAGE
    assert "no/such/" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("argv", [
    ["local", "--port", "70000"],
    ["local", "--aws-port", "-1"],
    ["users", "login", "--port", "http"],
    ["events", "list", "--user", "12", "--limit", "0"],
    ["dlq", "redrive", "--max", "-2"],
    ["events", "tail", "--interval", "-1"],
    ["users", "login", "--timeout", "nan"],
])
def test_a_number_out_of_range_is_a_usage_line_before_anything_starts(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == USAGE
    err = capsys.readouterr().err
    assert f"argument {argv[-2]}:" in err and "Traceback" not in err


def test_invoke_of_an_unknown_function_lists_the_valid_names_before_touching_aws(no_stack_running, capsys):
    assert main(["invoke", "ReconcileFunctoin"]) == USAGE
    line = one_line(capsys.readouterr().err)
    assert "no function 'ReconcileFunctoin'" in line and "ReconcileFunction" in line and "IntakeFunction" in line


def test_an_unknown_stack_name_is_named(stack, capsys):
    assert main(["--stack-name", "nope", "events", "list", "--user", "1"]) == USAGE
    line = one_line(capsys.readouterr().err)
    assert line.startswith("xrelay: no stack 'nope'") and "--stack-name" in line


def test_invoke_exits_1_when_the_function_reports_failure(fake_x, stack, tmp_path, monkeypatch, capsys):
    apply_desired(tmp_path, f"webhook:\n  url: {WEBHOOK_URL}\n")
    monkeypatch.setenv("X_API_BASE_URL", f"http://127.0.0.1:{free_port()}")  # X unreachable
    assert main(["invoke", "ReconcileFunction"]) == 1
    assert '"ok": false' in capsys.readouterr().out


def test_invoke_exits_0_when_the_function_succeeds(stack, capsys):
    assert main(["invoke", "CrcFunction"]) == 0


def test_json_output_into_a_closed_pipe_is_quiet():
    # `xrelay schema | head -1`: the reader stops early; no BrokenPipeError, exit 0.
    result = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m xrelay.tools.cli.cli schema | head -1; echo \"rc=${{PIPESTATUS[0]}}\""],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["{", "rc=0"]
    assert result.stderr == ""


def test_a_wrapped_connection_failure_is_explained_by_its_cause():
    from botocore.exceptions import EndpointConnectionError

    from xrelay.storage.store import StoreUnavailable

    try:
        try:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:5000/")
        except EndpointConnectionError as exc:
            raise StoreUnavailable("GetItem failed") from exc
    except StoreUnavailable as exc:
        failure = explain(exc)
    assert failure is not None and failure.code == UNREACHABLE and "127.0.0.1:5000" in failure.message


def test_an_unexpected_error_is_not_explained():
    assert explain(ZeroDivisionError("bug")) is None


def test_top_level_help_has_no_literal_backticks_and_lists_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "Exit codes" in out


# --- which target --------------------------------------------------------------------------------

EMPTY_HOME = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config"}


def test_with_nothing_configured_the_target_is_the_local_emulator_and_says_why():
    chosen = target.choose(env=EMPTY_HOME)
    assert chosen.local and chosen.endpoint == target.LOCAL_AWS
    assert "no AWS credentials configured" in chosen.describe("xrelay")


def test_a_profile_or_credentials_file_means_aws_never_the_emulator(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIA...\n")
    for env in ({**EMPTY_HOME, "AWS_PROFILE": "prod"}, {**EMPTY_HOME, "AWS_SHARED_CREDENTIALS_FILE": str(credentials)},
                {**EMPTY_HOME, "AWS_ACCESS_KEY_ID": "AKIA..."}):
        chosen = target.choose(env=env)
        assert not chosen.local and chosen.endpoint is None, env
        assert "--local" in chosen.why


def test_local_flag_and_a_loopback_endpoint_choose_the_emulator_even_with_credentials():
    env = {**EMPTY_HOME, "AWS_PROFILE": "prod"}
    assert target.choose(force_local=True, env=env).local
    chosen = target.choose(env={**env, "AWS_ENDPOINT_URL": "http://localhost:5001"})
    assert chosen.local and chosen.endpoint == "http://localhost:5001"


def test_aws_commands_name_the_account_and_region_of_a_deployed_stack(stack, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert main(["events", "list", "--user", "1"]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("xrelay: stack 'xrelay' in AWS account 123456789012, region us-east-1")


def test_without_credentials_the_cli_says_it_uses_the_local_emulator(no_stack_running, monkeypatch, capsys):
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/nonexistent")
    monkeypatch.setattr(target, "LOCAL_AWS", no_stack_running)
    assert main(["events", "list", "--user", "1"]) == UNREACHABLE
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (f"xrelay: stack 'xrelay' on the local emulator at {no_stack_running} "
                     "(no AWS_ENDPOINT_URL and no AWS credentials configured)")

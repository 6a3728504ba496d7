"""The operator's commands (doctor, outputs, users authorize|login) and `send --scheme` go through the
CLI's one error mapping: their commonest mistakes are one line on stderr, a documented exit code, no
traceback, and never a token echoed back.
"""

from __future__ import annotations

import io

import pytest

from conftest import ROOT
from test_cli_errors import free_port, no_stack_running, one_line  # noqa: F401 - a fixture
from xrelay.tools.cli.cli import main
from xrelay.tools.cli.cli_errors import UNREACHABLE, USAGE

DELIVERY = str(ROOT / "events/deliveries/xaa_post_create.json")


@pytest.mark.parametrize("argv", [["doctor"], ["outputs"], ["outputs", "WebhookUrl"], ["users", "login", "1"]])
def test_without_a_running_stack_they_say_so_in_one_line(no_stack_running, argv, capsys):  # noqa: F811
    assert main(argv) == UNREACHABLE
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"xrelay: cannot reach the local emulator at {no_stack_running}") and "make run" in line


@pytest.mark.parametrize("argv", [["doctor"], ["outputs"], ["users", "login", "4337869213"]])
def test_an_unknown_stack_is_named_as_every_command_names_it(stack, argv, capsys):
    assert main(["--stack-name", "nope", *argv]) == USAGE
    line = one_line(capsys.readouterr().err)
    assert line.startswith("xrelay: no stack 'nope' there: choose it with --stack-name")


def test_an_unknown_output_lists_the_stacks_outputs(stack, capsys):
    assert main(["outputs", "WebhookURL"]) == USAGE
    line = one_line(capsys.readouterr().err)
    assert "has no output 'WebhookURL'" in line and "WebhookUrl" in line


@pytest.mark.parametrize("argv", [["users", "authorize", "@alice"], ["users", "login", "alice"]])
def test_a_user_name_instead_of_an_id_is_exit_2(argv, capsys):
    assert main(argv) == USAGE
    assert one_line(capsys.readouterr().err) == f"xrelay: user id must be 1-19 digits, got {argv[2]!r}"


def test_a_token_on_the_command_line_is_refused_and_not_echoed(capsys):
    assert main(["users", "authorize", "4337869213", "--access-token", "tok-SECRET-123"]) == USAGE
    err = capsys.readouterr().err
    assert "--access-token is no longer accepted" in one_line(err) and "tok-SECRET-123" not in err


def test_tokens_that_do_not_parse_are_named_not_echoed(stack, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"access_token": "tok-SECRET-123", '))
    assert main(["users", "authorize", "4337869213", "--stdin"]) == USAGE
    err = capsys.readouterr().err
    assert one_line(err) == "xrelay: the tokens look like JSON but do not parse" and "tok-SECRET-123" not in err


def test_login_before_the_desired_state_says_what_comes_first(stack, capsys):
    assert main(["users", "login", "4337869213"]) == USAGE
    assert "run `xrelay subscriptions apply FILE` first" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("scheme", ["oauth2", "both"])
def test_send_in_the_oauth2_scheme_without_a_client_secret_is_exit_2(monkeypatch, scheme, capsys):
    monkeypatch.delenv("X_CLIENT_SECRET", raising=False)
    url = f"http://127.0.0.1:{free_port()}/webhook"  # never reached: the mistake is found first
    assert main(["send", DELIVERY, "--scheme", scheme, "--url", url]) == USAGE
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"xrelay: --scheme {scheme} signs with X_CLIENT_SECRET, which is not set")


def test_send_with_an_unknown_scheme_is_argparses_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["send", DELIVERY, "--scheme", "oauth1"])
    assert exit_.value.code == USAGE and "invalid choice: 'oauth1'" in capsys.readouterr().err

"""`xrelay users authorize`: credentials to Secrets Manager, status to the state table, nothing echoed."""

import getpass
import io
import json
import sys
from datetime import UTC, datetime, timedelta

import pytest

from xrelay.aws import client
from xrelay.storage.store import StateStore
from xrelay.subscriptions.users import UserCredentialStore
from xrelay.tools.cli.cli import main


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def authorize(monkeypatch, argv: list[str], stdin: str = "") -> int:
    """``xrelay users authorize`` with ``stdin`` piped in."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["users", "authorize", *argv])


def test_oauth1_pair_from_a_hidden_prompt_is_stored_and_the_user_marked_authorised(stack, capsys, monkeypatch):
    answers = iter(["tok-1", "shh-1"])
    prompts = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or next(answers))
    monkeypatch.setattr(sys, "stdin", Tty())
    assert main(["users", "authorize", "4337869213"]) == 0
    assert prompts == ["OAuth 1.0a access token: ", "access token secret: "]
    stored = UserCredentialStore("xrelay").get("4337869213")
    assert (stored.credentials.kind, stored.credentials.access_token, stored.credentials.access_token_secret) == (
        "oauth1", "tok-1", "shh-1")
    assert StateStore(stack.stack.physical("StateTable")).users()["4337869213"]["status"] == "authorized"
    out = capsys.readouterr().out
    assert "tok-1" not in out and "shh-1" not in out and "xrelay/xrelay/users/4337869213" in out


def test_oauth2_tokens_piped_as_xs_token_answer_keep_their_refresh_token_and_expiry(stack, monkeypatch):
    answer = {"token_type": "bearer", "expires_in": 60, "access_token": "at-2", "refresh_token": "rt-2",
              "scope": "tweet.read users.read offline.access"}
    assert authorize(monkeypatch, ["2244994945"], json.dumps(answer)) == 0
    stored = UserCredentialStore("xrelay").get("2244994945")
    assert (stored.credentials.kind, stored.credentials.access_token, stored.refresh_token) == ("oauth2", "at-2", "rt-2")
    left = stored.expires_at - datetime.now(UTC)  # what the reconcile will compare to refresh in time
    assert timedelta(seconds=50) < left <= timedelta(seconds=60)


def test_oauth1_from_a_file_in_xs_form_encoding(stack, monkeypatch, tmp_path, capsys):
    path = tmp_path / "tokens"
    path.write_text("oauth_token=tok-3&oauth_token_secret=shh-3&user_id=4337869213&screen_name=alice\n")
    path.chmod(0o600)
    assert authorize(monkeypatch, ["4337869213", "--from-file", str(path)]) == 0
    assert UserCredentialStore("xrelay").get("4337869213").credentials.access_token_secret == "shh-3"
    assert "readable by other users" not in capsys.readouterr().err
    path.chmod(0o644)
    assert authorize(monkeypatch, ["4337869213", "--from-file", str(path)]) == 0
    assert "readable by other users" in capsys.readouterr().err


def test_authorising_again_replaces_the_credentials_and_clears_a_revocation(stack, monkeypatch):
    from conftest import fixture_bytes
    from helpers import post

    user = "1111111111111111111"
    post(stack, fixture_bytes("xaa/26_oauth.revoke.json"))  # X told us the user revoked the app
    assert StateStore(stack.stack.physical("StateTable")).users()[user]["status"] == "revoked"
    authorize(monkeypatch, [user, "--stdin"], '{"access_token": "old", "access_token_secret": "old-s"}')
    authorize(monkeypatch, [user, "--stdin"], '{"access_token": "new", "access_token_secret": "new-s"}')
    assert UserCredentialStore("xrelay").get(user).credentials.access_token == "new"
    assert StateStore(stack.stack.physical("StateTable")).users()[user]["status"] == "authorized"
    secret = json.loads(client("secretsmanager").get_secret_value(SecretId=f"xrelay/xrelay/users/{user}")["SecretString"])
    assert secret == {"kind": "oauth1", "access_token": "new", "access_token_secret": "new-s"}


@pytest.mark.parametrize("argv,stdin", [
    (["42"], ""),  # nothing given
    (["42"], '{"access_token_secret": "sec-SECRET"}'),  # half a pair
    (["42"], '{"access_token": "tok-SECRET", "token_type": "mac"}'),  # not a bearer token
    (["42"], '{"access_token": "tok-SECRET'),  # broken JSON
    (["not-a-user"], '{"access_token": "oa-SECRET"}'),  # not a user id
    (["42", "--access-token", "tok-SECRET", "--access-token-secret", "sec-SECRET"], ""),  # tokens in argv
    (["42", "--oauth2-token", "oa-SECRET"], ""),
])
def test_incomplete_unreadable_or_argv_tokens_are_refused_without_storing_or_echoing(stack, capsys, monkeypatch,
                                                                                     argv, stdin):
    assert authorize(monkeypatch, argv, stdin) == 2
    err = capsys.readouterr().err
    assert err.startswith("xrelay: ") and "SECRET" not in err
    if "--access-token" in argv or "--oauth2-token" in argv:
        assert "shell history" in err and "users login" in err
    assert StateStore(stack.stack.physical("StateTable")).users() == {}
    assert client("secretsmanager").list_secrets(Filters=[{"Key": "name", "Values": ["xrelay/xrelay/users/"]}])[
        "SecretList"] == []


def test_unknown_users_need_authorisation(stack):
    assert UserCredentialStore("xrelay").get("999") is None

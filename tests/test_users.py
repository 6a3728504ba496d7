"""`xrelay users authorize`: credentials to Secrets Manager, status to the state table, nothing echoed."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from xrelay.aws import client
from xrelay.cli import main
from xrelay.store import StateStore
from xrelay.users import UserCredentialStore


def test_oauth1_pair_is_stored_in_secrets_manager_and_the_user_marked_authorised(stack, capsys):
    assert main(["users", "authorize", "4337869213", "--access-token", "tok-1",
                 "--access-token-secret", "shh-1"]) == 0
    stored = UserCredentialStore("xrelay").get("4337869213")
    assert (stored.credentials.kind, stored.credentials.access_token, stored.credentials.access_token_secret) == (
        "oauth1", "tok-1", "shh-1")
    assert StateStore(stack.stack.physical("StateTable")).users()["4337869213"]["status"] == "authorized"
    out = capsys.readouterr().out
    assert "tok-1" not in out and "shh-1" not in out and "xrelay/xrelay/users/4337869213" in out


def test_oauth2_tokens_keep_their_refresh_token_and_expiry(stack):
    assert main(["users", "authorize", "2244994945", "--oauth2-token", "at-2", "--refresh-token", "rt-2",
                 "--expires-in", "60"]) == 0
    stored = UserCredentialStore("xrelay").get("2244994945")
    assert (stored.credentials.kind, stored.refresh_token) == ("oauth2", "rt-2")
    left = stored.expires_at - datetime.now(UTC)  # what the reconcile will compare to refresh in time
    assert timedelta(seconds=50) < left <= timedelta(seconds=60)


def test_authorising_again_replaces_the_credentials_and_clears_a_revocation(stack, capsys):
    from conftest import fixture_bytes
    from helpers import post

    user = "1111111111111111111"
    post(stack, fixture_bytes("xaa/26_oauth.revoke.json"))  # X told us the user revoked the app
    assert StateStore(stack.stack.physical("StateTable")).users()[user]["status"] == "revoked"
    main(["users", "authorize", user, "--access-token", "old", "--access-token-secret", "old-s"])
    main(["users", "authorize", user, "--access-token", "new", "--access-token-secret", "new-s"])
    assert UserCredentialStore("xrelay").get(user).credentials.access_token == "new"
    assert StateStore(stack.stack.physical("StateTable")).users()[user]["status"] == "authorized"
    secret = json.loads(client("secretsmanager").get_secret_value(SecretId=f"xrelay/xrelay/users/{user}")["SecretString"])
    assert secret == {"kind": "oauth1", "access_token": "new", "access_token_secret": "new-s"}


@pytest.mark.parametrize("argv", [
    ["users", "authorize", "42"],  # no credentials
    ["users", "authorize", "42", "--access-token", "tok-SECRET"],  # half a pair
    ["users", "authorize", "42", "--access-token", "tok-SECRET", "--access-token-secret", "sec-SECRET",
     "--oauth2-token", "oa-SECRET"],  # both kinds
    ["users", "authorize", "not-a-user", "--oauth2-token", "oa-SECRET"],  # not a user id
])
def test_incomplete_or_ambiguous_credentials_are_refused_without_storing_anything(stack, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("xrelay: ") and "SECRET" not in err
    assert StateStore(stack.stack.physical("StateTable")).users() == {}
    assert client("secretsmanager").list_secrets(Filters=[{"Key": "name", "Values": ["xrelay/xrelay/users/"]}])[
        "SecretList"] == []


def test_unknown_users_need_authorisation(stack):
    assert UserCredentialStore("xrelay").get("999") is None

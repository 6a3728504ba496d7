"""`xrelay local` restarted with other X_* variables: the environment's app secret wins over the snapshot.

What a user expects: the variables given at this start are what the CRC answers with and deliveries
are checked against. Users' authorisations (their own secrets) are data and come back.
"""

from __future__ import annotations

import json

import pytest

from helpers import crc, post
from xrelay.aws import client
from xrelay.receiving.signature import OAUTH2_HEADER, sign
from xrelay.tools.cli.cli import _not_app_secret
from xrelay.tools.local import local_state
from xrelay.tools.local.local import app_secret_name

DELIVERY = b'{"for_user_id": "0", "tweet_create_events": []}'


@pytest.fixture
def first_run(monkeypatch):
    monkeypatch.setenv("X_CLIENT_SECRET", "the-old-client-secret")
    monkeypatch.setenv("X_PREVIOUS_CLIENT_SECRET", "an-older-client-secret")


def app_secret(stack) -> dict[str, str]:
    return json.loads(client("secretsmanager").get_secret_value(SecretId=app_secret_name("xrelay"))["SecretString"])


def restart(stack, monkeypatch, snapshot: local_state.Snapshot, **env: str | None) -> None:
    """What the next `xrelay local` does: seed the app secret from the (new) environment, then restore."""
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    stack.provision()
    local_state.restore(stack.stack, stack.template, snapshot, keep_secret=_not_app_secret(stack))
    from aws_lambda_powertools.utilities import parameters

    stack._modules.clear()  # a new process: no warm function keeps the old secret cached
    parameters.clear_caches()


def test_a_restart_with_a_new_client_secret_answers_and_verifies_with_it(first_run, stack, monkeypatch):
    client("secretsmanager").create_secret(Name="xrelay/users/4337869213", SecretString='{"token": "t"}')
    snapshot = local_state.take(stack.stack, stack.template, keep_secret=_not_app_secret(stack))
    assert app_secret_name("xrelay") not in snapshot.secrets and "xrelay/users/4337869213" in snapshot.secrets

    restart(stack, monkeypatch, snapshot, X_CLIENT_SECRET="the-new-client-secret", X_PREVIOUS_CLIENT_SECRET=None)
    secret = app_secret(stack)
    assert secret["client_secret"] == "the-new-client-secret" and "previous_client_secret" not in secret
    assert crc(stack, "crc_token=abc") == (200, {"response_token": sign("the-new-client-secret", b"abc")})
    assert post(stack, DELIVERY, secret=None, headers={OAUTH2_HEADER: sign("an-older-client-secret", DELIVERY)})[0] \
        == 403  # the rotation the user ended is over
    client("secretsmanager").get_secret_value(SecretId="xrelay/users/4337869213")  # users' secrets came back


def test_a_snapshot_that_holds_the_app_secret_does_not_override_the_environment(first_run, stack, monkeypatch):
    # e.g. one saved before the app secret was left out, or copied from a colleague's machine
    snapshot = local_state.take(stack.stack, stack.template)
    assert app_secret(stack)["client_secret"] == json.loads(snapshot.secrets[app_secret_name("xrelay")])[
        "client_secret"] == "the-old-client-secret"

    restart(stack, monkeypatch, snapshot, X_CLIENT_SECRET=None, X_PREVIOUS_CLIENT_SECRET=None)
    assert "client_secret" not in app_secret(stack)  # the user dropped OAuth 2.0: the CRC is the consumer secret's
    assert crc(stack, "crc_token=abc")[1] == {"response_token": sign(app_secret(stack)["consumer_secret"], b"abc")}

"""The X app secret in Secrets Manager (moto): the reconcile's app credentials and the CRC's consumer secret."""

from __future__ import annotations

import dataclasses
import json

import pytest
from moto import mock_aws

from xrelay.aws import client
from xrelay.credentials import SecretUnavailable, load_app_credentials, load_signing_secrets
from xrelay.subscriptions import xapi

COMPLETE = {
    "consumer_key": "ck-value-1234",
    "consumer_secret": "cs-value-5678",
    "previous_consumer_secret": "cs-old-value-0000",
    "bearer_token": "bt-value-9012",
}
VALUES = (*COMPLETE.values(), "cid-value-3456", "csec-value-7890")


@pytest.fixture
def secret():
    """``secret(value)`` stores ``value`` (a dict as JSON) in a fresh secret and returns its ARN."""
    from aws_lambda_powertools.utilities.parameters import clear_caches

    with mock_aws():
        client.cache_clear()
        clear_caches()
        made = []

        def make(value: dict | str) -> str:
            text = value if isinstance(value, str) else json.dumps(value)
            arn = client("secretsmanager").create_secret(Name=f"xrelay/test/x-app-{len(made)}",
                                                         SecretString=text)["ARN"]
            made.append(arn)
            return arn

        yield make
        clear_caches()
    client.cache_clear()


def refused(arn: str) -> str:
    with pytest.raises(SecretUnavailable) as caught:
        load_app_credentials(arn)
    message = str(caught.value)
    assert not any(value in message for value in VALUES), "a secret value leaked into the message"
    return message


def test_a_complete_json_secret_gives_the_app_credentials(secret):
    app = load_app_credentials(secret(COMPLETE))
    assert isinstance(app, xapi.AppCredentials)
    assert (app.consumer_key, app.consumer_secret, app.bearer_token) == (
        "ck-value-1234", "cs-value-5678", "bt-value-9012")
    assert not any(value in repr(app) for value in VALUES)


def test_the_same_secret_still_serves_the_crc_and_intake(secret):
    signing = load_signing_secrets(secret(COMPLETE))
    assert signing.consumer_secrets == ["cs-value-5678", "cs-old-value-0000"]


def test_client_id_and_secret_are_passed_only_when_the_secret_has_them(secret, monkeypatch):
    calls = []
    monkeypatch.setattr(xapi, "AppCredentials", lambda *args, **kwargs: calls.append((args, kwargs)))
    load_app_credentials(secret(COMPLETE))
    load_app_credentials(secret({**COMPLETE, "client_id": "cid-value-3456", "client_secret": "csec-value-7890"}))
    load_app_credentials(secret({**COMPLETE, "client_id": "cid-value-3456", "client_secret": ""}))
    positional = ("ck-value-1234", "cs-value-5678", "bt-value-9012")
    assert calls == [
        (positional, {}),
        (positional, {"client_id": "cid-value-3456", "client_secret": "csec-value-7890"}),
        (positional, {"client_id": "cid-value-3456"}),  # a public OAuth 2.0 client has no secret
    ]


def test_oauth2_client_credentials_reach_app_credentials(secret):
    if "client_id" not in {f.name for f in dataclasses.fields(xapi.AppCredentials)}:
        pytest.skip("AppCredentials has no OAuth 2.0 client fields yet")
    app = load_app_credentials(secret({**COMPLETE, "client_id": "cid-value-3456", "client_secret": "csec-value-7890"}))
    assert (app.client_id, app.client_secret) == ("cid-value-3456", "csec-value-7890")


def test_a_bare_string_secret_is_refused_with_what_is_needed(secret):
    message = refused(secret("cs-value-5678"))
    assert "bare string" in message
    assert all(name in message for name in ("consumer_key", "consumer_secret", "bearer_token"))
    # ...while the CRC and intake keep accepting it
    assert load_signing_secrets(secret("cs-value-5678")).consumer_secrets == ["cs-value-5678"]


@pytest.mark.parametrize("missing", [["consumer_key"], ["bearer_token"], ["consumer_key", "bearer_token"],
                                     ["consumer_key", "consumer_secret", "bearer_token"]])
def test_missing_fields_are_named(secret, missing):
    value = {k: v for k, v in COMPLETE.items() if k not in missing}
    message = refused(secret(value))
    assert all(repr(name) in message for name in missing)
    assert not any(repr(name) in message for name in COMPLETE if name not in missing)


@pytest.mark.parametrize("bad", ["", None, 42])
def test_empty_or_non_string_fields_count_as_missing(secret, bad):
    assert "'bearer_token'" in refused(secret({**COMPLETE, "bearer_token": bad}))


@pytest.mark.parametrize("text,reason", [('{"consumer_key": "ck-value-1234", ', "does not parse"),
                                         ("  ", "bare string")])
def test_unparseable_or_empty_secrets_are_refused(secret, text, reason):
    assert reason in refused(secret(text))


def test_an_unreadable_or_unconfigured_secret_is_refused(secret):
    arn = secret(COMPLETE)
    client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    assert "could not read the X app secret (" in refused(arn)
    assert "X_APP_SECRET_ARN is not configured" in refused("")


def test_the_value_is_cached_for_max_age(secret):
    arn = secret(COMPLETE)
    assert load_app_credentials(arn, max_age=300).bearer_token == "bt-value-9012"
    client("secretsmanager").put_secret_value(SecretId=arn, SecretString=json.dumps(
        {**COMPLETE, "bearer_token": "bt-rotated"}))
    assert load_app_credentials(arn, max_age=300).bearer_token == "bt-value-9012"  # warm: no read
    from aws_lambda_powertools.utilities.parameters import clear_caches

    clear_caches()  # what max_age seconds do
    assert load_app_credentials(arn, max_age=300).bearer_token == "bt-rotated"


def test_the_crc_does_not_import_httpx():
    """The CRC imports xrelay.credentials; only load_app_credentials (the reconcile) may pull xapi in."""
    import subprocess
    import sys

    code = ("import sys; import xrelay.credentials, xrelay.config; "
            "print(sorted(m for m in ('httpx', 'xrelay.subscriptions.xapi', 'oauthlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ------------------------------------------------------------------ the signing secrets (CRC and intake)

from xrelay.credentials import SigningSecrets, crc_secret_advice  # noqa: E402


def test_signing_secrets_hold_both_schemes_and_their_rotation():
    parsed = SigningSecrets.parse(json.dumps({"consumer_secret": "cs", "previous_consumer_secret": "cs-old",
                                              "client_secret": "ocs", "previous_client_secret": "ocs-old"}))
    assert (parsed.consumer_secrets, parsed.client_secrets) == (["cs", "cs-old"], ["ocs", "ocs-old"])
    assert repr(parsed) == ("SigningSecrets(consumer_secret=<redacted>, previous_consumer_secret=<redacted>, "
                            "client_secret=<redacted>, previous_client_secret=<redacted>)")


@pytest.mark.parametrize("doc,consumer,client_", [
    ({"client_secret": "ocs"}, [], ["ocs"]),  # an app secret for OAuth 2.0 signatures only
    ({"consumer_secret": "cs", "previous_client_secret": "ocs-old"}, ["cs"], []),  # previous alone: ignored
    ({"consumer_secret": "cs", "client_secret": "", "previous_consumer_secret": 7}, ["cs"], []),
])
def test_signing_secrets_take_only_non_empty_strings(doc, consumer, client_):
    parsed = SigningSecrets.parse(json.dumps(doc))
    assert (parsed.consumer_secrets, parsed.client_secrets) == (consumer, client_)


@pytest.mark.parametrize("text,reason", [('{"bearer_token": "bt-value-9012"}', "neither"), ("{oops", "does not parse"),
                                         ("  ", "empty")])
def test_signing_secrets_without_any_signing_secret_are_refused(text, reason):
    with pytest.raises(SecretUnavailable, match=reason) as refused:
        SigningSecrets.parse(text)
    assert "bt-value-9012" not in str(refused.value)


@pytest.mark.parametrize("fields,choice,expected", [
    ({"consumer": "cs", "client": "ocs"}, "auto", ("client_secret", "ocs")),
    ({"consumer": "cs"}, "auto", ("consumer_secret", "cs")),
    ({"consumer": "cs", "client": "ocs"}, "consumer_secret", ("consumer_secret", "cs")),
    ({"consumer": "cs", "client": "ocs"}, "client_secret", ("client_secret", "ocs")),
])
def test_the_crc_secret_is_the_client_secret_when_there_is_one_unless_forced(fields, choice, expected):
    assert SigningSecrets(**fields).crc_secret(choice) == expected


@pytest.mark.parametrize("fields,choice,missing", [({"consumer": "cs"}, "client_secret", "client_secret"),
                                                   ({"client": "ocs"}, "consumer_secret", "consumer_secret")])
def test_a_crc_forced_to_a_missing_secret_names_it(fields, choice, missing):
    with pytest.raises(SecretUnavailable, match=f"holds no {missing}$"):
        SigningSecrets(**fields).crc_secret(choice)


@pytest.mark.parametrize("choice,has_client,says", [
    ("auto", False, ["answers with consumer_secret", "holds no client_secret", "add client_secret"]),
    ("auto", True, ["answers with client_secret", "CrcSigningSecret=consumer_secret"]),
    ("consumer_secret", True, ["answers with consumer_secret", "CrcSigningSecret=auto or client_secret"]),
    ("client_secret", False, ["answers with client_secret", "CrcSigningSecret=consumer_secret"]),
])
def test_the_crc_advice_names_the_secret_used_and_how_to_switch(choice, has_client, says):
    advice = crc_secret_advice(choice, has_client)
    assert all(part in advice for part in says), advice

"""X's two signing schemes through the CRC and intake handlers (the template's environment, moto).

X keys the CRC with the app's OAuth 2.0 client secret when the app has one, and signs deliveries
with ``x-twitter-webhooks-signature-oauth2`` (client secret) or the legacy
``x-twitter-webhooks-signature`` (consumer secret). README "X's two signing schemes".
"""

from __future__ import annotations

import json

import pytest

from conftest import fixture_bytes
from helpers import crc, emf, post, state_items, stored_keys, values
from xrelay.aws import client
from xrelay.receiving.signature import LEGACY_HEADER, OAUTH2_HEADER, sign
from xrelay.tools.local.local import DEV_CONSUMER_SECRET

CLIENT = "client-secret-current"
OLD_CLIENT = "client-secret-previous"
CONSUMER = DEV_CONSUMER_SECRET
OLD_CONSUMER = "consumer-secret-previous"
BODY = fixture_bytes("xaa/01_post.create.json")
KEY = "xaa:post.create:user_id=1111111111111111111:2080761390344937796"


def set_app_secret(stack, **fields: str) -> None:
    """Replace the stack's X app secret (what an operator does in Secrets Manager), seen at once."""
    from aws_lambda_powertools.utilities.parameters import clear_caches

    value = {"consumer_key": "ck", "bearer_token": "bt", **fields}
    client("secretsmanager").put_secret_value(SecretId=stack.environment("CrcFunction")["X_APP_SECRET_ARN"],
                                              SecretString=json.dumps(value))
    clear_caches()  # what SecretCacheSeconds does for a warm function


def deliver(stack, *, oauth2: str | None = None, legacy: str | None = None, body: bytes = BODY):
    """POST ``body`` signed in the OAuth 2.0 and/or legacy header with the given secrets."""
    headers = {}
    if oauth2 is not None:
        headers[OAUTH2_HEADER] = sign(oauth2, body)
    if legacy is not None:
        headers[LEGACY_HEADER] = sign(legacy, body)
    return post(stack, body, secret=None, headers=headers)


# ------------------------------------------------------------------------------------------- CRC


def test_crc_answers_with_the_client_secret_when_the_app_secret_holds_one(stack):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    assert crc(stack, "crc_token=foo") == (200, {"response_token": sign(CLIENT, b"foo")})


def test_crc_answers_with_the_consumer_secret_for_an_oauth1_only_app(stack):
    set_app_secret(stack, consumer_secret=CONSUMER)
    assert crc(stack, "crc_token=foo") == (200, {"response_token": sign(CONSUMER, b"foo")})


def test_crc_answers_with_the_current_client_secret_during_its_rotation(stack):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT, previous_client_secret=OLD_CLIENT)
    assert crc(stack, "crc_token=foo")[1] == {"response_token": sign(CLIENT, b"foo")}


@pytest.mark.parametrize("forced,expected", [("consumer_secret", CONSUMER), ("client_secret", CLIENT),
                                             ("auto", CLIENT)])
def test_the_crc_signing_secret_parameter_forces_either(stack, monkeypatch, forced, expected):
    # CRC_SIGNING_SECRET replaces the CrcSigningSecret Parameter locally, as X_API_BASE_URL does XApiBaseUrl.
    monkeypatch.setenv("CRC_SIGNING_SECRET", forced)
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    assert stack.environment("CrcFunction")["CRC_SIGNING_SECRET"] == forced
    assert crc(stack, "crc_token=foo") == (200, {"response_token": sign(expected, b"foo")})


def test_the_parameter_defaults_to_auto_and_reaches_the_crc_and_the_reconcile():
    from conftest import ROOT
    from xrelay.tools.cli import template as tpl

    template = tpl.load(ROOT / "template.yaml")
    spec = template["Parameters"]["CrcSigningSecret"]
    assert (spec["Default"], spec["AllowedValues"]) == ("auto", ["auto", "client_secret", "consumer_secret"])
    for function in ("CrcFunction", "ReconcileFunction"):
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["CRC_SIGNING_SECRET"] == {"Ref": "CrcSigningSecret"}


def test_a_crc_forced_to_a_missing_secret_is_503_naming_it(stack, monkeypatch, capsys, caplog):
    monkeypatch.setenv("CRC_SIGNING_SECRET", "client_secret")
    set_app_secret(stack, consumer_secret=CONSUMER)
    status, body = crc(stack, "crc_token=foo")
    assert status == 503 and "response_token" not in body
    assert values(emf(capsys), "SecretFailures", service="crc") == [1.0]
    assert any("holds no client_secret" in str(getattr(r, "reason", r.getMessage())) for r in caplog.records)
    assert CONSUMER not in caplog.text


def test_a_wrong_crc_signing_secret_value_stops_the_function_at_start():
    from xrelay.config import Settings

    with pytest.raises(ValueError, match="CRC_SIGNING_SECRET"):
        Settings.from_env({"CRC_SIGNING_SECRET": "bearer_token"})


# ---------------------------------------------------------------------------------------- intake


def test_oauth2_only_is_accepted_with_the_client_secret(stack, capsys):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    assert deliver(stack, oauth2=CLIENT)[0] == 200
    assert stored_keys(stack) == [KEY]
    assert values(emf(capsys), "DeliveriesSignedOAuth2", service="intake", Stage="dev") == [1.0]


def test_legacy_only_is_accepted_with_the_consumer_secret(stack, capsys):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    assert deliver(stack, legacy=CONSUMER)[0] == 200
    assert values(emf(capsys), "DeliveriesSignedLegacy", service="intake") == [1.0]


def test_both_headers_right_is_counted_as_oauth2(stack, capsys):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    assert deliver(stack, oauth2=CLIENT, legacy=CONSUMER)[0] == 200
    blobs = emf(capsys)
    assert values(blobs, "DeliveriesSignedOAuth2") == [1.0]
    assert values(blobs, "DeliveriesSignedLegacy") == []


@pytest.mark.parametrize("oauth2,legacy,status", [
    ("wrong", None, 403),            # OAuth 2.0 only, wrong
    ("wrong", CONSUMER, 403),        # a right legacy signature does not rescue a wrong OAuth 2.0 one: no downgrade
    (None, "wrong", 403),            # legacy only, wrong
    (CONSUMER, None, 403),           # the consumer secret in the OAuth 2.0 header
    (None, CLIENT, 403),             # the client secret in the legacy header
])
def test_a_wrong_signature_in_either_scheme_is_refused_and_stores_nothing(stack, capsys, oauth2, legacy, status):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    code, body = deliver(stack, oauth2=oauth2, legacy=legacy)
    assert code == status and "does not match" in body["error"]
    assert (OAUTH2_HEADER if oauth2 is not None else LEGACY_HEADER) in body["error"]
    assert stored_keys(stack) == [] and state_items(stack, "signing") == []
    blobs = emf(capsys)
    assert values(blobs, "SignaturesRefused", service="intake") == [1.0]
    assert values(blobs, "DeliveriesSignedOAuth2") + values(blobs, "DeliveriesSignedLegacy") == []


def test_a_malformed_oauth2_header_is_refused_even_beside_a_right_legacy_one(stack):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    code, body = post(stack, BODY, secret=None, headers={OAUTH2_HEADER: "sha256=not base64!!",
                                                          LEGACY_HEADER: sign(CONSUMER, BODY)})
    assert code == 401 and OAUTH2_HEADER in body["error"] and stored_keys(stack) == []


def test_oauth2_signed_delivery_without_a_client_secret_configured_is_401_naming_it(stack):
    set_app_secret(stack, consumer_secret=CONSUMER)
    code, body = deliver(stack, oauth2=CLIENT)
    assert code == 401 and "client_secret" in body["error"] and OAUTH2_HEADER in body["error"]
    assert CLIENT not in json.dumps(body) and CONSUMER not in json.dumps(body)
    assert stored_keys(stack) == []


def test_legacy_signed_delivery_without_a_consumer_secret_configured_is_401_naming_it(stack):
    set_app_secret(stack, client_secret=CLIENT)
    code, body = deliver(stack, legacy=CONSUMER)
    assert code == 401 and "consumer_secret" in body["error"] and stored_keys(stack) == []


def test_both_headers_without_a_client_secret_are_checked_on_the_legacy_one(stack, caplog):
    """The OAuth 2.0 header cannot be checked without a client secret; the legacy one decides, and it is said."""
    set_app_secret(stack, consumer_secret=CONSUMER)
    assert deliver(stack, oauth2=CLIENT, legacy=CONSUMER)[0] == 200
    assert "holds no client_secret" in caplog.text
    (item,) = state_items(stack, "signing")
    assert (item["sk"]["S"], item["unchecked_header"]["S"]) == ("consumer_secret", OAUTH2_HEADER)
    assert deliver(stack, oauth2=CLIENT, legacy="wrong", body=fixture_bytes("aaa/favorite.json"))[0] == 403


def test_no_signature_header_at_all_is_401_naming_both(stack):
    code, body = post(stack, BODY, secret=None)
    assert code == 401 and OAUTH2_HEADER in body["error"] and LEGACY_HEADER in body["error"]


@pytest.mark.parametrize("scheme", ["oauth2", "legacy"])
def test_rotation_accepts_the_previous_secret_of_each_scheme(stack, caplog, scheme):
    set_app_secret(stack, consumer_secret=CONSUMER, previous_consumer_secret=OLD_CONSUMER,
                   client_secret=CLIENT, previous_client_secret=OLD_CLIENT)
    old = {"oauth2": {"oauth2": OLD_CLIENT}, "legacy": {"legacy": OLD_CONSUMER}}[scheme]
    assert deliver(stack, **old)[0] == 200
    field = {"oauth2": "previous_client_secret", "legacy": "previous_consumer_secret"}[scheme]
    assert f"delivery signed with the {field} (rotation in progress)" in caplog.text
    assert [i["sk"]["S"] for i in state_items(stack, "signing")] == [field]
    # a secret older than the previous one is refused
    older = {"oauth2": {"oauth2": "older"}, "legacy": {"legacy": "older"}}[scheme]
    assert deliver(stack, body=fixture_bytes("aaa/favorite.json"), **older)[0] == 403


def test_the_previous_client_secret_alone_counts_for_nothing(stack):
    """A previous value is kept only beside a current one: alone, the scheme is not configured."""
    set_app_secret(stack, consumer_secret=CONSUMER, previous_client_secret=OLD_CLIENT)
    assert deliver(stack, oauth2=OLD_CLIENT)[0] == 401


# ------------------------------------------------------- what `xrelay status` reads, and what it costs


def test_the_signing_record_costs_one_put_per_secret_per_sandbox_not_one_per_delivery(stack):
    import botocore.client

    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    writes = []
    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        if operation == "PutItem" and params.get("Item", {}).get("pk", {}).get("S") == "signing":
            writes.append(params["Item"]["sk"]["S"])
        return original(self, operation, params)

    botocore.client.BaseClient._make_api_call = counting
    try:
        bodies = [fixture_bytes(name) for name in ("xaa/01_post.create.json", "xaa/07_like.create.json",
                                                   "aaa/favorite.json", "aaa/tweet_create_two.json")]
        for body in bodies * 3:  # new deliveries and redeliveries, both schemes
            assert deliver(stack, oauth2=CLIENT, body=body)[0] == 200
            assert deliver(stack, legacy=CONSUMER, body=body)[0] == 200
    finally:
        botocore.client.BaseClient._make_api_call = original
    assert sorted(writes) == ["client_secret", "consumer_secret"]  # 24 deliveries, 2 writes
    recorded = {i["sk"]["S"]: i["scheme"]["S"] for i in state_items(stack, "signing")}
    assert recorded == {"client_secret": "oauth2", "consumer_secret": "legacy"}


def test_a_failing_signing_record_never_fails_the_delivery(stack, faults):
    from helpers import connection_error

    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    rule = faults.inject("dynamodb", "PutItem", connection_error,
                         when=lambda params: params.get("Item", {}).get("pk", {}).get("S") == "signing")
    assert deliver(stack, oauth2=CLIENT)[1]["new"] == 1
    assert rule.fired == 1 and stored_keys(stack) == [KEY]


# ----------------------------------------------------------- the reconcile's report of a failed CRC


def _reconcile(stack) -> dict:
    from conftest import ROOT

    return stack.invoke("ReconcileFunction", json.loads((ROOT / "events" / "ReconcileFunction.json").read_text()))


def test_a_failed_crc_at_registration_says_which_secret_answered_and_how_to_switch(wired, fake_x, caplog):
    fake_x.crc_passes = False  # X's CRC fails: the app has OAuth 2.0, but the app secret holds no client_secret
    outcome = _reconcile(wired)
    (failed,) = [line for line in outcome["failed"] if "CrcValidationFailed" in line]
    assert "the CRC answers with consumer_secret (CrcSigningSecret=auto: the app secret holds no client_secret)" \
        in failed and "add client_secret" in failed
    assert "X's CRC failed: the CRC answers with consumer_secret" in caplog.text
    assert fake_x.consumer_secret not in json.dumps(outcome) and fake_x.consumer_secret not in caplog.text


@pytest.mark.parametrize("forced,says", [("auto", "answers with client_secret (CrcSigningSecret=auto: the app "
                                                  "secret holds a client_secret)"),
                                         ("consumer_secret", "answers with consumer_secret (CrcSigningSecret="
                                                             "consumer_secret)")])
def test_a_re_validation_that_fails_says_which_secret_answered(wired, fake_x, monkeypatch, forced, says):
    monkeypatch.setenv("CRC_SIGNING_SECRET", forced)
    set_app_secret(wired, consumer_key=fake_x.consumer_key, consumer_secret=fake_x.consumer_secret,
                   bearer_token=fake_x.bearer_token, client_secret="ocs-configured")
    from conftest import WEBHOOK_URL

    fake_x.add_webhook(WEBHOOK_URL, valid=False)
    fake_x.crc_passes, fake_x.crc_failure_answer = False, "valid_false"
    outcome = _reconcile(wired)
    (failed,) = [line for line in outcome["failed"] if "re-validation failed" in line]
    assert says in failed and outcome["webhook_valid"] is False
    assert "ocs-configured" not in json.dumps(outcome)


# ------------------------------------------------------------------------------ `xrelay status`


def _status(capsys):
    from test_command_schemas import validate
    from xrelay.tools.cli.cli import main
    from xrelay.tools.operate.status import StatusReport

    capsys.readouterr()
    main(["status", "--json"])
    out = capsys.readouterr().out
    validate("status", out)
    report = StatusReport.model_validate_json(out)
    capsys.readouterr()
    main(["status"])
    return report, capsys.readouterr().out


def test_status_shows_which_secret_verified_the_last_deliveries(stack, capsys):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT)
    report, _ = _status(capsys)
    assert (report.signing.crc_signing_secret, report.signing.last_signed) == ("auto", [])

    assert deliver(stack, legacy=CONSUMER, body=fixture_bytes("aaa/favorite.json"))[0] == 200
    assert deliver(stack, oauth2=CLIENT)[0] == 200
    report, text = _status(capsys)
    assert [(s.secret, s.scheme) for s in report.signing.last_signed] == [("client_secret", "oauth2"),
                                                                         ("consumer_secret", "legacy")]
    assert "CRC answers with auto; deliveries last verified with client_secret (oauth2)" in text
    assert not [w for w in report.warnings if w.check == "signing"]


def test_status_warns_of_an_unfinished_rotation_and_of_an_oauth2_header_it_cannot_check(stack, capsys):
    set_app_secret(stack, consumer_secret=CONSUMER, client_secret=CLIENT, previous_client_secret=OLD_CLIENT)
    assert deliver(stack, oauth2=OLD_CLIENT)[0] == 200
    set_app_secret(stack, consumer_secret=CONSUMER)
    assert deliver(stack, oauth2=CLIENT, legacy=CONSUMER, body=fixture_bytes("aaa/favorite.json"))[0] == 200
    report, text = _status(capsys)
    warnings = [w.message for w in report.warnings if w.check == "signing"]
    assert len(warnings) == 2, warnings
    assert any("previous_client_secret" in w and "rotation is not finished" in w for w in warnings)
    assert any(OAUTH2_HEADER in w and "holds no client_secret" in w for w in warnings)
    assert "[signing]" in text


def test_the_crc_path_stays_light_with_both_schemes():
    """Importing the CRC handler and answering with either secret pulls in neither pydantic, boto3 nor httpx."""
    import subprocess
    import sys

    from conftest import ROOT

    code = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("crc_app", "functions/crc/app.py")
app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
from xrelay.credentials import SigningSecrets
from xrelay.receiving.webhook import answer_crc
for choice in ("auto", "client_secret", "consumer_secret"):
    assert answer_crc("foo", lambda: SigningSecrets(consumer="c", client="o"), app.logger, choice).status == 200
print(sorted(m for m in ("pydantic", "boto3", "httpx", "xrelay.subscriptions.xapi", "xrelay.events.models") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={"PATH": "", "CRC_SIGNING_SECRET": "auto", "POWERTOOLS_METRICS_NAMESPACE": "xrelay"})
    assert done.stdout.strip().splitlines()[-1] == "[]"

"""The roles grant what the functions actually call, with X's two signing schemes in use.

The roles were written out explicitly (least privilege) before the signing schemes landed; since
then intake writes a signing record to the state table and the CRC may answer with the client
secret. Each public function is invoked on the local stack with both schemes configured, every
AWS call it makes is recorded, and each is checked against what template.yaml grants its role.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from botocore.client import BaseClient

import iam
from conftest import ROOT
from helpers import crc, post, state_items
from xrelay.receiving.signature import LEGACY_HEADER, OAUTH2_HEADER, sign

CLIENT_SECRET = "an-oauth2-client-secret"
DELIVERY = (ROOT / "events" / "deliveries" / "xaa_post_create.json").read_bytes()


@pytest.fixture
def both_schemes(monkeypatch, fake_x):
    monkeypatch.setenv("X_CLIENT_SECRET", CLIENT_SECRET)  # before the stack's fixture provisions the app secret
    return fake_x


@contextmanager
def recorded(monkeypatch, stack):
    """Every AWS call made inside, as (IAM action, logical id of the resource it names, or None)."""
    for function in ("CrcFunction", "IntakeFunction", "WebhookFunction"):
        stack.environment(function)  # the emulator's own lookups (the stack's resources), not the function's
    calls: list[tuple[str, str | None]] = []
    physical = {v: k for k, v in stack.stack.resources.items()}
    real = BaseClient._make_api_call

    def record(aws, operation, params):
        prefix = aws.meta.service_model.signing_name
        name = params.get("TableName") or params.get("QueueUrl", "").rsplit("/", 1)[-1] or params.get("SecretId")
        calls.append((f"{prefix}:{operation}", physical.get(name, name)))
        return real(aws, operation, params)

    with monkeypatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", record)
        yield calls


def ungranted(function: str, calls: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    granted = iam.grants(function)
    missing = []
    for action, resource in calls:
        resources = granted.get(action, set())
        if action == "secretsmanager:GetSecretValue":
            ok = bool(resources)  # the app secret, as AppSecretReadPolicy resolves it (test_template_iam)
        else:
            ok = any(r == f"{resource}.Arn" or r == f"ref:{resource}" for r in resources)
        if not ok:
            missing.append((action, resource))
    return missing


def test_intake_may_make_every_call_it_makes_with_both_schemes(both_schemes, stack, monkeypatch):
    headers = {OAUTH2_HEADER: sign(CLIENT_SECRET, DELIVERY)}
    with recorded(monkeypatch, stack) as calls:
        status, _ = post(stack, DELIVERY, headers=headers)  # both headers, as X signs for an OAuth 2.0 app
    assert status == 200
    assert ("dynamodb:PutItem", "StateTable") in calls  # the signing record `xrelay status` reads
    assert [i["sk"]["S"] for i in state_items(stack, "signing")] == ["client_secret"]
    assert ungranted("IntakeFunction", calls) == []


def test_intake_may_record_the_legacy_scheme_and_a_refusal(both_schemes, stack, monkeypatch):
    with recorded(monkeypatch, stack) as calls:
        assert post(stack, DELIVERY, secret=None, headers={LEGACY_HEADER: sign("wrong", DELIVERY)})[0] == 403
        assert post(stack, DELIVERY, secret=None, headers={OAUTH2_HEADER: sign(CLIENT_SECRET, DELIVERY)})[0] == 200
    assert ungranted("IntakeFunction", calls) == []


def test_the_crc_reads_only_the_app_secret_and_answers_with_the_client_secret(both_schemes, stack, monkeypatch):
    with recorded(monkeypatch, stack) as calls:
        status, body = crc(stack, "crc_token=abc")
    assert status == 200 and body == {"response_token": sign(CLIENT_SECRET, b"abc")}
    assert {action for action, _ in calls} <= {"secretsmanager:GetSecretValue"}
    assert ungranted("CrcFunction", calls) == []


def test_the_functions_that_name_the_crc_secret_have_the_parameter():
    # The CRC answers with it; the reconcile says which secret answered when X's CRC fails.
    for function in ("CrcFunction", "WebhookFunction", "ReconcileFunction"):
        variables = iam.RESOURCES[function]["Properties"]["Environment"]["Variables"]
        assert variables["CRC_SIGNING_SECRET"] == {"Ref": "CrcSigningSecret"}, function
    assert json.dumps(iam.TEMPLATE["Parameters"]["CrcSigningSecret"]["AllowedValues"]) == \
        '["auto", "client_secret", "consumer_secret"]'


def test_the_function_url_function_may_make_every_call_the_crc_and_intake_make(both_schemes, stack, monkeypatch):
    """Endpoint=FunctionUrl: WebhookFunction's one role covers both paths, both schemes, a refusal."""
    def request(method: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
        event = json.loads((ROOT / "events" / ("WebhookFunction.json" if method == "POST" else
                                               "WebhookFunction-crc.json")).read_text())
        if body is not None:
            event["body"] = body.decode()
            event["headers"] = {"content-type": "application/json", **(headers or {})}
        return stack.invoke("WebhookFunction", event)["statusCode"]

    with recorded(monkeypatch, stack) as calls:
        assert request("GET") == 200
        assert request("POST", DELIVERY, {OAUTH2_HEADER: sign(CLIENT_SECRET, DELIVERY)}) == 200
        assert request("POST", DELIVERY, {LEGACY_HEADER: sign("wrong", DELIVERY)}) == 403
    assert ("dynamodb:PutItem", "StateTable") in calls
    assert ungranted("WebhookFunction", calls) == []

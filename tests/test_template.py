"""template.yaml's wiring of the X app secret, the X API URL and the scheduled ReconcileFunction."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import ROOT
from xrelay import template as tpl

TEMPLATE = tpl.load(ROOT / "template.yaml")
PARAMETERS = TEMPLATE["Parameters"]
RECONCILE = TEMPLATE["Resources"]["ReconcileFunction"]["Properties"]
USERS_SECRETS = ("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
                 "secret:xrelay/${AWS::StackName}/users/*")


def statements(function: str) -> list[dict[str, Any]]:
    found = []
    for policy in TEMPLATE["Resources"][function]["Properties"].get("Policies", []):
        found.extend(policy.get("Statement", []))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_app_secret_parameter_is_renamed_everywhere():
    text = (ROOT / "template.yaml").read_text()
    assert "ConsumerSecretArn" not in text and "CONSUMER_SECRET_ARN" not in text
    assert "Default" not in PARAMETERS["XAppSecretArn"]  # required
    assert "bearer_token" in PARAMETERS["XAppSecretArn"]["Description"]
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["X_APP_SECRET_ARN"] == {"Ref": "XAppSecretArn"}
    for function in ("CrcFunction", "IntakeFunction"):
        policies = TEMPLATE["Resources"][function]["Properties"]["Policies"]
        assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "XAppSecretArn"}}} in policies


@pytest.mark.parametrize("value,allowed", [
    ("https://api.x.com", True), ("https://api.x.com/", True), ("https://proxy.example:8443/x", True),
    ("http://api.x.com", False), ("api.x.com", False), ("https://api.x.com/?a=b", False), ("", False)])
def test_x_api_base_url_parameter(value, allowed):
    spec = PARAMETERS["XApiBaseUrl"]
    assert spec["Default"] == "https://api.x.com"
    assert bool(re.fullmatch(spec["AllowedPattern"], value)) is allowed


@pytest.mark.parametrize("value,allowed", [
    ("rate(5 minutes)", True), ("rate(1 minute)", True), ("rate(1 hour)", True), ("rate(12 hours)", True),
    ("cron(0/10 * * * ? *)", True),
    ("rate(1 minutes)", False), ("rate(5 minute)", False), ("rate(0 minutes)", False), ("rate(30 seconds)", False),
    ("rate(1 day)", False), ("cron(* * * *)", False), ("every 5 minutes", False)])
def test_reconcile_schedule_parameter(value, allowed):
    spec = PARAMETERS["ReconcileSchedule"]
    assert spec["Default"] == "rate(5 minutes)"
    assert bool(re.fullmatch(spec["AllowedPattern"], value)) is allowed


def test_reconcile_function_runs_on_the_schedule_one_at_a_time():
    assert "ReconcileFunction" in tpl.functions(TEMPLATE)
    assert (RECONCILE["CodeUri"].rstrip("/"), RECONCILE["Handler"]) == ("functions/reconcile", "app.handler")
    assert RECONCILE["Timeout"] == 120
    # one at a time through the state table's lease (test_lease.py), not reserved concurrency
    assert "ReservedConcurrentExecutions" not in RECONCILE
    events = list(RECONCILE["Events"].values())
    assert [e["Type"] for e in events] == ["Schedule"]
    assert events[0]["Properties"]["Schedule"] == {"Ref": "ReconcileSchedule"}
    # Globals give it the same layers, memory and tracing as the other functions; nothing overrides them.
    assert not {"Layers", "MemorySize", "Tracing", "Runtime"} & set(RECONCILE)


def test_reconcile_function_environment():
    own = RECONCILE["Environment"]["Variables"]
    assert own == {"POWERTOOLS_SERVICE_NAME": "reconcile", "X_API_BASE_URL": {"Ref": "XApiBaseUrl"},
                   "STACK_NAME": {"Ref": "AWS::StackName"}}
    shared = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert {"STATE_TABLE", "X_APP_SECRET_ARN", "STAGE", "SECRET_CACHE_SECONDS"} <= set(shared)


def test_reconcile_function_permissions_are_named_and_scoped():
    assert [p for p in RECONCILE["Policies"] if "Statement" not in p] == []  # no broad policy templates
    grants: dict[str, set[str]] = {}
    for statement in statements("ReconcileFunction"):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            assert "*" not in action
            for resource in as_list(statement["Resource"]):
                key = resource["Fn::Sub"] if "Fn::Sub" in resource else repr(resource)
                grants.setdefault(key, set()).add(action)
    assert grants == {
        repr({"Fn::GetAtt": ["StateTable", "Arn"]}): {
            "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"},
        repr({"Ref": "XAppSecretArn"}): {"secretsmanager:GetSecretValue"},
        USERS_SECRETS: {"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"},
    }


def test_users_secrets_grant_matches_where_users_are_stored():
    from xrelay.users import secret_prefix

    assert USERS_SECRETS.split(":secret:", 1)[1] == secret_prefix("${AWS::StackName}") + "*"

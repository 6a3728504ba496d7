"""template.yaml's wiring of the X app secret, the X API URL and the scheduled ReconcileFunction."""

from __future__ import annotations

import re

import pytest

import iam
from conftest import ROOT
from xrelay.tools.cli import template as tpl

TEMPLATE = tpl.load(ROOT / "template.yaml")
PARAMETERS = TEMPLATE["Parameters"]
RECONCILE = TEMPLATE["Resources"]["ReconcileFunction"]["Properties"]
USERS_SECRETS = ("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:"
                 "secret:xrelay/${AWS::StackName}/users/*")




def test_the_app_secret_parameter_is_renamed_everywhere():
    text = (ROOT / "template.yaml").read_text()
    assert "ConsumerSecretArn" not in text and "CONSUMER_SECRET_ARN" not in text
    assert "Default" not in PARAMETERS["XAppSecretArn"]  # required
    assert "bearer_token" in PARAMETERS["XAppSecretArn"]["Description"]
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["X_APP_SECRET_ARN"] == {"Ref": "XAppSecretArn"}
    for function in ("CrcFunction", "IntakeFunction", "ReconcileFunction", "ReplayFunction"):
        assert iam.grants(function)["secretsmanager:GetSecretValue"] >= {iam.APP_SECRET}
    assert "secretsmanager:GetSecretValue" not in iam.grants("PublisherFunction")


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
    # Globals give it the same memory and tracing as the other functions; nothing overrides them.
    # (Its layers are its own: those of what it imports, tests/test_layers.py.)
    assert not {"MemorySize", "Tracing", "Runtime"} & set(RECONCILE)


def test_reconcile_function_environment():
    own = RECONCILE["Environment"]["Variables"]
    assert own == {"POWERTOOLS_SERVICE_NAME": "reconcile", "X_API_BASE_URL": {"Ref": "XApiBaseUrl"},
                   "STACK_NAME": {"Ref": "AWS::StackName"}, "CRC_SIGNING_SECRET": {"Ref": "CrcSigningSecret"}}
    shared = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert {"STATE_TABLE", "X_APP_SECRET_ARN", "STAGE", "SECRET_CACHE_SECONDS"} <= set(shared)


def test_reconcile_function_permissions_are_named_and_scoped():
    users = "arn:aws:secretsmanager:us-east-1:123456789012:secret:xrelay/xrelay/users/*"
    by_resource: dict[str, set[str]] = {}
    for action, resources in iam.grants("ReconcileFunction").items():
        assert "*" not in action
        for resource in resources:
            by_resource.setdefault(resource, set()).add(action)
    assert by_resource == {
        "StateTable.Arn": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"},
        iam.APP_SECRET: {"secretsmanager:GetSecretValue"},
        f"{iam.APP_SECRET}-??????": {"secretsmanager:GetSecretValue"},
        users: {"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"},
        "ReconcileLogGroup.Arn": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "*": {"kms:Decrypt"},  # through Secrets Manager, for the app secret only (test_template_iam.py)
    }


def test_users_secrets_grant_matches_where_users_are_stored():
    from xrelay.subscriptions.users import secret_prefix

    assert USERS_SECRETS.split(":secret:", 1)[1] == secret_prefix("${AWS::StackName}") + "*"

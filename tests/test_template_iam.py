"""Least privilege, grant by grant: each function's role holds what its code calls and nothing more.

Read as IAM assembles it (tests/iam.py), and once through SAM's own translator, which must add
nothing: no AWSLambdaBasicExecutionRole (logs:CreateLogGroup on *), no X-Ray policy with tracing
off, no AWSLambdaDynamoDBExecutionRole (every stream of the account).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

import iam
from conftest import ROOT

FUNCTIONS = sorted(name for name, res in iam.RESOURCES.items() if res["Type"] == "AWS::Serverless::Function")
LOG_GROUP = {f: iam.RESOURCES[f]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in FUNCTIONS}
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_xray_only_with_tracing(function):
    assert not XRAY & set(iam.grants(function))
    on = iam.grants(function, EnableTracing="true")
    assert {action: on[action] for action in XRAY} == {action: {"*"} for action in XRAY}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_logs_only_to_its_own_group_which_it_never_creates(function):
    logs = {action: resources for action, resources in iam.grants(function).items() if action.startswith("logs:")}
    assert logs == {"logs:CreateLogStream": {f"{LOG_GROUP[function]}.Arn"},
                    "logs:PutLogEvents": {f"{LOG_GROUP[function]}.Arn"}}


def test_the_stream_is_read_on_its_own_arn_by_the_publisher_only():
    grants = iam.grants("PublisherFunction")
    for action in ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"):
        assert grants[action] == {"EventsTable.StreamArn"}
    assert grants["dynamodb:ListStreams"] == {"EventsTable.Arn/stream/*"}
    # it sends to the events queue and, as the stream's on-failure destination, to the failures queue
    assert grants["sqs:SendMessage"] == {"EventsQueue.Arn", "PublishFailuresQueue.Arn"}
    for function in set(FUNCTIONS) - {"PublisherFunction"}:
        assert not {a for a in iam.grants(function) if a.startswith("dynamodb:") and ("Stream" in a or "Records" in a)}


def test_the_public_functions_grants():
    assert set(iam.grants("CrcFunction")) == {"logs:CreateLogStream", "logs:PutLogEvents",
                                              "secretsmanager:GetSecretValue", "kms:Decrypt"}
    intake = iam.grants("IntakeFunction")
    assert intake["dynamodb:PutItem"] == {"EventsTable.Arn", "StateTable.Arn"}
    assert intake["dynamodb:UpdateItem"] == {"StateTable.Arn"}
    assert not {a for a in intake if a.startswith(("sqs:", "dynamodb:Get", "dynamodb:Query", "dynamodb:Delete"))}
    assert "secretsmanager:GetSecretValue" not in iam.grants("PublisherFunction")


def test_the_function_url_function_holds_what_the_crc_and_intake_hold_together_and_no_more():
    """Endpoint=FunctionUrl: one role for both paths; its own log group in place of theirs."""
    webhook = iam.grants("WebhookFunction")
    together = iam.grants("IntakeFunction")
    for action, resources in iam.grants("CrcFunction").items():
        together[action] = together.get(action, set()) | resources
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        assert together.pop(action) == {"CrcLogGroup.Arn", "IntakeLogGroup.Arn"}
        assert webhook.pop(action) == {"WebhookLogGroup.Arn"}
    assert webhook == together
    # with a customer managed key, what intake gets of it
    kms = {a: r for a, r in iam.grants("WebhookFunction", KmsKeyArn=KEY).items() if a.startswith("kms:")}
    assert kms == {a: r for a, r in iam.grants("IntakeFunction", KmsKeyArn=KEY).items() if a.startswith("kms:")}


@pytest.mark.parametrize("endpoint,roles", [
    ("HttpApi", {"CrcFunctionRole", "IntakeFunctionRole"}), ("FunctionUrl", {"WebhookFunctionRole"})])
def test_each_endpoint_attaches_the_shared_policies_to_its_own_roles_only(endpoint, roles):
    endpoint_roles = {"CrcFunctionRole", "IntakeFunctionRole", "WebhookFunctionRole"}
    for policy in ("AppSecretReadPolicy", "TracingPolicy", "KmsKeyUsePolicy"):
        attached = iam.drop_no_value(iam.resolver(Endpoint=endpoint, KmsKeyArn=KEY, EnableTracing="true").resolve(
            iam.RESOURCES[policy]["Properties"]["Roles"]))
        assert {r.removeprefix("ref:") for r in attached} & endpoint_roles == \
            (roles - {"CrcFunctionRole"} if policy == "KmsKeyUsePolicy" else roles), policy


def app_secret_grants(function: str, value: str) -> tuple[set[str], set[str]]:
    """(what GetSecretValue is granted on, the SecretARN contexts kms:Decrypt is limited to)."""
    read: set[str] = set()
    contexts: set[str] = set()
    for statement in iam.statements(function, XAppSecretArn=value):
        actions = iam.as_list(statement["Action"])
        if actions == ["secretsmanager:GetSecretValue"]:
            read |= set(iam.as_list(statement["Resource"]))
        if actions == ["kms:Decrypt"] and statement["Resource"] == "*":
            condition = statement["Condition"]["StringLike"]
            assert condition["kms:ViaService"] == "secretsmanager.*.amazonaws.com"
            contexts |= set(iam.as_list(condition["kms:EncryptionContext:SecretARN"]))
    return read, contexts


@pytest.mark.parametrize("value,granted", [
    (f"{PREFIX}xrelay/x-app-AbCdEf", {f"{PREFIX}xrelay/x-app-AbCdEf", f"{PREFIX}xrelay/x-app-AbCdEf-??????"}),
    (f"{PREFIX}xrelay/x-app", {f"{PREFIX}xrelay/x-app", f"{PREFIX}xrelay/x-app-??????"}),  # partial ARN
    ("xrelay/x-app", {f"{PREFIX}xrelay/x-app-??????"}),  # a name: this account and region, any suffix
])
@pytest.mark.parametrize("function", ["CrcFunction", "IntakeFunction", "WebhookFunction", "ReconcileFunction",
                                      "ReplayFunction"])
def test_the_app_secret_is_readable_as_the_console_gives_it_and_with_any_key(function, value, granted):
    spec = iam.TEMPLATE["Parameters"]["XAppSecretArn"]
    assert re.fullmatch(spec["AllowedPattern"], value)
    read, contexts = app_secret_grants(function, value)
    assert read == granted
    # A customer managed key: decrypted through Secrets Manager, for this secret only.
    assert contexts == granted
    env = iam.resolver(XAppSecretArn=value).function_environment(function)
    assert env["X_APP_SECRET_ARN"] == value  # GetSecretValue takes any of the three forms


@pytest.mark.parametrize("value", ["", "arn:aws:kms:us-east-1:123456789012:key/abc",
                                   "https://console.aws.amazon.com/secretsmanager/secret?name=x", "my secret"])
def test_the_app_secret_parameter_refuses_what_is_not_a_secret_and_says_what_to_give(value):
    spec = iam.TEMPLATE["Parameters"]["XAppSecretArn"]
    assert not re.fullmatch(spec["AllowedPattern"], value)
    assert "ARN" in spec["ConstraintDescription"] and "name" in spec["ConstraintDescription"]


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="needs .venv-sam (make lint builds it)")
@pytest.mark.parametrize("tracing", ["false", "true"])
def test_sams_translator_adds_no_managed_policy_to_any_role(tracing):
    params = {"XAppSecretArn": "xrelay/x-app", "EnableTracing": tracing}
    out = subprocess.run([str(SAM_PYTHON), str(ROOT / "tests" / "tools" / "sam_translate.py"),
                          str(ROOT / "template.yaml"), json.dumps(params)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": ""}).stdout
    resources = json.loads(out)["Resources"]
    roles = {name: res for name, res in resources.items() if res["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {f"{f}Role" for f in FUNCTIONS}  # ours, none generated
    for role in roles.values():
        assert "ManagedPolicyArns" not in role["Properties"]
    for name in FUNCTIONS:
        assert resources[name]["Properties"]["Role"] == {"Fn::GetAtt": [f"{name}Role", "Arn"]}


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="needs .venv-sam (make lint builds it)")
def test_sams_translator_gives_the_function_url_both_public_permissions_and_the_endpoints_their_condition():
    """Since October 2025 a function URL needs lambda:InvokeFunctionUrl and lambda:InvokeFunction (AWS Lambda
    guide, "Control access to Lambda function URLs"); SAM adds both for AuthType NONE (SAM PR #3735)."""
    params = {"XAppSecretArn": "xrelay/x-app", "Endpoint": "FunctionUrl"}
    out = subprocess.run([str(SAM_PYTHON), str(ROOT / "tests" / "tools" / "sam_translate.py"),
                          str(ROOT / "template.yaml"), json.dumps(params)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": ""}).stdout
    resources = json.loads(out)["Resources"]
    url = resources["WebhookFunctionUrl"]
    assert url["Type"] == "AWS::Lambda::Url" and url["Condition"] == "ViaFunctionUrl"
    assert url["Properties"] == {"TargetFunctionArn": {"Ref": "WebhookFunction"}, "AuthType": "NONE"}  # $LATEST
    permissions = {r["Properties"]["Action"]: r for r in resources.values()
                   if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["FunctionName"] == {"Ref": "WebhookFunction"}}
    assert set(permissions) == {"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"}
    assert permissions["lambda:InvokeFunctionUrl"]["Properties"]["FunctionUrlAuthType"] == "NONE"
    assert permissions["lambda:InvokeFunction"]["Properties"]["InvokedViaFunctionUrl"] is True  # via the URL only
    assert all(p["Condition"] == "ViaFunctionUrl" and p["Properties"]["Principal"] == "*" for p in permissions.values())
    # the HTTP API and what hangs off it exist only with Endpoint=HttpApi
    for name, res in resources.items():
        if res["Type"].startswith("AWS::ApiGatewayV2::") or name.startswith(("CrcFunction", "IntakeFunction")):
            assert res.get("Condition") in ("ViaHttpApi", "HasCustomDomain"), name

"""template.yaml's guarantees about permissions, encryption, retention and capacity.

Each test reads the template as CloudFormation would (``xrelay.tools.cli.template``), resolving Conditions
and ``!If`` for the Parameter values that matter, so both sides of an optional feature are checked.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import iam
from conftest import ROOT
from xrelay.tools.cli import template as tpl

TEMPLATE = tpl.load(ROOT / "template.yaml")
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
PARAMETERS: dict[str, dict[str, Any]] = TEMPLATE["Parameters"]
FUNCTIONS = sorted(tpl.functions(TEMPLATE))
QUEUES = sorted(name for name, res in RESOURCES.items() if res["Type"] == "AWS::SQS::Queue")
TABLES = sorted(name for name, res in RESOURCES.items() if res["Type"] == "AWS::DynamoDB::Table")
LOG_GROUPS = sorted(name for name, res in RESOURCES.items() if res["Type"] == "AWS::Logs::LogGroup")
PSEUDO_PARAMETERS = {"AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::StackName", "AWS::URLSuffix",
                     "AWS::NoValue"}

KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"

# Actions that take no resource-level scoping: "*" is the only Resource they accept.
UNSCOPABLE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}
# SAM policy templates a function may use, each with the argument that scopes it to one resource.
SCOPED_POLICY_TEMPLATES = {"AWSSecretsManagerGetSecretValuePolicy": "SecretArn"}
# Queues that have no dead-letter queue and are not one, and why.
NOT_REDRIVEN = {
    "PublishFailuresQueue": "the publisher's on-failure destination: read by `xrelay events republish "
                            "--from-failures`, never by a consumer that could fail its messages",
}

X_REPLAY_DELIVERIES_PER_S = 2500  # X replays at up to this rate and never retries a replayed delivery
INTAKE_WARM_P99_S = 0.1  # a generous bound on intake's warm p99 (one conditional PutItem per event)

def properties(logical_id: str, **parameters: str) -> dict[str, Any]:
    """The resource's Properties with these Parameter values: ``!If`` decided, ``AWS::NoValue`` dropped."""
    return iam.drop_no_value(iam.resolver(**parameters).resolve(RESOURCES[logical_id]["Properties"]))


def names_a_template_thing(value: Any) -> bool:
    """A Ref, GetAtt or Sub whose every name is a Parameter, a resource (attribute) or a pseudo parameter."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key, arg), = value.items()
    if key == "Ref":
        names = [arg]
    elif key == "Fn::GetAtt":
        names = [arg[0]]
    elif key == "Fn::Sub" and isinstance(arg, str):
        names = [name.split(".", 1)[0] if "::" not in name else name for name in re.findall(r"\$\{([^}!]+)\}", arg)]
    else:
        return False
    return bool(names) and all(n in PARAMETERS or n in RESOURCES or n in PSEUDO_PARAMETERS for n in names)


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("parameters", [{}, {"EnableTracing": "true", "KmsKeyArn": KEY}], ids=["defaults", "all-on"])
def test_every_function_has_its_own_least_privilege_role(function, parameters):
    props = RESOURCES[function]["Properties"]
    assert "Policies" not in props  # SAM would ignore them beside a Role
    role = RESOURCES[iam.role_of(function)]
    assert role["Type"] == "AWS::IAM::Role" and "ManagedPolicyArns" not in role["Properties"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert sum(iam.role_of(f) == iam.role_of(function) for f in FUNCTIONS) == 1  # not shared
    for statement in iam.statements(function, **parameters):
        assert statement["Effect"] == "Allow"
        actions = iam.as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, f"{function}: wildcard action {action}"
        for resource in iam.as_list(statement["Resource"]):
            if resource == "*":
                # only actions that take no resource, or KMS use through Secrets Manager for one secret
                assert set(actions) <= UNSCOPABLE_ACTIONS or (
                    actions == ["kms:Decrypt"]
                    and statement["Condition"]["StringLike"]["kms:ViaService"] == "secretsmanager.*.amazonaws.com"
                    and "kms:EncryptionContext:SecretARN" in statement["Condition"]["StringLike"]), (
                    f"{function}: {actions} on every resource")
            else:  # this stack's resources, its users' secrets, the app secret or the key
                assert (resource.split(".")[0] in RESOURCES or resource.startswith(iam.APP_SECRET)
                        or resource in (KEY, "arn:aws:secretsmanager:us-east-1:123456789012:secret:xrelay/xrelay/users/*")
                        ), f"{function}: {resource}"


# What each function does with KmsKeyArn's key: DynamoDB reads and writes need kms:Decrypt of the
# table key, sending to an encrypted queue also kms:GenerateDataKey; the CRC touches neither.
KMS_USE = {"CrcFunction": set(), "IntakeFunction": {"kms:Decrypt"}, "WebhookFunction": {"kms:Decrypt"},
           "ReconcileFunction": {"kms:Decrypt"},
           "ReplayFunction": {"kms:Decrypt"}, "PublisherFunction": {"kms:Decrypt", "kms:GenerateDataKey"}}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_kms_key_is_granted_only_with_a_key_and_only_the_actions_each_function_uses(function):
    def on_key(**parameters):
        return {action for action, resources in iam.grants(function, **parameters).items() if KEY in resources}

    assert on_key(KmsKeyArn="") == set()
    assert on_key(KmsKeyArn=KEY) == KMS_USE[function]
    for name in ("KmsKeyUsePolicy", "KmsKeySendPolicy"):
        assert RESOURCES[name]["Condition"] == "HasKmsKey"
    assert TEMPLATE["Conditions"]["HasKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]}


@pytest.mark.parametrize("queue", QUEUES)
def test_every_queue_is_encrypted_with_or_without_a_kms_key(queue):
    managed = properties(queue, KmsKeyArn="")
    assert managed.get("SqsManagedSseEnabled") is True and "KmsMasterKeyId" not in managed
    own_key = properties(queue, KmsKeyArn=KEY)
    assert own_key.get("KmsMasterKeyId") == KEY and "SqsManagedSseEnabled" not in own_key


def redrive_targets() -> dict[str, str]:
    """dead-letter queue -> the queue that sends to it."""
    found = {}
    for queue in QUEUES:
        policy = RESOURCES[queue]["Properties"].get("RedrivePolicy")
        if policy:
            target = policy["deadLetterTargetArn"]
            assert target == {"Fn::GetAtt": [target["Fn::GetAtt"][0], "Arn"]}
            found[target["Fn::GetAtt"][0]] = queue
    return found


@pytest.mark.parametrize("queue", QUEUES)
def test_every_queue_has_a_dead_letter_queue_or_is_one(queue):
    dead_letter_of = redrive_targets()
    has_dlq = "RedrivePolicy" in RESOURCES[queue]["Properties"]
    assert has_dlq or queue in dead_letter_of or queue in NOT_REDRIVEN
    if queue in dead_letter_of:
        assert not has_dlq  # a dead-letter queue of a dead-letter queue hides failures
        source = RESOURCES[dead_letter_of[queue]]["Properties"]
        # a redriven message keeps its original enqueue time: the DLQ must keep it at least as long
        assert RESOURCES[queue]["Properties"]["MessageRetentionPeriod"] >= source["MessageRetentionPeriod"]


def test_the_queue_without_a_dead_letter_queue_is_a_destination():
    destinations = [event["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
                    for function in FUNCTIONS
                    for event in RESOURCES[function]["Properties"].get("Events", {}).values()
                    if "DestinationConfig" in event.get("Properties", {})]
    for queue in NOT_REDRIVEN:
        assert {"Fn::GetAtt": [queue, "Arn"]} in destinations


@pytest.mark.parametrize("table", TABLES)
def test_tables_survive_mistakes(table):
    resource = RESOURCES[table]
    assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert resource["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("table", TABLES)
def test_tables_use_the_kms_key_when_one_is_given(table):
    assert properties(table, KmsKeyArn="")["SSESpecification"] == {"SSEEnabled": True}  # the AWS managed key
    assert properties(table, KmsKeyArn=KEY)["SSESpecification"] == {
        "SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": KEY}


@pytest.mark.parametrize("queue", sorted(NOT_REDRIVEN) + sorted(redrive_targets()))
def test_failure_queues_are_kept_when_the_stack_goes(queue):
    assert (RESOURCES[queue]["DeletionPolicy"], RESOURCES[queue]["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_the_alarm_topic_is_encrypted_only_with_a_key_cloudwatch_may_use():
    # The AWS managed SNS key (alias/aws/sns) would silently stop every alarm notification.
    assert "KmsMasterKeyId" not in properties("AlarmTopic", KmsKeyArn="")
    assert properties("AlarmTopic", KmsKeyArn=KEY)["KmsMasterKeyId"] == KEY


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_logs_to_its_own_group_with_a_retention(function):
    logging = RESOURCES[function]["Properties"].get("LoggingConfig")
    assert logging is not None, f"{function} has no LoggingConfig: Lambda would create a group that never expires"
    group = logging["LogGroup"]["Ref"]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{function}"}


@pytest.mark.parametrize("group", LOG_GROUPS)
def test_every_log_group_has_the_retention_parameter_and_the_key(group):
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert "KmsKeyId" not in properties(group, KmsKeyArn="")
    assert properties(group, KmsKeyArn=KEY)["KmsKeyId"] == KEY


def test_log_retention_takes_only_values_cloudwatch_logs_accepts():
    accepted = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                3288, 3653}
    spec = PARAMETERS["LogRetentionDays"]
    assert set(spec["AllowedValues"]) == accepted and spec["Default"] in accepted


@pytest.mark.parametrize("function,parameter", [("IntakeFunction", "IntakeReservedConcurrency"),
                                                ("CrcFunction", "CrcReservedConcurrency"),
                                                ("WebhookFunction", "IntakeReservedConcurrency")])
def test_public_functions_reserve_concurrency_unless_it_is_zero(function, parameter):
    assert "ReservedConcurrentExecutions" not in properties(function, **{parameter: "0"})
    assert properties(function, **{parameter: "25"})["ReservedConcurrentExecutions"] == "25"


NEW_ACCOUNT_CONCURRENCY_QUOTA = 10  # a new AWS account's concurrent executions
UNRESERVED_MINIMUM = 10  # Lambda refuses a reservation that leaves fewer unreserved


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_defaults_deploy_on_a_new_account(function):
    # Any reservation at all fails there: quota 10 - reserved < the unreserved minimum of 10.
    assert "ReservedConcurrentExecutions" not in properties(function), f"{function} reserves by default"
    reserved = sum(int(properties(f).get("ReservedConcurrentExecutions", 0)) for f in FUNCTIONS)
    assert NEW_ACCOUNT_CONCURRENCY_QUOTA - reserved >= UNRESERVED_MINIMUM


def test_defaults_absorb_x_replay_bursts():
    rate, burst = PARAMETERS["ApiThrottleRate"]["Default"], PARAMETERS["ApiThrottleBurst"]["Default"]
    assert rate > X_REPLAY_DELIVERIES_PER_S and burst >= rate
    # the reservation the Parameter's description recommends covers a replay at intake's p99
    recommended = int(re.search(r"so (\d+) leaves headroom", PARAMETERS["IntakeReservedConcurrency"]["Description"])[1])
    assert recommended >= X_REPLAY_DELIVERIES_PER_S * INTAKE_WARM_P99_S


def test_the_custom_domain_exists_only_with_its_certificate():
    for name in ("WebhookDomain", "WebhookDomainMapping"):
        assert RESOURCES[name]["Condition"] == "HasCustomDomain"
    domain = properties("WebhookDomain", CustomDomainName="x-webhook.example.com",
                        CertificateArn="arn:aws:acm:us-east-1:123456789012:certificate/abc")
    assert domain["DomainName"] == "x-webhook.example.com"
    assert domain["DomainNameConfigurations"][0]["CertificateArn"] == "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    mapping = RESOURCES["WebhookDomainMapping"]["Properties"]
    assert (mapping["ApiId"], mapping["DomainName"]) == ({"Ref": "WebhookApi"}, {"Ref": "WebhookDomain"})
    rule = TEMPLATE["Rules"]["CustomDomainNeedsCertificate"]
    # HasCustomDomain: a CustomDomainName, with the HTTP API (FunctionUrlHasNoCustomDomain refuses the rest)
    assert TEMPLATE["Conditions"]["HasCustomDomain"]["Fn::And"] == [rule["RuleCondition"], {"Condition": "ViaHttpApi"}]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]}


def refused_by_rules(**parameters: str) -> list[str]:
    """The AssertDescriptions CloudFormation would stop the deploy with, for these Parameters."""
    values = tpl.parameter_values(TEMPLATE, {"XAppSecretArn": "arn", **parameters})
    resolver = tpl.Resolver(TEMPLATE, values, ref=lambda name: f"ref:{name}", get_att=lambda *_: "")
    return [a["AssertDescription"] for rule in TEMPLATE["Rules"].values() if resolver.resolve(rule["RuleCondition"])
            for a in rule["Assertions"] if not resolver.resolve(a["Assert"])]


def test_a_function_url_with_a_custom_domain_is_refused_in_one_sentence_that_says_what_to_do():
    domain = {"CustomDomainName": "x-webhook.example.com",
              "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}
    assert refused_by_rules(**domain) == []
    assert refused_by_rules(Endpoint="FunctionUrl") == []
    (refusal,) = refused_by_rules(Endpoint="FunctionUrl", **domain)
    assert "CustomDomainName" in refusal and "CloudFront" in refusal and "Endpoint=HttpApi" in refusal
    for name in ("WebhookDomain", "WebhookDomainMapping", "WebhookApi"):  # and nothing of the API is created
        condition = RESOURCES[name]["Condition"]
        values = tpl.parameter_values(TEMPLATE, {"XAppSecretArn": "arn", "Endpoint": "FunctionUrl", **domain})
        assert not tpl.Resolver(TEMPLATE, values, ref=str, get_att=lambda *_: "").condition(condition), name


@pytest.mark.parametrize("parameter,value,allowed", [
    ("KmsKeyArn", "", True), ("KmsKeyArn", KEY, True), ("KmsKeyArn", "alias/aws/sqs", False),
    ("KmsKeyArn", "arn:aws:kms:us-east-1:123456789012:alias/mine", False),
    ("CustomDomainName", "", True), ("CustomDomainName", "x-webhook.example.com", True),
    ("CustomDomainName", "https://x-webhook.example.com", False), ("CustomDomainName", "X.Example.com", False),
    ("CertificateArn", "", True), ("CertificateArn", "arn:aws:acm:eu-west-1:123456789012:certificate/1-2-3", True),
    ("CertificateArn", "arn:aws:iam::123456789012:server-certificate/x", False),
    ("AlarmEmail", "", True), ("AlarmEmail", "ops@example.com", True), ("AlarmEmail", "ops", False)])
def test_optional_parameters_take_empty_or_a_well_formed_value(parameter, value, allowed):
    assert bool(re.fullmatch(PARAMETERS[parameter]["AllowedPattern"], value)) is allowed

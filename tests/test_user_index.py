"""Issue 16: the ByUser index costs only what it serves. UserIndex=false (the default) leaves
user_key out of event items (a sparse index: no entry, no write unit) and keeps the user in the
unindexed uid; PurgeOnRevoke=true keeps the index on, since revocations are purged through it.
Run other modules against a configuration with XRELAY_TEST_PARAMETERS."""

import pytest

from conftest import ROOT, fixture_bytes
from helpers import post
from xrelay.aws import client
from xrelay.storage.store import BY_USER_INDEX

PRIVATE_EVENT = "xaa/18_dm.sent.json"


@pytest.fixture
def deploy():
    """Provision a local stack with the given Parameters: ``deploy({"UserIndex": "false"})``."""
    from moto import mock_aws

    from xrelay.tools.local.local import LocalStack

    with mock_aws():
        client.cache_clear()

        def provision(parameters):
            local = LocalStack(ROOT, "xrelay")
            local.provision(parameters)
            return local

        yield provision
    client.cache_clear()


def items_with_a_user(stack):
    table = stack.stack.physical("EventsTable")
    scanned = client("dynamodb").scan(TableName=table, FilterExpression="attribute_exists(#r)",
                                      ExpressionAttributeNames={"#r": "record"})["Items"]
    return scanned, [i for i in scanned if "user_key" in i]


@pytest.mark.parametrize(("parameters", "indexed"), [
    ({}, False),
    ({"UserIndex": "true"}, True),
    ({"UserIndex": "false", "PurgeOnRevoke": "true"}, True),
], ids=["default", "UserIndex-true", "UserIndex-false-but-PurgeOnRevoke"])
def test_the_user_index_parameter_decides_whether_events_get_a_by_user_entry(deploy, parameters, indexed):
    stack = deploy(parameters)
    assert stack.environment("IntakeFunction")["INDEX_USERS"] == ("true" if indexed else "false")
    assert post(stack, fixture_bytes(PRIVATE_EVENT))[0] == 200
    stored, with_user = items_with_a_user(stack)
    assert len(stored) == 1
    assert bool(with_user) is indexed
    assert ("uid" in stored[0]) is not indexed  # the user either way: indexed, or for a by-user Scan
    user = stack.module("IntakeFunction").handler.intake.events  # the store the handler writes with
    assert user.index_users is indexed
    by_user = client("dynamodb").scan(TableName=stack.stack.physical("EventsTable"), IndexName=BY_USER_INDEX)
    assert (by_user["Count"] == 1) is indexed


def test_the_template_declares_the_parameter_and_its_condition():
    from xrelay.tools.cli.template import load

    template = load(ROOT / "template.yaml")
    assert template["Parameters"]["UserIndex"]["Default"] == "false"
    assert template["Parameters"]["UserIndex"]["AllowedValues"] == ["true", "false"]
    assert template["Conditions"]["IndexUsers"] == {"Fn::Or": [{"Fn::Equals": [{"Ref": "UserIndex"}, "true"]},
                                                               {"Fn::Equals": [{"Ref": "PurgeOnRevoke"}, "true"]}]}
    intake = template["Resources"]["IntakeFunction"]["Properties"]["Environment"]["Variables"]
    assert intake["INDEX_USERS"] == {"Fn::If": ["IndexUsers", "true", "false"]}

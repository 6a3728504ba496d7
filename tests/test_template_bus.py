"""template.yaml's EventBridge bus (EventBusMode, EventBusName): off by default, a bus of the
stack's own unless one is named, and events:PutEvents on that bus only, for the publisher only."""

from __future__ import annotations

import pytest

import iam

PARAMETERS = iam.TEMPLATE["Parameters"]
FUNCTIONS = sorted(name for name, res in iam.RESOURCES.items() if res["Type"] == "AWS::Serverless::Function")


def test_the_parameters_default_to_no_bus_and_a_bus_of_the_stacks_own():
    assert PARAMETERS["EventBusMode"]["Default"] == "off"
    assert PARAMETERS["EventBusMode"]["AllowedValues"] == ["off", "also", "only"]
    assert PARAMETERS["EventBusName"]["Default"] == ""


@pytest.mark.parametrize("mode", ["off", "also", "only"])
def test_only_the_publisher_may_put_events_and_only_when_the_bus_is_on(mode):
    for function in FUNCTIONS:
        grants = iam.grants(function, EventBusMode=mode)
        assert not {a for a in grants if a.startswith("events:")} - (
            {"events:PutEvents"} if function == "PublisherFunction" and mode != "off" else set())
    publisher = iam.grants("PublisherFunction", EventBusMode=mode)
    assert publisher.get("events:PutEvents") == (None if mode == "off" else {"EventBus.Arn"})


def test_a_named_bus_is_the_only_one_granted_and_no_bus_is_created_for_it():
    grants = iam.grants("PublisherFunction", EventBusMode="also", EventBusName="default")
    assert grants["events:PutEvents"] == {"arn:aws:events:us-east-1:123456789012:event-bus/default"}
    resolver = iam.resolver(EventBusMode="also", EventBusName="default")
    assert not resolver.condition(iam.RESOURCES["EventBus"]["Condition"])
    assert iam.resolver(EventBusMode="also").condition("CreateEventBus")
    assert not iam.resolver().condition("CreateEventBus")  # off: no bus


@pytest.mark.parametrize("given,expected", [("", "xrelay-events"), ("team-bus", "team-bus")])
def test_the_publisher_is_told_the_mode_and_the_bus(given, expected):
    env = iam.resolver(EventBusMode="only", EventBusName=given).function_environment("PublisherFunction")
    assert (env["EVENT_BUS_MODE"], env["EVENT_BUS_NAME"]) == ("only", expected)
    # the bus the stack creates is named as the publisher is told
    assert iam.RESOURCES["EventBus"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-events"}


def test_the_grant_is_on_the_role_never_policies_on_the_function():
    assert "Policies" not in iam.RESOURCES["PublisherFunction"]["Properties"]


def test_bus_failures_are_alarmed_to_the_alarm_topic():
    props = iam.RESOURCES["EventBusFailuresAlarm"]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("xrelay", "EventBusFailures")
    assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]

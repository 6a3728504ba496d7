"""`xrelay outputs`: the deployed stack's Outputs, the webhook URL to give X first."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT
from xrelay.aws import client
from xrelay.tools.cli.cli import main

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"


@pytest.fixture
def deployed(stack):
    """A stack with Outputs, as `sam deploy` leaves one (the local stack has none)."""
    template = {"Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"WebhookUrl": {"Description": "The URL to declare as the webhook", "Value": URL},
                            "EventsQueueUrl": {"Value": {"Ref": "Q"}}}}
    client("cloudformation").create_stack(StackName="deployed", TemplateBody=json.dumps(template))
    return "deployed"


def test_every_output_one_per_line(deployed, capsys):
    assert main(["outputs", "--stack-name", deployed]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"WebhookUrl      {URL}" in lines and any(line.startswith("EventsQueueUrl  ") for line in lines)


def test_one_value_alone_for_scripts(deployed, capsys):
    assert main(["--stack-name", deployed, "outputs", "WebhookUrl"]) == 0
    assert capsys.readouterr().out == URL + "\n"
    assert main(["--stack-name", deployed, "outputs", "Nope"]) == 2
    assert "has no output 'Nope' (it has: " in capsys.readouterr().err


def test_json(deployed, capsys):
    assert main(["outputs", "--stack-name", deployed, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["WebhookUrl"] == URL


def test_a_stack_that_does_not_exist(stack, capsys):
    assert main(["outputs", "--stack-name", "nope"]) == 2
    assert "no stack 'nope'" in capsys.readouterr().err


def test_the_local_stack_says_where_its_webhook_is(stack, capsys):
    # As `xrelay local` provisions it: the local stack has the template's Outputs, WebhookUrl its own URL.
    from xrelay.tools.local.local import LocalStack

    LocalStack(ROOT, "xrelay-run").provision(webhook_url="http://127.0.0.1:3000/webhook")
    assert main(["outputs", "--stack-name", "xrelay-run", "WebhookUrl"]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:3000/webhook\n"

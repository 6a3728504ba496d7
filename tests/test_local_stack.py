"""The local stack's X app secret (seeded from X_* variables), its X API URL override and stack name."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws

from conftest import ROOT
from xrelay.aws import client
from xrelay.tools.local.local import (
    DEV_BEARER_TOKEN,
    DEV_CONSUMER_KEY,
    DEV_CONSUMER_SECRET,
    LocalStack,
    app_secret_from_env,
    app_secret_summary,
    consumer_secret_from_env,
)

X_VARS = ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_BEARER_TOKEN", "X_CLIENT_ID", "X_CLIENT_SECRET")


def stored_app_secret(stack: LocalStack) -> dict[str, str]:
    arn = stack.environment("CrcFunction")["X_APP_SECRET_ARN"]
    return json.loads(client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


@pytest.fixture
def fresh(monkeypatch):
    """A LocalStack factory inside moto, for tests that set X_* before provisioning."""
    with mock_aws():
        client.cache_clear()
        yield lambda name="xrelay": LocalStack(ROOT, name)
    client.cache_clear()


def test_unset_variables_get_printed_development_defaults(monkeypatch):
    for name in X_VARS:
        monkeypatch.delenv(name, raising=False)
    value, defaulted = app_secret_from_env()
    assert value == {"consumer_key": DEV_CONSUMER_KEY, "consumer_secret": DEV_CONSUMER_SECRET,
                     "bearer_token": DEV_BEARER_TOKEN}
    assert defaulted == ["X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_BEARER_TOKEN"]
    summary = "\n".join(app_secret_summary())
    assert all(default in summary for default in (DEV_CONSUMER_KEY, DEV_CONSUMER_SECRET, DEV_BEARER_TOKEN))
    assert consumer_secret_from_env() == (DEV_CONSUMER_SECRET, True)


def test_x_variables_override_the_defaults_and_are_never_printed(monkeypatch):
    given = {"X_CONSUMER_KEY": "ck-from-env", "X_CONSUMER_SECRET": "cs-from-env", "X_BEARER_TOKEN": "bt-from-env",
             "X_CLIENT_ID": "cid-from-env", "X_CLIENT_SECRET": "csec-from-env"}
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    value, defaulted = app_secret_from_env()
    assert value == {"consumer_key": "ck-from-env", "consumer_secret": "cs-from-env", "bearer_token": "bt-from-env",
                     "client_id": "cid-from-env", "client_secret": "csec-from-env"}
    assert defaulted == []
    summary = "\n".join(app_secret_summary())
    assert not any(v in summary for v in given.values()) and all(name in summary for name in given)
    assert consumer_secret_from_env() == ("cs-from-env", False)  # what `xrelay send` signs with


def test_the_stack_holds_the_json_app_secret(stack):
    assert stored_app_secret(stack) == app_secret_from_env()[0]
    name = client("secretsmanager").describe_secret(SecretId=stack.environment("CrcFunction")["X_APP_SECRET_ARN"])
    assert name["Name"] == "xrelay/x-app"
    assert stack.parameters()["XAppSecretArn"] == stack.environment("IntakeFunction")["X_APP_SECRET_ARN"]


def test_provisioning_again_updates_the_secret(fresh, monkeypatch):
    first = fresh()
    first.provision()
    monkeypatch.setenv("X_BEARER_TOKEN", "bt-second-run")
    monkeypatch.setenv("X_CLIENT_ID", "cid-second-run")
    again = fresh()
    again.provision()
    secret = stored_app_secret(again)
    assert (secret["bearer_token"], secret["client_id"]) == ("bt-second-run", "cid-second-run")
    assert again.environment("CrcFunction")["X_APP_SECRET_ARN"] == first.environment("CrcFunction")["X_APP_SECRET_ARN"]


def test_x_api_base_url_is_the_parameter_unless_overridden(fresh, monkeypatch):
    stack = fresh()
    stack.provision()
    assert stack.environment("ReconcileFunction")["X_API_BASE_URL"] == "https://api.x.com"

    monkeypatch.setenv("X_API_BASE_URL", "http://127.0.0.1:8999")
    overridden = fresh()
    assert overridden.environment("ReconcileFunction")["X_API_BASE_URL"] == "http://127.0.0.1:8999"
    assert "X_API_BASE_URL" not in overridden.environment("CrcFunction")  # only where the template sets it


def test_stack_name_is_the_local_stacks_own(fresh):
    other = fresh("xrelay-other")
    other.provision()
    env = other.environment("ReconcileFunction")
    assert env["STACK_NAME"] == "xrelay-other"
    assert env["STATE_TABLE"] == other.stack.physical("StateTable")
    assert env["POWERTOOLS_SERVICE_NAME"] == "reconcile"
    assert env["X_APP_SECRET_ARN"].split(":secret:", 1)[1].startswith("xrelay-other/x-app")


def test_reconcile_function_is_invokable_by_name_and_provisions_nothing(stack):
    """`xrelay invoke ReconcileFunction` is accepted; the schedule is not a local resource."""
    from xrelay.tools.cli import template as tpl

    assert "ReconcileFunction" in tpl.functions(stack.template)
    with pytest.raises(LookupError, match="ReconcileFunction"):
        stack.invoke("NoSuchFunction", {})
    assert not any("Reconcile" in logical_id for logical_id in stack.stack.resources)


def test_rate_schedules_run_their_functions_locally_and_cron_ones_are_listed_not_run(stack, monkeypatch):
    import threading

    from xrelay.tools.cli import template as tpl

    assert tpl.rate_seconds("rate(5 minutes)") == 300 and tpl.rate_seconds("rate(1 hour)") == 3600
    assert tpl.rate_seconds("cron(0 12 * * ? *)") is None
    assert {(f, e) for f, e, _ in stack.scheduled()} == {("ReconcileFunction", "rate(5 minutes)"),
                                                         ("ReplayFunction", "rate(5 minutes)")}

    invoked: list[tuple[str, str]] = []
    stop = threading.Event()

    def fake_invoke(function, event):
        invoked.append((function, event["detail-type"]))
        if len(invoked) >= 2:
            stop.set()
        raise RuntimeError("a failing run does not stop the schedule")

    monkeypatch.setattr(stack, "invoke", fake_invoke)
    threads = stack.schedulers(stop, first_delay=0.01)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(invoked) == [("ReconcileFunction", "Scheduled Event"), ("ReplayFunction", "Scheduled Event")]
    assert not any(thread.is_alive() for thread in threads)


def test_the_local_scheduled_event_is_what_the_functions_accept(fake_x, stack):
    from xrelay.tools.local.local import scheduled_event

    assert stack.invoke("ReconcileFunction", scheduled_event("ReconcileFunction"))["ok"]
    assert stack.invoke("ReplayFunction", scheduled_event("ReplayFunction"))["ok"]


def test_filter_patterns_match_as_lambda_event_filtering_does():
    from xrelay.tools.local.local import matches

    insert = {"eventName": "INSERT", "dynamodb": {"NewImage": {"pk": {"S": "post-ref#1"}}}}
    assert matches({"eventName": ["INSERT"]}, insert)
    assert not matches({"eventName": ["INSERT"]}, {**insert, "eventName": "MODIFY"})
    assert matches({"dynamodb": {"NewImage": {"pk": {"S": [{"prefix": "post-ref#"}]}}}}, insert)
    assert not matches({"dynamodb": {"NewImage": {"record": [{"exists": True}]}}}, insert)
    assert matches({"eventName": [{"anything-but": ["REMOVE"]}]}, insert)
    assert not matches({"dynamodb": {"OldImage": {"pk": {"S": ["x"]}}}}, insert)


def test_the_publisher_is_not_started_for_a_redaction_s_modify(stack, monkeypatch):
    """The template's FilterCriteria, honoured by the local poller as by Lambda."""
    from conftest import fixture_bytes
    from helpers import post, published_keys
    from xrelay.tools.cli import template as tpl

    (props,) = [p for f, _, p in tpl.stream_sources(stack.template) if f == "PublisherFunction"]
    assert props["FilterCriteria"]["Filters"] == [{"Pattern": '{"eventName": ["INSERT"]}'}]
    assert post(stack, fixture_bytes("xaa/01_post.create.json"))[0] == 200
    invocations: list[int] = []
    real = stack.invoke
    monkeypatch.setattr(stack, "invoke", lambda fn, ev: invocations.append(len(ev["Records"])) or real(fn, ev))
    stack.drain()
    assert invocations == [1]
    (key,) = published_keys(stack)
    client("dynamodb").update_item(TableName=stack.stack.physical("EventsTable"), Key={"pk": {"S": key}},
                                   UpdateExpression="SET redacted_at = :t", ExpressionAttributeValues={":t": {"S": "x"}})
    stack.drain()
    assert invocations == [1]  # the MODIFY was read and dropped, the function not started

"""ReconcileFunction as deployed: the template's handler, environment and secrets, X over real HTTP.

The fake X is served on a local port and the function finds it through ``X_API_BASE_URL``, the
override local runs use; everything else (state table, app secret, user secrets) is the stack's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conftest import ALICE, BOB
from conftest import WEBHOOK_URL as URL
from helpers import emf, values
from xrelay.storage.store import StateStore
from xrelay.subscriptions.users import StoredUser, UserCredentialStore
from xrelay.tools.cli.cli import main


def scheduled_event() -> dict:
    from conftest import ROOT

    return json.loads((ROOT / "events" / "ReconcileFunction.json").read_text())


def metrics_of(capsys) -> dict[str, float]:
    """Each metric's total over the EMF lines printed so far."""
    blobs = emf(capsys)
    names = {m["Name"] for blob in blobs for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    return {name: sum(values(blobs, name)) for name in names}


def test_the_scheduled_function_reconciles_over_http_and_reports_metrics(wired, fake_x, capsys):
    creds = fake_x.register_oauth1_user(ALICE)
    UserCredentialStore("xrelay").put(StoredUser(ALICE, creds))
    StateStore(wired.stack.physical("StateTable")).mark_authorized(ALICE, datetime.now(UTC))
    capsys.readouterr()

    result = wired.invoke("ReconcileFunction", scheduled_event())
    assert result["ok"] and (result["created"], result["webhook_valid"]) == (2, True)
    (hook,) = fake_x.webhooks
    assert fake_x.aaa_subscriptions[hook] == [ALICE]
    assert [(s["event_type"], s["tag"]) for s in fake_x.xaa_subscriptions.values()] == [("post.create", "posts")]
    metrics = metrics_of(capsys)
    assert (metrics["SubscriptionsCreated"], metrics["SubscriptionsDesired"], metrics["WebhookValid"],
            metrics["ReconcileFailed"]) == (2, 2, 1, 0)

    fake_x.requests.clear()
    again = wired.invoke("ReconcileFunction", scheduled_event())
    assert again["ok"] and again["drift"] == 0 and fake_x.write_requests == []


def test_without_a_desired_state_the_run_is_idle_not_failed(fake_x, stack, capsys):
    result = stack.invoke("ReconcileFunction", scheduled_event())
    assert result["ok"] and "subscriptions apply" in result["idle"] and fake_x.requests == []
    assert metrics_of(capsys)["ReconcileFailed"] == 0


def test_x_unreachable_is_a_failed_run_with_a_metric_not_a_crash(fake_x, monkeypatch, stack, tmp_path, capsys):
    monkeypatch.setenv("X_API_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    (tmp_path / "x.yaml").write_text(f"webhook:\n  url: {URL}\n")
    assert main(["subscriptions", "apply", str(tmp_path / "x.yaml")]) == 0
    capsys.readouterr()
    result = stack.invoke("ReconcileFunction", scheduled_event())
    assert not result["ok"] and "TransportError" in result["error"]
    metrics = metrics_of(capsys)
    assert (metrics["ReconcileFailed"], metrics["XApiErrors"]) == (1, 1)


def test_a_rate_limited_read_ends_the_run_quietly(wired, fake_x, capsys):
    fake_x.rate_limits["GET /2/webhooks"] = 0  # X answers the list with 429
    capsys.readouterr()
    result = wired.invoke("ReconcileFunction", scheduled_event())
    assert result["rate_limited"] is True and result["created"] == 0
    metrics = metrics_of(capsys)
    assert metrics["XApiRateLimited"] == 1 and metrics["XApiErrors"] >= 1


def test_subscriptions_status_prints_desired_actual_and_the_next_actions(wired, fake_x, capsys):
    hook = fake_x.add_webhook(URL)
    fake_x.add_xaa_subscription("post.create", {"user_id": BOB}, tag="old", webhook_id=hook)
    fake_x.requests.clear()
    capsys.readouterr()
    assert main(["subscriptions", "status"]) == 0
    out = capsys.readouterr().out
    assert fake_x.write_requests == []
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "update tag" in lines[f"XAA post.create {{user_id: {BOB}}}"]
    assert "needs authorization" in lines[f"AAA user {ALICE}"]
    assert "valid" in lines["webhook"]

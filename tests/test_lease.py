"""The lease that keeps reconcile and replay runs from overlapping without reserved concurrency."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from conftest import ROOT
from xrelay.aws import client
from xrelay.recovery.outages import Ledger
from xrelay.storage import lease
from xrelay.tools.local.samples import load_event

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def state_table(stack) -> str:
    return stack.stack.physical("StateTable")


def test_one_holder_at_a_time_until_release_or_expiry(stack):
    table = state_table(stack)
    assert lease.acquire(table, "reconcile", "run-1", 120, now=NOW)
    assert not lease.acquire(table, "reconcile", "run-2", 120, now=NOW + timedelta(seconds=60))
    assert lease.holder_of(table, "reconcile", now=NOW) == "run-1"
    # other names are independent
    assert lease.acquire(table, "replay", "run-9", 60, now=NOW)
    # a run that outlived its lease cannot free its successor's
    expired = NOW + timedelta(seconds=120 + lease.CLOCK_MARGIN_S + 1)
    assert lease.acquire(table, "reconcile", "run-2", 120, now=expired)
    assert not lease.release(table, "reconcile", "run-1")
    assert lease.holder_of(table, "reconcile", now=expired) == "run-2"
    assert lease.release(table, "reconcile", "run-2")
    assert lease.holder_of(table, "reconcile", now=expired) is None
    assert lease.acquire(table, "reconcile", "run-3", 120, now=expired)


def test_exclusive_releases_even_when_the_block_raises(stack):
    table = state_table(stack)
    try:
        with lease.exclusive(table, "replay", "run-1", 60) as held:
            assert held
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    with lease.exclusive(table, "replay", "run-2", 60) as held:
        assert held
        with lease.exclusive(table, "replay", "run-3", 60) as inner:
            assert not inner
    assert lease.holder_of(table, "replay") is None


def test_the_lease_item_expires_through_the_tables_ttl(stack):
    table = state_table(stack)
    lease.acquire(table, "reconcile", "run-1", 100, now=NOW)
    item = client("dynamodb").get_item(TableName=table, Key={"pk": {"S": "lease"}, "sk": {"S": "reconcile"}})["Item"]
    until = int(NOW.timestamp()) + 100 + lease.CLOCK_MARGIN_S
    assert int(item["lease_until"]["N"]) == until
    assert int(item["expires_at"]["N"]) == until + lease.KEEP_S


def test_a_reconcile_that_finds_the_lease_taken_does_nothing(wired, fake_x):
    event = json.loads((ROOT / "events" / "ReconcileFunction.json").read_text())
    assert lease.acquire(state_table(wired), "reconcile", "a-running-run", 120)
    result = wired.invoke("ReconcileFunction", event)
    assert result["ok"] and "still running" in result["idle"] and fake_x.requests == []
    assert lease.holder_of(state_table(wired), "reconcile") == "a-running-run"  # not taken over, not freed

    lease.release(state_table(wired), "reconcile", "a-running-run")
    result = wired.invoke("ReconcileFunction", event)
    assert result["ok"] and result["idle"] is None and fake_x.webhooks  # the next run does the work
    assert lease.holder_of(state_table(wired), "reconcile") is None  # and gives the lease back


def test_a_replay_that_finds_the_lease_taken_still_records_its_alarm_change(fake_x, stack):
    # The sample is dated relative to now ({{now-20m}} placeholders, as `xrelay invoke` fills them).
    event = load_event(ROOT / "events" / "ReplayFunction-alarm.json")
    assert lease.acquire(state_table(stack), "replay", "a-running-run", 60)
    result = stack.invoke("ReplayFunction", event)
    assert result["ok"] and "still running" in result["idle"] and result["alarm_change"]["new"] is True
    assert fake_x.requests == []
    assert Ledger(state_table(stack)).read().intervals  # the outage is in the ledger for the holder to replay
    assert lease.holder_of(state_table(stack), "replay") == "a-running-run"

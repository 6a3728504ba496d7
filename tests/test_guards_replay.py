"""The replay plan with more than one webhook in the ledger (issue 19: every other test has one).

X runs one replay job at a time per webhook, and a job replays to the webhook it was asked for: a
neighbour's job must neither block, recover, be resubmitted nor be counted as ours.
"""

from __future__ import annotations

from datetime import timedelta

from test_outages import at, ledger  # noqa: F401  (the fixture)
from xrelay.recovery.outages import ReplayPolicy
from xrelay.recovery.replay import plan_replays

OURS, NEIGHBOUR = "1234567890", "9876543210"
POLICY = ReplayPolicy(margin=timedelta(minutes=5), min_age=timedelta(minutes=10), max_window=timedelta(hours=2),
                      job_timeout=timedelta(hours=1), horizon_lead=timedelta(hours=3))
OUTAGE_WINDOW = (at(-3, -5), at(-2, 5))  # a one-hour outage at -3h, padded by the margin


def declared(ledger):  # noqa: F811
    ledger.declare(at(-3), at(-2), reason="outage")


def test_a_neighbours_running_job_neither_blocks_nor_recovers_ours(ledger):  # noqa: F811
    declared(ledger)
    ledger.record_job("theirs", NEIGHBOUR, OUTAGE_WINDOW, at(-0, -10))
    plan = plan_replays(ledger.read(), OURS, at(), POLICY)
    assert plan.running == () and plan.waiting is None
    assert plan.next_window == OUTAGE_WINDOW and plan.resubmission_of == ()
    assert plan.unrecovered_minutes == 70
    theirs = plan_replays(ledger.read(), NEIGHBOUR, at(), POLICY)
    assert [j.job_id for j in theirs.running] == ["theirs"] and theirs.next_window is None
    assert "theirs" in theirs.waiting and "one job at a time per webhook" in theirs.waiting


def test_a_neighbours_complete_job_recovers_nothing_of_ours_and_is_not_counted_as_ours(ledger):  # noqa: F811
    declared(ledger)
    ledger.record_job("theirs", NEIGHBOUR, OUTAGE_WINDOW, at(-1))
    ledger.record_job_status("theirs", "Complete", at=at(-0, -30))
    plan = plan_replays(ledger.read(), OURS, at(), POLICY)
    assert plan.next_window == OUTAGE_WINDOW and plan.unrecovered_minutes == 70 and plan.to_count == ()
    theirs = plan_replays(ledger.read(), NEIGHBOUR, at(), POLICY)
    assert theirs.next_window is None and theirs.unrecovered_minutes == 0
    assert [(j.job_id, status) for j, status in theirs.to_count] == [("theirs", "complete")]


def test_only_our_unfinished_overlapping_jobs_are_resubmitted(ledger):  # noqa: F811
    declared(ledger)
    ledger.record_job("ours-incomplete", OURS, OUTAGE_WINDOW, at(-1, -30))
    ledger.record_job_status("ours-incomplete", "Incomplete", at=at(-1))
    ledger.record_job("ours-timed-out", OURS, (at(-2, -30), at(-2, 5)), at(-1, -20))  # no report, past the hour
    ledger.record_job("ours-elsewhere", OURS, (at(-9), at(-8)), at(-7))  # another stretch
    ledger.record_job_status("ours-elsewhere", "Incomplete", at=at(-6))
    ledger.record_job("theirs-incomplete", NEIGHBOUR, OUTAGE_WINDOW, at(-1, -30))
    ledger.record_job_status("theirs-incomplete", "Incomplete", at=at(-1))
    plan = plan_replays(ledger.read(), OURS, at(), POLICY)
    assert plan.next_window == OUTAGE_WINDOW
    assert sorted(plan.resubmission_of) == ["ours-incomplete", "ours-timed-out"]
    assert sorted(j.job_id for j, _ in plan.to_count) == ["ours-elsewhere", "ours-incomplete", "ours-timed-out"]


def test_a_window_is_at_most_max_window_long(ledger):  # noqa: F811
    ledger.declare(at(-8), at(-3), reason="long")
    plan = plan_replays(ledger.read(), OURS, at(), POLICY)
    assert plan.next_window == (at(-8, -5), at(-6, -5))
    assert plan.todo == ((at(-8, -5), at(-2, -55)),) and plan.unrecovered_minutes == 310


def test_a_young_outage_waits_and_the_wait_says_the_minimum_age(ledger):  # noqa: F811
    ledger.declare(at(-1), at(-0, -3), reason="young")  # closed 3 minutes ago: padded, it ends in 2
    plan = plan_replays(ledger.read(), OURS, at(), POLICY)
    assert plan.next_window is None and plan.ready == ()
    # padded from 10:55, counted up to the newest replayable minute (11:50): 55 minutes
    assert plan.waiting == ("55 minutes wait for their outage to end and be 10 minutes old, "
                            "or to near X's 24-hour horizon")


def test_an_open_outage_is_replayed_in_parts_only_once_strictly_within_the_horizon_lead(ledger):  # noqa: F811
    """``horizon_lead``: replayed before it ends once its oldest minute is closer than that to X's horizon."""
    now = at()
    oldest = POLICY.oldest_replayable(now)  # 24 h back + 5 min safety
    ledger.open("alarm", "long", oldest + POLICY.horizon_lead + POLICY.margin)  # padded: exactly at the lead
    plan = plan_replays(ledger.read(), OURS, now, POLICY)
    assert plan.todo and plan.ready == () and plan.next_window is None
    later = plan_replays(ledger.read(), OURS, now + timedelta(minutes=1), POLICY)
    assert later.ready and later.next_window[0] == oldest + POLICY.horizon_lead


def test_a_started_job_is_reported_with_xs_from_and_to_dates(stack):
    from test_replay import World, hm

    world = World(stack)
    world.ledger.declare(hm("09:00"), hm("10:00"))
    report = world.run()
    (started,) = report.started
    assert (started["from_date"], started["to_date"]) == ("202611260855", "202611261005")
    assert world.calls() == [(200, "202611260855", "202611261005")]


def test_without_a_webhook_id_the_replay_finds_ours_by_its_url_among_neighbours(fake_x, stack, tmp_path):
    """No WebhookId Parameter and no id seen by the reconcile yet: X's list is searched for the declared URL."""
    import json as _json
    from datetime import UTC, datetime

    from conftest import WEBHOOK_URL, apply_desired
    from test_replay_function import sample
    from xrelay.recovery.outages import Ledger

    apply_desired(tmp_path, f"webhook:\n  url: {WEBHOOK_URL}\n")
    fake_x.webhook_limit = 3
    fake_x.add_webhook("https://a.example.com/webhook")  # sorts before ours
    ours = fake_x.add_webhook(WEBHOOK_URL)
    fake_x.add_webhook(WEBHOOK_URL + "2")  # sorts after ours
    now = datetime.now(UTC)
    Ledger(stack.stack.physical("StateTable")).declare(now - timedelta(hours=2), now - timedelta(hours=1))
    result = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert result["webhook_id"] == ours and result["jobs_started"] == 1
    assert [_json.loads(r.body)["webhook_id"] for r in fake_x.requests if r.path == "/2/webhooks/replay"] == [ours]


def test_a_lost_span_is_logged_with_its_own_from_and_to(stack, caplog):
    from test_replay import World, hm

    world = World(stack)
    world.ledger.declare(hm("09:00", day=25), hm("10:00", day=25))  # beyond the 24-hour horizon at noon on the 26th
    report = world.run()
    assert report.minutes_lost == 70
    (record,) = [r for r in caplog.records if "beyond X's 24-hour replay horizon" in r.getMessage()]
    assert (record.__dict__["from"], record.__dict__["to"]) == ("2026-11-25T08:55:00.000Z", "2026-11-25T10:05:00.000Z")


def test_the_replay_finds_our_webhook_when_x_echoes_its_host_in_another_case(fake_x, stack, tmp_path):
    """X may echo the URL with the scheme and host cased otherwise: the replay matches it as the reconcile does."""
    from datetime import UTC, datetime

    from conftest import WEBHOOK_URL, apply_desired
    from test_replay_function import sample
    from xrelay.recovery.outages import Ledger

    apply_desired(tmp_path, f"webhook:\n  url: {WEBHOOK_URL}\n")
    scheme, rest = WEBHOOK_URL.split("://", 1)
    host, path = rest.split("/", 1)
    ours = fake_x.add_webhook(f"{scheme.upper()}://{host.upper()}/{path}")
    now = datetime.now(UTC)
    Ledger(stack.stack.physical("StateTable")).declare(now - timedelta(hours=2), now - timedelta(hours=1))
    result = stack.invoke("ReplayFunction", sample("ReplayFunction"))
    assert result["webhook_id"] == ours and result["jobs_started"] == 1

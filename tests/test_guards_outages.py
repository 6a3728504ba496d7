"""The outage ledger's values with units, and its jobs of more than one webhook (issue 19).

No other test reads an ``expires_at``, a boundary of the policy's limits or the job of a neighbouring
webhook: a ledger that never expired anything, expired a late write early, or counted another
webhook's replay as ours would pass them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from test_outages import POLICY, at, ledger  # noqa: F401  (the fixture)
from xrelay.recovery.outages import LEDGER_RETENTION, PK, ReplayPolicy, padded_span, span_minutes

OURS, NEIGHBOUR = "1234567890", "9876543210"


def raw(ledger, sk_prefix: str) -> dict:  # noqa: F811
    (item,) = [i for i in ledger._items() if i["sk"]["S"].startswith(sk_prefix)]
    return item


def expiry(item: dict) -> datetime:
    return datetime.fromtimestamp(int(item["expires_at"]["N"]), UTC)


# --- expires_at: thirty days after the later of the event and the write ---------------------------


def test_a_job_expires_thirty_days_after_its_submission_and_its_dates_are_xs_minutes(ledger):  # noqa: F811
    submitted = datetime.now(UTC).replace(microsecond=0)
    ledger.record_job("7", OURS, (at(-3, 0, 0), at(-2, 0, 0)), submitted)
    item = raw(ledger, "job#7")
    assert expiry(item) == submitted + timedelta(days=30) == submitted + LEDGER_RETENTION
    assert (item["from_date"]["S"], item["to_date"]["S"]) == ("202611260900", "202611261000")
    assert item["webhook_id"]["S"] == OURS


def test_a_report_before_the_job_sets_its_expiry_and_a_later_one_does_not_push_it(ledger):  # noqa: F811
    first = datetime.now(UTC).replace(microsecond=0)
    ledger.record_job_status("8", "Incomplete", webhook_id=OURS, at=first, description="x" * 600)
    item = raw(ledger, "job#8")
    assert expiry(item) == first + LEDGER_RETENTION
    assert len(item["x_description"]["S"]) == 500 and item["x_rank"]["N"] == "1"
    ledger.record_job_status("8", "Complete", at=first + timedelta(days=3))
    item = raw(ledger, "job#8")
    assert expiry(item) == first + LEDGER_RETENTION and item["x_rank"]["N"] == "2"


def test_a_late_write_expires_from_now_and_a_future_dated_one_from_its_date(ledger):  # noqa: F811
    now = datetime.now(UTC)
    ledger.open("alarm", "old-alarm", now - timedelta(days=40))  # an event older than the retention itself
    assert abs(expiry(raw(ledger, "change#alarm#old-alarm")) - (now + LEDGER_RETENTION)) < timedelta(minutes=1)
    ledger.declare(now + timedelta(days=2), now + timedelta(days=3), reason="planned")
    item = raw(ledger, "declared#")
    assert abs(expiry(item) - (now + timedelta(days=2) + LEDGER_RETENTION)) < timedelta(minutes=1)
    assert item["pk"]["S"] == PK and item["kind"]["S"] == "declared"


# --- more than one webhook ------------------------------------------------------------------------


def test_each_webhooks_jobs_count_for_it_alone_and_all_of_them_without_one(ledger):  # noqa: F811
    ledger.declare(at(-5), at(-4), reason="outage")
    window = (at(-5, -5), at(-4, 5))
    ledger.record_job("mine", OURS, window, at(-3))
    ledger.record_job("theirs", NEIGHBOUR, window, at(-0, -20))
    ledger.record_job_status("theirs", "Complete", at=at(-0, -10))

    (ours,) = ledger.intervals(at(), POLICY, OURS)
    assert [j.job_id for j in ours.jobs] == ["mine"] and ours.status == "pending"  # ours timed out
    (theirs,) = ledger.intervals(at(), POLICY, NEIGHBOUR)
    assert [j.job_id for j in theirs.jobs] == ["theirs"] and theirs.status == "recovered"
    (every,) = ledger.intervals(at(), POLICY)
    assert sorted(j.job_id for j in every.jobs) == ["mine", "theirs"] and every.status == "recovered"


def test_a_report_naming_another_webhook_never_moves_a_recorded_job(ledger):  # noqa: F811
    ledger.record_job("9", OURS, (at(-3), at(-2)), at(-1))
    ledger.record_job_status("9", "Complete", webhook_id=NEIGHBOUR, at=at())
    (job,) = ledger.read().jobs
    assert (job.webhook_id, job.x_state) == (OURS, "Complete")


# --- margins, rounding and the policy's limits ----------------------------------------------------


def test_the_margin_pads_both_sides_and_rounds_outwards_to_whole_minutes(ledger):  # noqa: F811
    ledger.declare(at(-5, 0, 30), at(-4, 0, 30), reason="seconds")
    (interval,) = ledger.read().intervals
    span = padded_span(interval, at(), ReplayPolicy(margin=timedelta(minutes=3)))
    assert span == (at(-5, -3), at(-4, 4)) and span_minutes(span) == 67
    ledger.open("alarm", "still-down", at(-1, 0, 1))
    still = [i for i in ledger.read().intervals if i.end is None][0]
    assert padded_span(still, at(0, 0, 1), POLICY) == (at(-1, -5), at(0, 1))  # open: up to now, rounded up
    assert span_minutes((at(1), at(0))) == 0


def test_the_replayable_range_is_rounded_inwards():
    now = at(0, 0, 30)
    assert POLICY.oldest_replayable(now) == at(-24, 6)  # 24 h back + 5 min safety, rounded up
    assert POLICY.newest_replayable(now) == at(0, -10)  # 10 min old, rounded down
    assert POLICY.oldest_replayable(at()) == at(-24, 5)


@pytest.mark.parametrize("limits,ok", [
    ({"max_window": timedelta(minutes=1)}, True), ({"margin": timedelta(0), "min_age": timedelta(0)}, True),
    ({"job_timeout": timedelta(seconds=1)}, True), ({"job_timeout": timedelta(seconds=-1)}, False),
    ({"horizon_lead": timedelta(hours=23, minutes=44)}, True),  # + 5 min safety + 10 min age < 24 h
    ({"horizon_lead": timedelta(hours=23, minutes=45)}, False),  # exactly the horizon
    ({"horizon_safety": timedelta(minutes=-1)}, False), ({"min_age": timedelta(minutes=-1)}, False),
])
def test_the_policy_limits_hold_exactly_at_their_boundaries(limits, ok):
    if ok:
        assert ReplayPolicy(**limits)
    else:
        with pytest.raises(ValueError):
            ReplayPolicy(**limits)


# --- what a job's status means for its interval ----------------------------------------------------


def test_only_a_running_job_holds_back_the_lost_minutes_and_makes_an_interval_replaying(ledger):  # noqa: F811
    """An Incomplete or timed-out job beyond X's horizon recovers nothing and is not in flight: those minutes
    are lost. A running one still may recover them."""
    ledger.declare(at(-30), at(-29), reason="beyond")
    ledger.record_job("failed", OURS, (at(-30, -5), at(-29, 5)), at(-26))
    ledger.record_job_status("failed", "Incomplete", at=at(-25))
    (beyond,) = ledger.intervals(at(), POLICY, OURS)
    assert (beyond.status, beyond.lost_minutes, beyond.recovered_minutes) == ("lost", 70, 0)

    ledger.record_job("late", OURS, (at(-30, -5), at(-29, 5)), at(-0, -10))  # no report yet: running
    (held,) = ledger.intervals(at(), POLICY, OURS)
    assert (held.status, held.lost_minutes, held.pending_minutes) == ("replaying", 0, 70)
    listed = held.as_dict(at(), POLICY)
    assert {j["job_id"]: (j["status"], j["submitted_at"]) for j in listed["jobs"]} == {
        "failed": ("incomplete", "2026-11-25T10:00:00.000Z"), "late": ("running", "2026-11-26T11:50:00.000Z")}

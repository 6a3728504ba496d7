"""The outage ledger: its three sources, idempotency, order tolerance, job reports and statuses.

A bare state table in moto (the template's key schema) keeps these fast; the replay scenarios
against the fake X and the whole stack are in test_replay.py.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from xrelay.aws import client
from xrelay.recovery.outages import (
    AlarmChange,
    Interval,
    Ledger,
    ReplayPolicy,
    ceil_minute,
    floor_minute,
    merge_groups,
    merge_spans,
    parse_alarm_event,
    subtract_spans,
)
from xrelay.storage.store import StateStore

T = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ALARM = "xrelay-IntakeErrors"
POLICY = ReplayPolicy()


def hm(text: str) -> datetime:
    return datetime.strptime(f"2026-11-26 {text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T + timedelta(hours=hours, minutes=minutes, seconds=seconds)


@pytest.fixture
def ledger():
    with mock_aws():
        client.cache_clear()
        ddb = boto3.client("dynamodb")
        ddb.create_table(TableName="state", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                    {"AttributeName": "sk", "KeyType": "RANGE"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}])
        yield Ledger("state", ddb)
    client.cache_clear()


def spans_of(ledger: Ledger, source: str = "alarm", ref: str = ALARM) -> list[tuple[datetime, datetime | None]]:
    return [(i.start, i.end) for i in ledger.read().intervals if (i.source, i.ref) == (source, ref)]


def alarm_event(state: str, when: str, name: str = ALARM) -> dict:
    """An EventBridge ``CloudWatch Alarm State Change`` as AWS documents it."""
    return {
        "version": "0", "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92", "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch", "account": "123456789012", "time": when[:19] + "Z", "region": "us-east-1",
        "resources": [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "configuration": {"metrics": [], "description": "intake answers 5xx"},
            "previousState": {"reason": "...", "timestamp": "2026-11-26T09:00:00.000+0000", "value": "OK"},
            "state": {"reason": "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).",
                      "timestamp": when, "value": state},
        },
    }


# --- alarm state changes ----------------------------------------------------------------------------


def test_alarm_opens_at_the_state_timestamp_and_ok_closes_and_repeats_change_nothing(ledger):
    opened = parse_alarm_event(alarm_event("ALARM", "2026-11-26T10:03:27.985+0000"))
    assert opened == AlarmChange(ALARM, "ALARM", datetime(2026, 11, 26, 10, 3, 27, 985000, tzinfo=UTC),
                                 "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).")
    assert ledger.record_alarm_change(opened) is True
    assert ledger.record_alarm_change(opened) is False  # EventBridge delivered it twice
    assert spans_of(ledger) == [(opened.at, None)]

    closed = parse_alarm_event(alarm_event("OK", "2026-11-26T10:41:05.000+0000"))
    assert ledger.record_alarm_change(closed) is True
    assert ledger.record_alarm_change(closed) is False
    assert spans_of(ledger) == [(opened.at, closed.at)]
    (interval,) = ledger.read().intervals
    assert interval.key == f"alarm#{ALARM}#2026-11-26T10:03:27.985Z" and interval.reason.startswith("Threshold")


def test_insufficient_data_is_ignored_and_other_events_are_refused(ledger):
    assert ledger.record_alarm_change(parse_alarm_event(alarm_event("INSUFFICIENT_DATA", "2026-11-26T10:00:00Z"))) \
        is None
    assert ledger.read().intervals == []
    for bad in ({"detail-type": "Scheduled Event", "detail": {}},
                {"detail-type": "CloudWatch Alarm State Change", "detail": {"state": {"value": "ALARM"}}},
                {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "a", "state": {}}},
                alarm_event("ALARM", "2026-11-26T10:00:00")):  # a time without a zone
        with pytest.raises(ValueError):
            parse_alarm_event(bad)


def test_alarm_changes_in_any_order_give_the_same_intervals(ledger):
    changes = [("open", at(-4)), ("close", at(-3)), ("open", at(-2)), ("close", at(-1))]
    for n, order in enumerate(itertools.permutations(changes)):
        name = f"alarm-{n}"
        for change, when in order:
            (ledger.open if change == "open" else ledger.close)("alarm", name, when)
        assert spans_of(ledger, ref=name) == [(at(-4), at(-3)), (at(-2), at(-1))], order


def test_an_ok_that_overtook_its_alarm_waits_for_it_and_a_second_alarm_keeps_the_first_start(ledger):
    ledger.close("alarm", ALARM, at(-1))
    assert spans_of(ledger) == []  # nothing open to close yet
    ledger.open("alarm", ALARM, at(-2))
    assert spans_of(ledger) == [(at(-2), at(-1))]

    ledger.open("alarm", "other", at(-5))
    ledger.open("alarm", "other", at(-4))  # no OK seen between: still the same outage
    assert spans_of(ledger, ref="other") == [(at(-5), None)]


def test_state_changes_need_an_aware_time_and_a_ref_and_are_not_for_operators_or_webhooks(ledger):
    with pytest.raises(ValueError):
        ledger.open("alarm", ALARM, datetime(2026, 11, 26, 10, 0))
    with pytest.raises(ValueError):
        ledger.open("alarm", "", at())
    for source in ("operator", "webhook", ""):
        with pytest.raises(ValueError):
            ledger.close(source, ALARM, at())


# --- the other two sources ------------------------------------------------------------------------


def test_operator_declarations_are_idempotent_and_checked(ledger):
    assert ledger.declare(at(-4), at(-3, 30), ref="alice", reason="planned maintenance") is True
    assert ledger.declare(at(-4), at(-3, 30), ref="bob") is False  # the same interval twice is one
    (interval,) = ledger.read().intervals
    assert (interval.source, interval.ref, interval.start, interval.end, interval.reason) == (
        "operator", "alice", at(-4), at(-3, 30), "planned maintenance")
    with pytest.raises(ValueError):
        ledger.declare(at(-3), at(-3))
    with pytest.raises(ValueError):
        ledger.declare(datetime(2026, 11, 26, 8, 0), at(-3))


def test_the_reconciles_webhook_outages_are_read_as_they_are(ledger):
    state = StateStore(ledger.table, ledger.ddb)
    url = "https://abc.execute-api.us-east-1.amazonaws.com/webhook"
    state.record_webhook_check(url, "1234567890", "valid", at(-6))
    state.record_webhook_check(url, "1234567890", "invalid", at(-5), "CrcValidationFailed")
    assert spans_of(ledger, "webhook", "1234567890") == [(at(-6), None)]  # from the last time it was valid
    state.record_webhook_check(url, "1234567890", "valid", at(-4))
    (interval,) = ledger.read().intervals
    assert (interval.start, interval.end, interval.reason, interval.key) == (
        at(-6), at(-4), "CrcValidationFailed", "webhook#2026-11-26T06:00:00.000Z")


# --- jobs as X reports them -----------------------------------------------------------------------


def test_a_job_report_may_come_first_and_complete_is_never_undone(ledger):
    window = (at(-3), at(-2))
    # X's report overtook the ReplayFunction's write: kept, and the write fills in the rest.
    assert ledger.record_job_status("1995507200941260800", "Complete", webhook_id="1234567890",
                                    description="Job completed successfully", at=at()) is True
    ledger.record_job("1995507200941260800", "1234567890", window, at(-0, -1))
    assert ledger.record_job_status("1995507200941260800", "Complete", at=at(0, 1)) is False  # redelivered
    assert ledger.record_job_status("1995507200941260800", "Incomplete", at=at(0, 2)) is False  # late, lower
    (job,) = ledger.read().jobs
    assert (job.window, job.submitted_at, job.x_state, job.reported_at, job.webhook_id) == (
        window, at(-0, -1), "Complete", at(), "1234567890")
    assert job.status(at(5), POLICY.job_timeout) == "complete"


def test_incomplete_gives_way_to_a_later_complete_and_jobs_time_out(ledger):
    ledger.record_job("7", "1234567890", (at(-3), at(-2)), at())
    (job,) = ledger.read().jobs
    assert job.status(at(1), timedelta(hours=2)) == "running"
    assert job.status(at(2), timedelta(hours=2)) == "timed out"
    assert ledger.record_job_status("7", "Incomplete", at=at(0, 5)) is True
    assert ledger.read().jobs[0].status(at(0, 6), POLICY.job_timeout) == "incomplete"
    assert ledger.record_job_status("7", "Complete", at=at(0, 7)) is True
    assert ledger.read().jobs[0].x_state == "Complete"


def test_counted_lost_and_seen_markers_are_written_once(ledger):
    ledger.record_job("7", "1234567890", (at(-3), at(-2)), at())
    assert ledger.mark_counted("7", "timed out") is True
    assert ledger.mark_counted("7", "timed out") is False
    assert ledger.mark_counted("7", "complete") is True  # a late Complete still counts
    assert ledger.mark_counted("no-such-job", "complete") is False
    assert ledger.record_lost((at(-30), at(-29)), at()) is True
    assert ledger.record_lost((at(-30), at(-29)), at()) is False
    assert ledger.mark_seen("alarm#x#t", at()) is True and ledger.mark_seen("alarm#x#t", at()) is False
    view = ledger.read()
    assert view.lost == [(at(-30), at(-29))] and view.seen == {"alarm#x#t"} and view.jobs[0].counted == "complete"


# --- statuses -------------------------------------------------------------------------------------


def test_statuses_from_open_to_recovered_lost_and_partially_lost(ledger):
    hook = "1234567890"
    ledger.open("alarm", "still-down", at(-1))
    ledger.declare(at(-2, -30), at(-2), reason="pending")  # closed, nothing replayed yet
    ledger.declare(at(-5), at(-4), reason="replaying")
    ledger.record_job("1", hook, (at(-5, -5), at(-4, 5)), at(-0, -20))
    ledger.declare(at(-8), at(-7), reason="recovered")
    ledger.record_job("2", hook, (at(-8, -5), at(-7, 5)), at(-6))
    ledger.record_job_status("2", "Complete", at=at(-5))
    ledger.declare(at(-30), at(-28), reason="lost")
    ledger.declare(at(-25), at(-23), reason="partially lost")
    ledger.record_job("3", hook, (at(-23, -55), at(-22, -55)), at(-1))
    ledger.record_job_status("3", "Complete", at=at(-0, -30))

    by_reason = {s.interval.reason or s.interval.source: s for s in ledger.intervals(at(), POLICY, hook)}
    assert {reason: s.status for reason, s in by_reason.items()} == {
        "alarm": "open", "pending": "pending", "replaying": "replaying", "recovered": "recovered",
        "lost": "lost", "partially lost": "partially lost"}
    partial = by_reason["partially lost"]
    # Padded [-25:05, -22:55): the hour that reached beyond the horizon (-23:55) is lost, the rest replayed.
    assert (partial.minutes, partial.lost_minutes, partial.recovered_minutes, partial.pending_minutes) == (
        130, 70, 60, 0)
    assert [j.job_id for j in by_reason["recovered"].jobs] == ["2"]
    listed = by_reason["replaying"].as_dict(at(), POLICY)
    assert listed["status"] == "replaying" and listed["jobs"][0]["status"] == "running"
    assert listed["span"] == ["2026-11-26T06:55:00.000Z", "2026-11-26T08:05:00.000Z"]
    # Another webhook's jobs recover nothing for this one.
    assert ledger.intervals(at(), POLICY, "999")[3].status == "pending"


# --- spans and merging ----------------------------------------------------------------------------


def interval(start: datetime, end: datetime | None, source: str = "operator") -> Interval:
    return Interval(source, "x", start, end, f"{source}#{start.isoformat()}")


def test_overlapping_and_touching_intervals_merge_and_keep_their_sources():
    policy = ReplayPolicy(margin=timedelta(minutes=5))
    groups = merge_groups([
        interval(hm("06:00"), hm("06:30"), "alarm"),
        interval(hm("06:40"), hm("07:00"), "webhook"),  # 10 minutes apart: the margins make them touch
        interval(hm("06:50"), hm("08:00"), "operator"),  # overlaps
        interval(hm("09:00"), hm("10:00"), "alarm"),  # 50 minutes apart: separate
        interval(hm("11:00"), None, "alarm"),  # open: up to now
    ], hm("12:00"), policy)
    assert [(g.span, g.closed, [m.source for m in g.members]) for g in groups] == [
        ((hm("05:55"), hm("08:05")), True, ["alarm", "webhook", "operator"]),
        ((hm("08:55"), hm("10:05")), True, ["alarm"]),
        ((hm("10:55"), hm("12:00")), False, ["alarm"]),
    ]


def test_minutes_round_outwards_and_span_arithmetic():
    assert floor_minute(at(0, 0, 59.9)) == at() and ceil_minute(at(0, 0, 0.1)) == at(0, 1)
    assert ceil_minute(at()) == at()
    assert merge_spans([(at(2), at(3)), (at(0), at(1)), (at(1), at(2)), (at(5), at(5))]) == [(at(0), at(3))]
    assert subtract_spans([(at(0), at(10))], [(at(1), at(2)), (at(-1), at(0, 30)), (at(9), at(11))]) == [
        (at(0, 30), at(1)), (at(2), at(9))]


def test_policy_from_the_environment_and_its_limits():
    policy = ReplayPolicy.from_env({"REPLAY_MARGIN_MINUTES": "3", "REPLAY_MAX_WINDOW_MINUTES": "90",
                                    "REPLAY_JOB_TIMEOUT_MINUTES": "45", "REPLAY_MIN_AGE_MINUTES": "",
                                    "REPLAY_HORIZON_LEAD_MINUTES": "120"})
    assert (policy.margin, policy.max_window, policy.job_timeout, policy.min_age, policy.horizon_lead) == (
        timedelta(minutes=3), timedelta(minutes=90), timedelta(minutes=45), timedelta(minutes=10),
        timedelta(hours=2))
    for bad in ({"margin": timedelta(minutes=-1)}, {"max_window": timedelta(seconds=30)},
                {"job_timeout": timedelta(0)}, {"horizon_lead": timedelta(hours=24)}):
        with pytest.raises(ValueError):
            ReplayPolicy(**bad)


def test_an_ok_and_an_alarm_of_the_same_instant_neither_swallow_the_next_outage_nor_get_lost():
    from xrelay.recovery.outages import CLOSE, OPEN, derive_intervals

    t = [datetime(2026, 11, 26, 9, m, tzinfo=UTC) for m in range(0, 60, 10)]
    back_to_back = [(t[0], OPEN, ""), (t[1], CLOSE, ""), (t[1], OPEN, "again"), (t[2], CLOSE, "")]
    for order in (back_to_back, back_to_back[::-1]):
        assert [(i.start, i.end) for i in derive_intervals("alarm", "a", order)] == [(t[0], t[1]), (t[1], t[2])]
    blip = [(t[3], CLOSE, ""), (t[3], OPEN, "")]
    assert [(i.start, i.end) for i in derive_intervals("alarm", "a", blip)] == [(t[3], t[3])]

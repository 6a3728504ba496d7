"""Replays against the strict fake X, with the stack's state table and its real IntakeFunction (moto).

Every scenario records outages in the ledger, moves a shared clock (ours and the fake's), runs the
replay engine as the ReplayFunction will, and lets X's ``replay_job_status`` reach the ledger the
way X sends it: a signed POST to the stack's intake.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fakex import FakeX
from helpers import client_error, post, state_items
from xrelay.observability import M
from xrelay.recovery.outages import Ledger, ReplayPolicy, parse_alarm_event
from xrelay.recovery.replay import metric_values, plan_replays, run_replays
from xrelay.storage.store import StateStore
from xrelay.subscriptions.xapi import Endpoint, XApiError

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
T = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = ReplayPolicy(margin=timedelta(minutes=5), min_age=timedelta(minutes=10), max_window=timedelta(hours=2),
                      job_timeout=timedelta(hours=1), horizon_lead=timedelta(hours=3))


def hm(text: str, day: int = 26) -> datetime:
    return datetime.strptime(f"2026-11-{day} {text}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC)


class World:
    """The fake X on our clock, the stack's ledger, and the way X reports back (intake)."""

    def __init__(self, stack, now: datetime = T):
        self.stack = stack
        self.now = now
        self.x = FakeX(clock=lambda: self.now.timestamp())
        self.hook = self.x.add_webhook(URL)
        self.ledger = Ledger(stack.stack.physical("StateTable"))

    def run(self, policy: ReplayPolicy = POLICY):
        self.x.requests.clear()
        with self.x.client() as client:
            return run_replays(self.ledger, lambda: client, self.hook, self.now, policy)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def calls(self) -> list[tuple[int, str, str]]:
        """The replay requests X received in the last run: (status, from_date, to_date)."""
        return [(r.status, r.json()["from_date"], r.json()["to_date"]) for r in self.x.requests
                if r.endpoint == "POST /2/webhooks/replay"]

    def finish(self, job_id: str, state: str = "Complete", *, deliver: bool = True) -> None:
        """X ends the job; its report reaches intake unless ``deliver`` is False (lost on the way)."""
        body = self.x.complete_replay(job_id, state)
        if deliver:
            assert post(self.stack, body)[0] == 200

    def only_started(self, report) -> str:
        (started,) = report.started
        return started["job_id"]

    def statuses(self) -> dict[str, str]:
        return {f"{s.interval.source}:{s.interval.ref}": s.status
                for s in self.ledger.intervals(self.now, POLICY, self.hook)}


@pytest.fixture
def world(stack):
    return World(stack)


def alarm(state: str, when: datetime, name: str = "xrelay-IntakeErrors") -> dict:
    return {"detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch", "time": when.isoformat(),
            "detail": {"alarmName": name, "state": {"value": state, "reason": "Threshold Crossed",
                                                    "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"}}}


def test_an_alarm_outage_is_replayed_with_the_right_window_and_format_and_complete_closes_it(world):
    world.ledger.record_alarm_change(parse_alarm_event(alarm("ALARM", hm("10:03") + timedelta(seconds=27))))
    world.ledger.record_alarm_change(parse_alarm_event(alarm("OK", hm("10:41") + timedelta(seconds=5))))

    world.now = hm("10:55")  # ended 14 minutes ago: its padded end (10:47) is not 10 minutes old yet
    early = world.run()
    assert world.calls() == [] and early.jobs_started == 0 and "minutes old" in early.waiting
    assert early.outages_opened == 1 and early.minutes_unrecovered == 49

    world.now = hm("11:00")
    report = world.run()
    # Padded by 5 minutes, from rounded down, to rounded up: every minute the outage touched.
    assert world.calls() == [(200, "202611260958", "202611261047")]
    (request,) = world.x.requests
    assert request.json() == {"webhook_id": world.hook, "from_date": "202611260958", "to_date": "202611261047"}
    assert request.auth == "app"
    job_id = world.only_started(report)
    assert (report.jobs_started, report.outages_opened, report.jobs_resubmitted) == (1, 0, 0)
    assert world.statuses() == {"alarm:xrelay-IntakeErrors": "replaying"}

    for _ in range(3):  # the job runs: no call to X at all, however often the function runs
        world.advance(minutes=5)
        waiting = world.run()
        assert world.calls() == [] and job_id in waiting.waiting

    world.finish(job_id)  # X reports Complete: intake marks the job
    done = world.run()
    assert world.calls() == [] and (done.jobs_completed, done.minutes_unrecovered, done.waiting) == (1, 0, None)
    assert world.statuses() == {"alarm:xrelay-IntakeErrors": "recovered"}
    again = world.run()
    assert metric_values(again) == {name: 0 for name in metric_values(again)}  # everything counted once


def test_overlapping_outages_from_every_source_merge_into_one_window(world):
    world.ledger.open("alarm", "xrelay-IntakeErrors", hm("08:00"))
    world.ledger.close("alarm", "xrelay-IntakeErrors", hm("08:30"))
    world.ledger.declare(hm("08:20"), hm("09:00"), ref="alice", reason="maintenance")
    # The reconcile saw the webhook invalid from 09:04 to 09:20: 4 minutes apart, the margins join them.
    state = StateStore(world.ledger.table)
    state.record_webhook_check(URL, world.hook, "valid", hm("09:04"))
    state.record_webhook_check(URL, world.hook, "invalid", hm("09:10"), "CrcValidationFailed")
    state.record_webhook_check(URL, world.hook, "valid", hm("09:20"))
    world.ledger.open("alarm", "xrelay-IntakeErrors", hm("10:00"))  # far enough apart: its own window
    world.ledger.close("alarm", "xrelay-IntakeErrors", hm("10:10"))

    world.now = hm("12:00")
    first = world.run()
    assert world.calls() == [(200, "202611260755", "202611260925")] and first.outages_opened == 4
    world.finish(world.only_started(first))
    second = world.run()
    assert world.calls() == [(200, "202611260955", "202611261015")] and second.jobs_completed == 1
    world.finish(world.only_started(second))
    world.run()
    statuses = world.ledger.intervals(world.now, POLICY, world.hook)
    assert [(s.interval.source, s.status, [j.job_id for j in s.jobs]) for s in statuses] == [
        ("alarm", "recovered", [first.started[0]["job_id"]]),
        ("operator", "recovered", [first.started[0]["job_id"]]),
        ("webhook", "recovered", [first.started[0]["job_id"]]),
        ("alarm", "recovered", [second.started[0]["job_id"]]),
    ]


def test_a_long_outage_is_split_into_windows_that_share_their_boundaries(world):
    world.ledger.declare(hm("02:00"), hm("07:30"))
    world.now = hm("12:00")
    windows = []
    for _ in range(5):
        report = world.run()
        windows += world.calls()
        if not report.started:
            break
        world.finish(world.only_started(report))
        world.advance(minutes=5)
    assert windows == [(200, "202611260155", "202611260355"), (200, "202611260355", "202611260555"),
                       (200, "202611260555", "202611260735")]
    assert world.statuses() == {"operator:operator": "recovered"}


def test_a_409_waits_and_makes_at_most_one_call_per_run(world):
    world.ledger.declare(hm("09:00"), hm("10:00"))
    world.now = hm("12:00")
    with world.x.client() as someone_else:  # a job the ledger knows nothing of (an operator by hand)
        foreign = someone_else.create_replay_job(world.hook, hm("06:00"), hm("07:00"))

    for _ in range(3):
        report = world.run()
        assert world.calls() == [(409, "202611260855", "202611261005")]
        assert report.conflict and report.jobs_started == 0 and report.errors == {"ReplayConflictError": 1}
        world.advance(minutes=5)
    assert world.ledger.read().jobs == []  # nothing recorded: X accepted nothing

    world.x.complete_replay(foreign)
    report = world.run()
    assert world.calls() == [(200, "202611260855", "202611261005")] and report.jobs_started == 1


def test_incomplete_resubmits_the_same_window(world):
    world.ledger.declare(hm("09:00"), hm("10:00"))
    world.now = hm("12:00")
    first = world.only_started(world.run())
    world.finish(first, "Incomplete")

    report = world.run()
    assert world.calls() == [(200, "202611260855", "202611261005")]
    assert (report.jobs_incomplete, report.jobs_started, report.jobs_resubmitted) == (1, 1, 1)
    second = world.only_started(report)
    assert {j.job_id: j.resubmission_of for j in world.ledger.read().jobs} == {first: (), second: (first,)}

    world.finish(second)
    assert world.run().jobs_completed == 1
    assert world.statuses() == {"operator:operator": "recovered"}


def test_a_job_that_never_reports_is_resubmitted_after_the_timeout_and_a_late_complete_still_counts(world):
    world.ledger.declare(hm("09:00"), hm("10:00"))
    world.now = hm("12:00")
    first = world.only_started(world.run())

    world.advance(minutes=59)
    assert world.run().jobs_started == 0 and world.calls() == []  # still within job_timeout
    world.advance(minutes=1)
    stuck = world.run()  # timed out, but X still runs it: X says wait
    assert (stuck.jobs_timed_out, stuck.conflict, world.calls()) == (1, True, [(409, "202611260855",
                                                                                 "202611261005")])

    world.finish(first, deliver=False)  # X finished; its report never reached us
    world.advance(minutes=5)
    report = world.run()
    assert world.calls() == [(200, "202611260855", "202611261005")]
    assert (report.jobs_started, report.jobs_resubmitted, report.jobs_timed_out) == (1, 1, 0)  # counted once

    # The first job's report turns up after all (X redelivered it): the window is recovered.
    assert post(world.stack, world.x.replay_job_status_body(first))[0] == 200
    late = world.run()
    assert late.jobs_completed == 1 and late.minutes_unrecovered == 0
    assert world.statuses() == {"operator:operator": "recovered"}


def test_beyond_24_hours_is_lost_and_an_interval_straddling_the_horizon_partially_lost(world):
    world.ledger.declare(hm("06:00", 25), hm("08:00", 25), reason="lost")  # 30 to 28 hours ago
    world.ledger.declare(hm("11:00", 25), hm("13:00", 25), reason="straddles")  # 25 to 23 hours ago
    world.now = hm("12:00")

    report = world.run()
    # The oldest minute X may be asked for is 23:55 back (5 minutes clear of the horizon, rounded up).
    assert world.calls() == [(200, "202611251205", "202611251305")]
    # 130 padded minutes of the first, and the 70 of the second from 10:55 to 12:05 the day before.
    assert report.minutes_lost == 200 and metric_values(report)[M.OUTAGE_MINUTES_LOST] == 200
    assert [(s["from"], s["to"]) for s in (item_of(i) for i in state_items(world.stack, "outage"))
            if s["kind"] == "lost"] == [("2026-11-25T05:55:00.000Z", "2026-11-25T08:05:00.000Z"),
                                        ("2026-11-25T10:55:00.000Z", "2026-11-25T12:05:00.000Z")]

    world.finish(world.only_started(report))
    world.advance(minutes=5)
    later = world.run()
    assert later.minutes_lost == 0 and later.jobs_completed == 1  # what was replayed in time stays recovered
    statuses = {s.interval.reason: s for s in world.ledger.intervals(world.now, POLICY, world.hook)}
    assert statuses["lost"].status == "lost" and statuses["straddles"].status == "partially lost"
    assert world.run().minutes_lost == 0


def item_of(item: dict) -> dict[str, str]:
    return {k: v["S"] for k, v in item.items() if "S" in v}


def test_a_long_open_outage_near_the_horizon_is_replayed_in_parts_and_nothing_is_lost(world):
    world.ledger.open("alarm", "xrelay-IntakeErrors", hm("13:00", 25))  # 23 hours ago, still in ALARM
    world.now = hm("12:00")
    windows = []
    for _ in range(4):
        report = world.run()
        windows += world.calls()
        if report.started:
            world.finish(world.only_started(report))
        world.advance(minutes=20)
    # The oldest part first, just ahead of the horizon (within horizon_lead); the young rest waits.
    assert windows == [(200, "202611251255", "202611251455"), (200, "202611251455", "202611251655")]
    assert world.statuses() == {"alarm:xrelay-IntakeErrors": "open"}
    assert "horizon" in report.waiting

    world.ledger.close("alarm", "xrelay-IntakeErrors", world.now - timedelta(minutes=20))
    world.advance(minutes=10)
    lost = 0
    for _ in range(20):
        report = world.run()
        lost += report.minutes_lost
        windows += world.calls()
        if not report.started:
            break
        world.finish(world.only_started(report))
    assert lost == 0 and all(status == 200 for status, _, _ in windows)
    assert all(a[2] == b[1] for a, b in zip(windows, windows[1:], strict=False))  # contiguous, no minute skipped
    assert windows[-1][2] == "202611261305"  # closed at 13:00, padded by 5 minutes
    assert len(windows) == 13 and all(status == 200 for status, _, _ in windows)
    assert world.statuses() == {"alarm:xrelay-IntakeErrors": "recovered"}


def test_rate_limits_stop_the_run_cleanly_and_the_next_window_resumes(world):
    world.ledger.declare(hm("09:00"), hm("10:00"))
    world.now = hm("12:00")
    world.x.rate_limits["POST /2/webhooks/replay"] = 0  # spent by someone else
    report = world.run()
    assert (report.rate_limited, report.jobs_started, report.errors) == (True, 0, {"TooManyRequests": 1})
    assert world.calls() == [(429, "202611260855", "202611261005")] and world.ledger.read().jobs == []
    assert metric_values(report)[M.X_API_RATE_LIMITED] == 1

    world.x.rate_limits["POST /2/webhooks/replay"] = 1
    world.advance(minutes=15)  # X's window reset
    assert world.run().jobs_started == 1


def test_a_spent_budget_is_respected_without_a_call(world):
    world.ledger.declare(hm("09:00"), hm("10:00"))
    world.now = hm("12:00")
    world.x.rate_limits["POST /2/webhooks/replay"] = 1
    with world.x.client() as client:
        first = run_replays(world.ledger, lambda: client, world.hook, world.now, POLICY)
        world.finish(world.only_started(first), "Incomplete")
        world.x.requests.clear()
        second = run_replays(world.ledger, lambda: client, world.hook, world.now, POLICY)  # X said remaining 0
    assert world.calls() == [] and second.rate_limited and second.jobs_started == 0


def test_other_refusals_are_counted_and_the_next_run_tries_again(world):
    world.ledger.declare(hm("09:00"), hm("10:00"))
    world.now = hm("12:00")
    world.x.replay_min_age_seconds = 3 * 60 * 60  # a stricter X than our min_age: to_date too recent
    report = world.run(ReplayPolicy(min_age=timedelta(minutes=10)))
    assert report.jobs_started == 0 and report.errors == {"QueryParamInvalid": 1}
    assert report.failed == ["replay 2026-11-26T08:55:00.000Z to 2026-11-26T10:05:00.000Z: QueryParamInvalid"]
    world.x.replay_min_age_seconds = 0
    assert world.run().jobs_started == 1


def test_plan_only_reads_and_says_what_would_happen(world):
    world.ledger.declare(hm("09:00"), hm("10:00"))
    plan = plan_replays(world.ledger.read(), world.hook, hm("12:00"), POLICY)
    assert plan.next_window == (hm("08:55"), hm("10:05")) and plan.unrecovered_minutes == 70
    assert [i.source for i in plan.unseen] == ["operator"] and world.x.requests == []
    assert world.ledger.read().seen == set()  # planning wrote nothing


# --- intake: X's replay_job_status reaches the ledger ------------------------------------------------


def test_intake_records_job_reports_idempotently_in_any_order(world):
    job_id = "1995507200941260800"
    complete = json.dumps({"replay_job_status": {"webhook_id": world.hook, "job_state": "Complete",
                                                 "job_state_description": "Job completed successfully",
                                                 "job_id": job_id}}).encode()
    incomplete = complete.replace(b'"Complete"', b'"Incomplete"')
    assert post(world.stack, complete)[0] == 200  # before the ReplayFunction recorded the job
    world.ledger.record_job(job_id, world.hook, (hm("08:55"), hm("10:05")), hm("11:00"))
    assert post(world.stack, complete)[0] == 200  # redelivered
    assert post(world.stack, incomplete)[0] == 200  # a late, contradictory report: Complete stays
    (job,) = world.ledger.read().jobs
    assert (job.x_state, job.window, job.webhook_id, job.x_description) == (
        "Complete", (hm("08:55"), hm("10:05")), world.hook, "Job completed successfully")
    # The control messages are still recorded as before, once per job and state.
    assert sorted(i["sk"]["S"] for i in state_items(world.stack, "replay_job_status")) == [
        f"{job_id}#Complete", f"{job_id}#Incomplete"]


def test_a_ledger_failure_answers_503_and_the_redelivery_updates_it(world, faults):
    world.ledger.record_job("42", world.hook, (hm("08:55"), hm("10:05")), hm("11:00"))
    body = json.dumps({"replay_job_status": {"webhook_id": world.hook, "job_state": "Incomplete",
                                             "job_state_description": "retry", "job_id": "42"}}).encode()
    faults.inject("dynamodb", "UpdateItem", client_error("ProvisionedThroughputExceededException", 400),
                  when=lambda params: params["Key"]["sk"]["S"] == "job#42")
    status, answer = post(world.stack, body)
    assert status == 503 and "retry" in answer["error"]
    assert world.ledger.read().jobs[0].x_state is None
    assert post(world.stack, body)[0] == 200  # X redelivers; the control message is a duplicate by now
    assert world.ledger.read().jobs[0].x_state == "Incomplete"


def test_a_report_without_a_job_id_is_recorded_but_leaves_the_ledger_alone(world):
    body = json.dumps({"replay_job_status": {"webhook_id": world.hook, "job_state": "Complete"}}).encode()
    assert post(world.stack, body)[0] == 200
    assert world.ledger.read().jobs == []


# --- the fake's replay endpoint ----------------------------------------------------------------------


def test_the_fake_validates_windows_as_x_documents_them(world):
    world.now = hm("12:00")
    with world.x.client() as client:
        for start, end in ((hm("11:00", 25), hm("12:00", 25)),  # older than 24 hours
                           (hm("11:00"), hm("10:00")), (hm("11:00"), hm("11:00")),  # to not after from
                           (hm("11:00"), hm("12:01")), (hm("12:01"), hm("12:02"))):  # in the future
            with pytest.raises(XApiError) as refused:
                client.create_replay_job(world.hook, start, end)
            assert (refused.value.status, refused.value.code) == (400, "QueryParamInvalid")
        for start, end in (("2026112611", "202611261200"), ("202613011100", "202611261200")):
            with pytest.raises(XApiError) as refused:
                client._call(Endpoint.WEBHOOK_REPLAY, json_body={"webhook_id": world.hook, "from_date": start, "to_date": end})
            assert refused.value.status == 400
        # The first is off-spec (from_date must be 12 digits) and was sent on purpose; the second is not.
        assert [(v.side, v.errors[-1].strip()) for v in world.x.take_spec_violations()] == [
            ("request", "from_date: '2026112611' does not match '^[0-9]{12}$'")]
        job_id = client.create_replay_job(world.hook, hm("12:01", 25), hm("12:00"))  # 23:59 back to now
        with pytest.raises(XApiError) as conflict:
            client.create_replay_job(world.hook, hm("10:00"), hm("11:00"))
        assert (conflict.value.status, conflict.value.code) == (409, "ReplayConflictError")
    assert world.x.running_replay(world.hook).job_id == job_id
    with pytest.raises(ValueError):
        world.x.replay_job_status_body(job_id)  # X reports only once the job ended
    body = json.loads(world.x.complete_replay(job_id, "Incomplete"))
    assert body == {"replay_job_status": {
        "webhook_id": world.hook, "job_state": "Incomplete",
        "job_state_description": "Job failed to deliver all events, please retry your replay job", "job_id": job_id}}
    assert world.x.running_replay(world.hook) is None
    with pytest.raises(ValueError):
        world.x.complete_replay(job_id)  # it already ended


# Ids longer than 64 characters are not X's (its job and webhook ids are 19-digit numbers): the
# ledger keys jobs by id, so intake keeps such a report out of it. The limits are exact.
@pytest.mark.parametrize("length, in_ledger", [(1, True), (64, True), (65, False)])
def test_a_job_id_over_64_characters_leaves_the_ledger_alone(world, length, in_ledger):
    job_id = "7" * length
    body = json.dumps({"replay_job_status": {"webhook_id": world.hook, "job_state": "Complete",
                                             "job_id": job_id}}).encode()
    assert post(world.stack, body)[0] == 200
    assert [(j.job_id, j.x_state) for j in world.ledger.read().jobs] == ([(job_id, "Complete")] if in_ledger else [])


def test_a_numeric_job_id_is_recorded_as_its_digits(world):
    body = json.dumps({"replay_job_status": {"webhook_id": world.hook, "job_state": "Complete",
                                             "job_id": 1995507200941260800}}).encode()
    assert post(world.stack, body)[0] == 200
    assert [(j.job_id, j.x_state) for j in world.ledger.read().jobs] == [("1995507200941260800", "Complete")]


@pytest.mark.parametrize("length, kept", [(64, True), (65, False)])
def test_a_webhook_id_over_64_characters_is_not_recorded_with_the_job(world, length, kept):
    webhook_id = "8" * length
    body = json.dumps({"replay_job_status": {"webhook_id": webhook_id, "job_state": "Incomplete",
                                             "job_id": "42"}}).encode()
    assert post(world.stack, body)[0] == 200
    (job,) = world.ledger.read().jobs
    assert (job.job_id, job.x_state, job.webhook_id) == ("42", "Incomplete", webhook_id if kept else None)

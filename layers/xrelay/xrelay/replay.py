"""The replay engine: turns the outage ledger into X replay jobs, one at a time per webhook.

API::

    run_replays(ledger, client, webhook_id, now=None, policy=None) -> ReplayReport   # one run
    plan_replays(view, webhook_id, now, policy) -> ReplayPlan     # pure: what a run would do now
    metric_values(report) -> dict[str, float]                      # observability.M names -> values

One run (the ReplayFunction, scheduled and on alarm state changes) reads the ledger once and:

1. counts what happened since the last run, each thing once (ledger markers): outages seen for the
   first time, jobs X reported Complete or Incomplete, jobs that timed out;
2. records the minutes that fell beyond X's 24-hour horizon without a Complete job covering them
   (lost: logged as an error and counted in ``OutageMinutesLost``, which the template alarms on);
3. unless a job of this webhook is still running (X reported nothing, ``job_timeout`` not reached),
   starts ONE job: the oldest window not yet recovered, at most ``max_window`` long.

Planning is coverage-based rather than per-job bookkeeping: the ledger's intervals, padded by
``margin`` and merged where they overlap or touch, minus the windows of Complete jobs, are what
is left to replay. So an Incomplete job, or one that never reported within ``job_timeout``,
leaves its window uncovered and the next run submits the same window again (counted as a
resubmission); a late Complete still counts; a Complete is never undone. A group is replayed once
it has closed and its padded end is ``min_age`` old, or earlier, up to ``min_age`` before now and
in parts, once its oldest unrecovered minute is within ``horizon_lead`` of X's horizon (so a long
or still-open outage loses nothing it need not). Windows start no earlier than
:meth:`ReplayPolicy.oldest_replayable` (rounded up) and end no later than
:meth:`ReplayPolicy.newest_replayable`; ``from_date`` is rounded down and ``to_date`` up (see
:mod:`xrelay.outages` on minutes).

X's answers: a 409 ``ReplayConflictError`` means a job is already running there (ours whose
report was lost, or someone else's): wait, the next run asks again; at most one create call is
made per run, and none while our own job runs. A 429 (or a spent budget) stops the run cleanly.
Any other refusal is counted by code and the run ends; the next one tries again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .outages import (
    JOB_COMPLETE,
    JOB_INCOMPLETE,
    LOOKBACK,
    RUNNING,
    TIMED_OUT,
    Interval,
    Job,
    Ledger,
    LedgerView,
    ReplayPolicy,
    Span,
    ceil_minute,
    floor_minute,
    intersect_spans,
    job_windows,
    jobs_of,
    lost_now,
    merge_groups,
    merge_spans,
    overlaps,
    subtract_spans,
    total_minutes,
)
from .store import iso
from .xapi import Endpoint, RateLimited, XApiClient, XApiError

_log = logging.getLogger("xrelay.replay")

CONFLICT = "ReplayConflictError"


@dataclass(frozen=True)
class ReplayPlan:
    """What a run would do at ``now``: pure, from one read of the ledger."""

    now: datetime
    webhook_id: str
    next_window: Span | None  # the job to start, if any
    resubmission_of: tuple[str, ...]  # earlier jobs (Incomplete, timed out) the next window repeats
    running: tuple[Job, ...]  # this webhook's jobs X may still be working on: wait for them
    todo: tuple[Span, ...]  # every replayable span not yet recovered, ready or not, oldest first
    ready: tuple[Span, ...]  # the part of ``todo`` that may be replayed now
    new_lost: tuple[Span, ...]  # beyond the horizon, unrecovered, not recorded lost yet
    unrecovered_minutes: int  # outage minutes within X's reach that no Complete job covers
    unseen: tuple[Interval, ...]  # intervals not counted as opened yet
    to_count: tuple[tuple[Job, str], ...]  # jobs whose terminal status is not counted yet
    waiting: str | None  # why no job is to be started (None: one is, or there is nothing to do)


def plan_replays(view: LedgerView, webhook_id: str, now: datetime, policy: ReplayPolicy) -> ReplayPlan:
    jobs = jobs_of(view, webhook_id)
    recovered = job_windows(jobs, JOB_COMPLETE, now, policy)
    running = tuple(j for j in jobs if j.status(now, policy.job_timeout) == RUNNING)
    in_flight = merge_spans(j.window for j in running if j.window)
    oldest, newest = policy.oldest_replayable(now), policy.newest_replayable(now)
    groups = merge_groups(view.intervals, now, policy)

    todo: list[Span] = []
    ready: list[Span] = []
    for group in groups:
        left = subtract_spans(intersect_spans([group.span], (oldest, newest)), recovered)
        todo += left
        old_enough = group.closed and group.span[1] <= newest
        near_horizon = bool(left) and left[0][0] < oldest + policy.horizon_lead
        if old_enough or near_horizon:
            ready += left

    spans = [g.span for g in groups]
    since = floor_minute(now - LOOKBACK)  # older minutes were counted (or are past counting) already
    lost = lost_now(spans, recovered, in_flight, now, policy, since)
    unrecovered = subtract_spans(intersect_spans(spans, (oldest, ceil_minute(now))), recovered)
    unseen = tuple(i for i in view.intervals if i.key not in view.seen and i.start >= since)
    to_count = tuple((j, status) for j in jobs
                     if (status := j.status(now, policy.job_timeout)) in (JOB_COMPLETE, JOB_INCOMPLETE, TIMED_OUT)
                     and j.counted != status)

    window: Span | None = None
    previous: tuple[str, ...] = ()
    waiting: str | None = None
    if running:
        job = running[0]
        waiting = (f"replay job {job.job_id} ({_window_text(job.window)}) has not reported yet; "
                   "X runs one job at a time per webhook")
    elif ready:
        start, end = ready[0]
        window = (start, min(end, floor_minute(start + policy.max_window)))
        previous = tuple(j.job_id for j in jobs if j.window and overlaps(j.window, window)
                         and j.status(now, policy.job_timeout) not in (JOB_COMPLETE, RUNNING))
    elif todo:
        waiting = (f"{total_minutes(todo)} minutes wait for their outage to end and be "
                   f"{int(policy.min_age.total_seconds() // 60)} minutes old, or to near X's 24-hour horizon")
    return ReplayPlan(now, webhook_id, window, previous, running, tuple(todo), tuple(ready),
                      tuple(subtract_spans(lost, view.lost)), total_minutes(unrecovered), unseen, to_count, waiting)


@dataclass
class ReplayReport:
    """The outcome of one run: what the handler logs, returns and turns into metrics."""

    plan: ReplayPlan
    outages_opened: int = 0
    jobs_started: int = 0
    jobs_completed: int = 0
    jobs_incomplete: int = 0
    jobs_timed_out: int = 0
    jobs_resubmitted: int = 0
    minutes_lost: int = 0
    started: list[dict[str, str]] = field(default_factory=list)
    waiting: str | None = None
    conflict: bool = False  # X answered 409: a job is already running there
    rate_limited: bool = False
    rate_limited_until: datetime | None = None
    errors: Counter[str] = field(default_factory=Counter)  # X's error codes
    failed: list[str] = field(default_factory=list)

    @property
    def minutes_unrecovered(self) -> int:
        return self.plan.unrecovered_minutes

    def summary(self) -> dict[str, Any]:
        return {
            "webhook_id": self.plan.webhook_id,
            "outages_opened": self.outages_opened,
            "minutes_unrecovered": self.minutes_unrecovered,
            "minutes_lost": self.minutes_lost,
            "jobs_started": self.jobs_started,
            "jobs_completed": self.jobs_completed,
            "jobs_incomplete": self.jobs_incomplete,
            "jobs_timed_out": self.jobs_timed_out,
            "jobs_resubmitted": self.jobs_resubmitted,
            "started": self.started,
            "waiting": self.waiting,
            "conflict": self.conflict,
            "rate_limited": self.rate_limited,
            "rate_limited_until": self.rate_limited_until.isoformat() if self.rate_limited_until else None,
            "errors": dict(self.errors),
            "failed": self.failed,
        }


def metric_values(report: ReplayReport) -> dict[str, float]:
    from .observability import M  # Powertools only where metrics are emitted

    return {
        M.OUTAGES_OPENED: report.outages_opened,
        M.OUTAGE_MINUTES_UNRECOVERED: report.minutes_unrecovered,
        M.OUTAGE_MINUTES_LOST: report.minutes_lost,
        M.REPLAY_JOBS_STARTED: report.jobs_started,
        M.REPLAY_JOBS_COMPLETED: report.jobs_completed,
        M.REPLAY_JOBS_INCOMPLETE: report.jobs_incomplete,
        M.REPLAY_JOBS_TIMED_OUT: report.jobs_timed_out,
        M.REPLAY_JOBS_RESUBMITTED: report.jobs_resubmitted,
        M.X_API_RATE_LIMITED: 1 if report.rate_limited else 0,
    }


def run_replays(ledger: Ledger, client: XApiClient, webhook_id: str, now: datetime | None = None,
                policy: ReplayPolicy | None = None) -> ReplayReport:
    """One run for ``webhook_id`` (see the module docstring). Ledger failures raise StoreUnavailable."""
    now = now or datetime.now(UTC)
    policy = policy or ReplayPolicy()
    the_plan = plan_replays(ledger.read(), webhook_id, now, policy)
    report = ReplayReport(the_plan, waiting=the_plan.waiting)

    for interval in the_plan.unseen:
        if ledger.mark_seen(interval.key, now):
            report.outages_opened += 1
            _log.warning("outage recorded: %s %s from %s to %s", interval.source, interval.ref, iso(interval.start),
                         iso(interval.end) if interval.end else "(open)", extra={"source": interval.source})
    for job, status in the_plan.to_count:
        if not ledger.mark_counted(job.job_id, status):
            continue  # a concurrent run counted it
        if status == JOB_COMPLETE:
            report.jobs_completed += 1
        elif status == JOB_INCOMPLETE:
            report.jobs_incomplete += 1
        else:
            report.jobs_timed_out += 1
        _log.info("replay job %s (%s): %s", job.job_id, _window_text(job.window), status,
                  extra={"job_id": job.job_id, "status": status})
    for span in the_plan.new_lost:
        if ledger.record_lost(span, now):
            minutes = total_minutes([span])
            report.minutes_lost += minutes
            _log.error("%d minutes of outage are beyond X's 24-hour replay horizon and lost: %s",
                       minutes, _window_text(span), extra={"from": iso(span[0]), "to": iso(span[1])})

    if the_plan.next_window is not None:
        _start(ledger, client, the_plan, report, now)
    return report


def _start(ledger: Ledger, client: XApiClient, the_plan: ReplayPlan, report: ReplayReport, now: datetime) -> None:
    window = the_plan.next_window
    assert window is not None
    budget = client.rate_limit(Endpoint.WEBHOOK_REPLAY)
    if budget is not None and budget.exhausted(now):  # don't spend a call X already said it would refuse
        report.rate_limited, report.rate_limited_until = True, budget.reset_at
        report.waiting = "X's replay rate-limit budget is spent"
        return
    try:
        job_id = client.create_replay_job(the_plan.webhook_id, window[0], window[1])
    except RateLimited as exc:
        report.rate_limited, report.rate_limited_until = True, exc.reset_at
        report.errors[exc.code] += 1
        report.waiting = "X rate-limited the replay request"
        _log.warning("X rate limit hit on the replay endpoint; the next run resumes",
                     extra={"reset_at": exc.reset_at.isoformat() if exc.reset_at else None})
        return
    except XApiError as exc:
        report.errors[exc.code] += 1
        if exc.code == CONFLICT:
            report.conflict = True
            report.waiting = "X already runs a replay job for this webhook (409): waiting for it to finish"
            _log.info("replay of %s waits: X already runs a job for the webhook", _window_text(window))
            return
        report.failed.append(f"replay {_window_text(window)}: {exc.code}")
        _log.error("X refused the replay of %s: %s (HTTP %s) %s", _window_text(window), exc.code, exc.status,
                   exc.detail or "; ".join(exc.messages) or "", extra={"code": exc.code, "status": exc.status})
        return
    try:
        ledger.record_job(job_id, the_plan.webhook_id, window, now, the_plan.resubmission_of)
    except Exception:
        # X runs the job; its report still reaches intake, and the ledger learns of it then.
        _log.error("replay job %s (%s) started but could not be recorded", job_id, _window_text(window))
        raise
    report.jobs_started += 1
    report.jobs_resubmitted += 1 if the_plan.resubmission_of else 0
    report.started.append({"job_id": job_id, "from_date": window[0].strftime("%Y%m%d%H%M"),
                           "to_date": window[1].strftime("%Y%m%d%H%M")})
    report.waiting = None
    _log.info("replay job %s started for %s%s", job_id, _window_text(window),
              f" (again, after {', '.join(the_plan.resubmission_of)})" if the_plan.resubmission_of else "",
              extra={"job_id": job_id})


def _window_text(window: Span | None) -> str:
    return f"{iso(window[0])} to {iso(window[1])}" if window else "window unknown"

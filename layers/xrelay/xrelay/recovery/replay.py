"""The replay engine: turns the outage ledger into X replay jobs, one at a time per webhook.

API::

    run_replays(ledger, connect, webhook_id, now=None, policy=None) -> ReplayReport  # one run
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
:mod:`xrelay.recovery.outages` on minutes).

X's answers: a 409 ``ReplayConflictError`` means a job is already running there (ours whose
report was lost, or someone else's): wait, the next run asks again; at most one create call is
made per run, and none while our own job runs. A 429 (or a spent budget) stops the run cleanly.
Any other refusal is counted by code and the run ends; the next one tries again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xrelay.recovery.outages import (
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
    assess,
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
from xrelay.storage.store import iso
from xrelay.subscriptions.xapi import Endpoint, RateLimited, XApiClient, XApiError, same_url

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
    from xrelay.observability import M  # Powertools only where metrics are emitted

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


def run_replays(ledger: Ledger, connect: Callable[[], XApiClient], webhook_id: str, now: datetime | None = None,
                policy: ReplayPolicy | None = None) -> ReplayReport:
    """One run for ``webhook_id`` (see the module docstring). Ledger failures raise StoreUnavailable.

    ``connect`` gives the X client, and is called only when a job is to be started: most runs
    (nothing to replay, or a job still running) read no secret and call no one.
    """
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
        _start(ledger, connect(), the_plan, report, now)
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


# --- a run against a stack's resources (the ReplayFunction, `xrelay invoke`) -----------------------


@dataclass
class StackReplayRun:
    """What the handler logs and returns: the run's report, or why there was none."""

    alarm_change: Any = None  # the AlarmChange the invocation carried, if any
    recorded: bool | None = None  # whether that change was new to the ledger
    webhook_id: str | None = None
    report: ReplayReport | None = None
    error: str | None = None  # the run could not reach X (a failure: alarmed); the ledger is intact
    idle: str | None = None  # nothing to replay against yet (not a failure)
    ignored_event: str | None = None  # why the invocation's alarm event could not be read

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.error is None, "error": self.error, "idle": self.idle,
                               "webhook_id": self.webhook_id}
        if self.alarm_change is not None:
            out["alarm_change"] = {"alarm": self.alarm_change.alarm, "state": self.alarm_change.state,
                                   "at": iso(self.alarm_change.at), "new": self.recorded}
        if self.ignored_event:
            out["ignored_event"] = self.ignored_event
        if self.report is not None:
            out.update(self.report.summary())
        return out


def is_alarm_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("detail-type") == "CloudWatch Alarm State Change"


def run_for_stack(settings: Any, event: Any = None, *, transport: Any = None, now: datetime | None = None,
                  policy: ReplayPolicy | None = None, record_only: bool = False) -> StackReplayRun:
    """Record the alarm state change ``event`` carries (if any), then run the replay once.

    ``record_only``: another run holds the replay lease (``xrelay.storage.lease``); record the change and
    leave the jobs to it.

    The change is written first and its failure raises (StoreUnavailable): EventBridge's
    invocation is asynchronous and Lambda retries it, so an outage is never dropped. After that,
    nothing raises for X's sake: an unreachable X or app secret comes back in ``error`` and the
    next scheduled run is the retry (the ledger keeps everything it needs).
    """
    from xrelay.credentials import SecretUnavailable, stack_x_client
    from xrelay.recovery.outages import parse_alarm_event
    from xrelay.storage.store import StateStore

    now = now or datetime.now(UTC)
    policy = policy or ReplayPolicy.from_env()
    state = StateStore(settings.state_table)
    ledger = Ledger(settings.state_table, state.ddb)
    run = StackReplayRun()
    if is_alarm_event(event):
        try:
            run.alarm_change = parse_alarm_event(event)
        except ValueError as exc:  # not retryable: log it and still do the scheduled work
            run.ignored_event = str(exc)
            _log.error("alarm state change ignored: %s", exc)
    if run.alarm_change is not None:
        run.recorded = ledger.record_alarm_change(run.alarm_change)
        _log.info("alarm %s is %s since %s%s", run.alarm_change.alarm, run.alarm_change.state,
                  iso(run.alarm_change.at), "" if run.recorded else " (already recorded)")
    if record_only:
        run.idle = "another replay run is still running: it starts the jobs"
        return run

    run.webhook_id, url = _webhook_known(settings, state)
    opened: list[XApiClient] = []

    def connect() -> XApiClient:
        if not opened:
            opened.append(stack_x_client(settings, transport))
        return opened[0]

    try:
        if run.webhook_id is None and url:
            run.webhook_id = next((w.id for w in connect().list_webhooks() if same_url(w.url, url)), None)
        if run.webhook_id is None:
            run.idle = ("no webhook to replay to: set the WebhookId Parameter, or declare the webhook URL "
                        "(`xrelay subscriptions apply`) and let the reconcile register it")
            return run
        run.report = run_replays(ledger, connect, run.webhook_id, now, policy)
        if run.report.failed:  # X refused (or never answered) the job: no progress, alarmed if it lasts
            run.error = "; ".join(run.report.failed)
    except SecretUnavailable as exc:
        run.error = f"X app credentials unavailable: {exc}"
    except XApiError as exc:
        run.error = f"X API unavailable: {exc.code} ({exc})"
    finally:
        for client in opened:
            client.close()
    return run


def _webhook_known(settings: Any, state: Any) -> tuple[str | None, str | None]:
    """(webhook id, declared URL) as far as the stack knows without calling X.

    The WebhookId Parameter, else the id the reconcile last saw X give the declared URL; the
    desired state is read only when the Parameter is empty.
    """
    if settings.webhook_id:
        return settings.webhook_id, None
    url = _declared_webhook_url(state)
    return _known_webhook_id(state, url), url


def _declared_webhook_url(state: Any) -> str | None:
    from xrelay.subscriptions.desired import DesiredState

    stored = state.desired()
    return DesiredState.from_json(stored["state"]).webhook.url if stored else None


def _known_webhook_id(state: Any, url: str | None) -> str | None:
    """The id the reconcile last saw X give the declared URL: no call to X in the common case."""
    health = state.webhook_health(url) if url else None
    return (health or {}).get("webhook_id") or None


# --- `xrelay replay status`: the ledger as an operator reads it -----------------------------------


class IntervalRow(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    source: str = Field(description="alarm, operator or webhook")
    ref: str = Field(description="the alarm's name, the declaring operator, or the webhook")
    from_: str = Field(alias="from", description="when it started (ISO 8601 UTC)")
    to: str | None = Field(description="when it ended; null while open")
    reason: str
    status: str = Field(description="open, pending, replaying, recovered, lost or partially lost")
    span: tuple[str, str] = Field(description="the padded, minute-aligned span a replay must cover")
    minutes: int
    recovered_minutes: int
    pending_minutes: int
    lost_minutes: int
    job_ids: list[str] = Field(description="this webhook's replay jobs whose window overlaps the span")


class JobRow(BaseModel):
    job_id: str
    webhook_id: str | None
    from_date: str | None = Field(description="X's from_date (YYYYMMDDHHMM UTC); null if only X's report is known")
    to_date: str | None
    submitted_at: str | None
    status: str = Field(description="complete, incomplete, running, timed out, or unknown")
    x_state: str | None = Field(description="X's job_state from replay_job_status, once reported")
    x_description: str | None
    reported_at: str | None
    resubmission_of: list[str]


class LedgerStatus(BaseModel):
    """What `xrelay replay status --json` prints (docs/schemas/replay-status.schema.json)."""

    now: str
    webhook_id: str | None
    minutes_unrecovered: int = Field(description="outage minutes within X's reach that no Complete job covers")
    minutes_lost: int = Field(description="outage minutes recorded lost beyond X's 24-hour horizon")
    waiting: str | None = Field(description="why the next run will start no job, if it will not")
    next_window: tuple[str, str] | None = Field(description="the window the next run would ask X for")
    intervals: list[IntervalRow]
    jobs: list[JobRow]
    lost: list[tuple[str, str]]


def ledger_status(settings: Any, now: datetime | None = None, policy: ReplayPolicy | None = None) -> LedgerStatus:
    """The ledger at ``now``, read once, without calling X (the webhook id as the replay finds it)."""
    from xrelay.storage.store import StateStore

    now = now or datetime.now(UTC)
    policy = policy or ReplayPolicy.from_env()
    state = StateStore(settings.state_table)
    view = Ledger(settings.state_table, state.ddb).read()
    webhook_id, _ = _webhook_known(settings, state)
    the_plan = plan_replays(view, webhook_id or "", now, policy)
    rows = []
    for st in assess(view, now, policy, webhook_id):
        d = st.as_dict(now, policy)
        rows.append(IntervalRow(**{**d, "job_ids": [j["job_id"] for j in d["jobs"]]}))
    jobs = [JobRow(job_id=j.job_id, webhook_id=j.webhook_id,
                   from_date=j.window[0].strftime("%Y%m%d%H%M") if j.window else None,
                   to_date=j.window[1].strftime("%Y%m%d%H%M") if j.window else None,
                   submitted_at=iso(j.submitted_at) if j.submitted_at else None,
                   status=j.status(now, policy.job_timeout), x_state=j.x_state, x_description=j.x_description,
                   reported_at=iso(j.reported_at) if j.reported_at else None,
                   resubmission_of=list(j.resubmission_of))
            for j in sorted(view.jobs, key=lambda j: (j.submitted_at or now, j.job_id))]
    window = the_plan.next_window
    return LedgerStatus(
        now=iso(now), webhook_id=webhook_id, minutes_unrecovered=the_plan.unrecovered_minutes,
        minutes_lost=total_minutes(view.lost), waiting=the_plan.waiting if webhook_id else
        "no webhook id known yet: the reconcile has not seen the webhook (or set the WebhookId Parameter)",
        next_window=(iso(window[0]), iso(window[1])) if window and webhook_id else None,
        intervals=rows, jobs=jobs, lost=[(iso(a), iso(b)) for a, b in view.lost])

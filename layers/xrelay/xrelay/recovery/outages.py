"""The outage ledger: every interval during which X's deliveries may have been missed, and its replay.

Three sources feed it (issue 5):

* ``alarm``: a CloudWatch alarm's state changes (EventBridge ``CloudWatch Alarm State Change``).
  ALARM opens an interval at the state's timestamp, OK closes it. Each change is stored as it came,
  keyed on (alarm, timestamp, open/close), and intervals are *derived* from the sorted changes: a
  redelivered change writes nothing, a late one lands in its place (an OK that overtook its ALARM
  waits for it; a second ALARM while open keeps the earlier start). INSUFFICIENT_DATA is ignored.
* ``operator``: intervals declared with ``xrelay replay --from --to``, keyed on (from, to).
* ``webhook``: the stretches the reconcile recorded while X held the webhook invalid or missing
  (``pk=webhook-outage``, :meth:`StateStore.webhook_outages`), read as they are, never written here.

And the replay's bookkeeping: X's replay jobs (window and submission by the ReplayFunction, X's
``replay_job_status`` by intake; both upsert, so either may come first), the spans lost beyond
X's 24-hour horizon (recorded once, so each lost minute is counted once) and first-sight markers
of intervals (so each outage is counted once).

API (all times timezone-aware; writes raise :class:`~xrelay.storage.store.StoreUnavailable`)::

    ledger = Ledger(table, ddb=None)
    ledger.open(source, ref, at, reason="") -> bool          # True if this change is new
    ledger.close(source, ref, at, reason="") -> bool
    ledger.record_alarm_change(parse_alarm_event(event)) -> bool | None
    ledger.declare(start, end, ref="operator", reason="") -> bool
    ledger.read() -> LedgerView                               # intervals, jobs, lost spans, seen keys
    ledger.intervals(now, policy, webhook_id=None) -> list[IntervalStatus]
    ledger.record_job(job_id, webhook_id, window, submitted_at, resubmission_of=())
    ledger.record_job_status(job_id, state, webhook_id=, description=, at=) -> bool   # intake
    ledger.mark_counted(job_id, status) / record_lost(span, at) / mark_seen(key, at) -> bool

Item layout (state table, ``pk="outage"``; every item has ``kind``, ``recorded_at`` and a TTL
``expires_at`` :data:`LEDGER_RETENTION` after it was written; times are :func:`store.iso`, so sk
order is time order)::

    sk="change#<source>#<ref>#<at>#<open|close>"  source, ref, at, change, reason
    sk="declared#<from>#<to>"                    from, to, ref, reason
    sk="job#<job_id>"                            job_id, webhook_id, window_from, window_to, from_date,
                                                 to_date, submitted_at, resubmission_of (ids, comma-separated);
                                                 x_state, x_rank, x_description, reported_at (X's report);
                                                 counted (the job status last counted in a metric)
    sk="lost#<from>"                             from, to, minutes
    sk="seen#<interval key>"                     key

Minutes. X's replay takes whole UTC minutes. A replay span is half-open, ``[from, to)``: ``from``
is rounded down and ``to`` up, so every minute an outage touches is inside. X's ``to_date`` is
"exclusive" for the AAA route and "inclusive" in OAS 2.167: treated as exclusive, the worst case is
one minute replayed twice (deduplicated by the event store), never one missed; consecutive windows
share their boundary minute for the same reason.

Statuses of an interval (:func:`assess`): ``open`` (not closed yet; may be replayed in parts),
``pending`` (minutes left to replay), ``replaying`` (a job covering it is running), ``recovered``
(every minute covered by a Complete job), ``lost`` (nothing recovered, the rest beyond the
horizon), ``partially lost`` (some recovered, the rest beyond the horizon). An interval's span is
padded by the policy's margin; overlapping or touching padded spans are merged for replay
planning (:func:`merge_groups`), while each interval keeps its own source and status for reporting.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from xrelay.aws import client
from xrelay.storage.store import StateStore, conditional_write, iso

PK = "outage"
ALARM_SOURCE, OPERATOR_SOURCE, WEBHOOK_SOURCE = "alarm", "operator", "webhook"
OPEN, CLOSE = "open", "close"
# Ledger items expire (DynamoDB TTL) this long after they were written: far beyond X's 24-hour
# replay horizon. Lost minutes and new outages are only *counted* within LOOKBACK, which is shorter,
# so an expired marker can never make an old minute or outage count a second time.
LEDGER_RETENTION = timedelta(days=30)
LOOKBACK = LEDGER_RETENTION - timedelta(days=1)

# X's job_state values; the rank makes a reported state only ever move up.
COMPLETE, INCOMPLETE = "Complete", "Incomplete"
_RANKS = {COMPLETE: 2, INCOMPLETE: 1}
# Job statuses as the ledger sees them (X's state, or ours while X has said nothing).
RUNNING, JOB_COMPLETE, JOB_INCOMPLETE, TIMED_OUT, UNKNOWN = "running", "complete", "incomplete", "timed out", "unknown"
# Interval statuses.
S_OPEN, S_PENDING, S_REPLAYING, S_RECOVERED, S_LOST, S_PARTIALLY_LOST = (
    "open", "pending", "replaying", "recovered", "lost", "partially lost")

MINUTE = timedelta(minutes=1)
_MAX_REF = 255  # CloudWatch's alarm-name limit; also keeps a key well under DynamoDB's 1 KB sort-key limit
_MAX_REASON = 500

Span = tuple[datetime, datetime]  # half-open [start, end), minute-aligned once planned


# --- the rules intervals are judged by (the ReplayFunction's Parameters) ---------------------------


@dataclass(frozen=True)
class ReplayPolicy:
    """How outages are turned into replay windows.

    ``margin`` pads every interval on both sides (an alarm fires after its evaluation periods:
    make it at least period x evaluation periods). ``min_age``: a window ends at least this long
    before now (X documents none for ``/2/webhooks/replay``; the AAA route wanted 10 minutes).
    ``max_window``: the longest window one job asks for (AAA recommended ~2 hours). ``job_timeout``:
    a job X has not reported on after this long is re-submitted. ``horizon_lead``: an interval not
    yet closed (or not yet ``min_age`` old) is replayed up to now, in parts, once its oldest
    unrecovered minute is this close to the horizon. ``horizon``: how far back X replays (24 h);
    ``horizon_safety`` keeps the oldest ``from_date`` clear of it despite clock skew and latency.
    """

    margin: timedelta = timedelta(minutes=5)
    min_age: timedelta = timedelta(minutes=10)
    max_window: timedelta = timedelta(hours=2)
    job_timeout: timedelta = timedelta(hours=2)
    horizon_lead: timedelta = timedelta(hours=3)
    horizon: timedelta = timedelta(hours=24)
    horizon_safety: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        zero = timedelta(0)
        if min(self.margin, self.min_age, self.horizon_lead, self.horizon_safety) < zero:
            raise ValueError("replay margin, min_age, horizon_lead and horizon_safety cannot be negative")
        if self.max_window < MINUTE or self.job_timeout <= zero:
            raise ValueError("replay max_window must be at least a minute and job_timeout positive")
        if self.horizon_lead + self.horizon_safety + self.min_age >= self.horizon:
            raise ValueError("replay horizon_lead + horizon_safety + min_age must stay below the 24-hour horizon")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReplayPolicy:
        """From the ``REPLAY_*_MINUTES`` variables the template sets; defaults for any left out."""
        env = os.environ if env is None else env
        names = {"margin": "REPLAY_MARGIN_MINUTES", "min_age": "REPLAY_MIN_AGE_MINUTES",
                 "max_window": "REPLAY_MAX_WINDOW_MINUTES", "job_timeout": "REPLAY_JOB_TIMEOUT_MINUTES",
                 "horizon_lead": "REPLAY_HORIZON_LEAD_MINUTES"}
        return cls(**{name: timedelta(minutes=int(env[var])) for name, var in names.items() if env.get(var)})

    def oldest_replayable(self, now: datetime) -> datetime:
        """The oldest minute a window may start at now (rounded up: the minute before is beyond reach)."""
        return ceil_minute(now - self.horizon + self.horizon_safety)

    def newest_replayable(self, now: datetime) -> datetime:
        """The latest a window may end at now."""
        return floor_minute(now - self.min_age)


# --- what the ledger holds ------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """One stretch during which events may have been missed. ``end`` is None while it is open."""

    source: str
    ref: str  # the alarm's name, the declaring operator, or the webhook id (its URL if X gave none)
    start: datetime
    end: datetime | None
    key: str  # stable identity: "<source>#<ref>#<start>" (alarm), "operator#<from>#<to>", "webhook#<from>"
    reason: str = ""


@dataclass(frozen=True)
class Job:
    """One replay job at X, as far as the ledger knows it."""

    job_id: str
    webhook_id: str | None
    window: Span | None  # None when only X's report reached us (a job we did not record starting)
    submitted_at: datetime | None
    x_state: str | None = None  # Complete / Incomplete, once X reported
    x_description: str | None = None
    reported_at: datetime | None = None
    resubmission_of: tuple[str, ...] = ()
    counted: str | None = None  # the status last counted in a metric

    def status(self, now: datetime, timeout: timedelta) -> str:
        if self.x_state == COMPLETE:
            return JOB_COMPLETE
        if self.x_state == INCOMPLETE:
            return JOB_INCOMPLETE
        if self.x_state:  # a state X has not documented: finished, but recovered nothing we can vouch for
            return self.x_state.lower()
        if self.submitted_at is None:
            return UNKNOWN
        return TIMED_OUT if now - self.submitted_at >= timeout else RUNNING


@dataclass
class LedgerView:
    """Everything the ledger holds, read at once."""

    intervals: list[Interval] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    lost: list[Span] = field(default_factory=list)  # recorded lost spans
    seen: set[str] = field(default_factory=set)  # keys of intervals already counted as opened


@dataclass(frozen=True)
class IntervalStatus:
    interval: Interval
    status: str
    span: Span  # the padded, minute-aligned span a replay must cover (up to now while open)
    minutes: int
    recovered_minutes: int
    lost_minutes: int
    pending_minutes: int
    jobs: tuple[Job, ...]  # this webhook's jobs whose window overlaps the span

    def as_dict(self, now: datetime, policy: ReplayPolicy) -> dict[str, Any]:
        i = self.interval
        return {
            "source": i.source, "ref": i.ref, "from": iso(i.start), "to": iso(i.end) if i.end else None,
            "reason": i.reason, "status": self.status, "span": [iso(self.span[0]), iso(self.span[1])],
            "minutes": self.minutes, "recovered_minutes": self.recovered_minutes,
            "lost_minutes": self.lost_minutes, "pending_minutes": self.pending_minutes,
            "jobs": [{"job_id": j.job_id, "window": [iso(j.window[0]), iso(j.window[1])] if j.window else None,
                      "status": j.status(now, policy.job_timeout),
                      "submitted_at": iso(j.submitted_at) if j.submitted_at else None} for j in self.jobs],
        }


@dataclass(frozen=True)
class AlarmChange:
    """A CloudWatch alarm state change, as EventBridge delivers it."""

    alarm: str
    state: str  # ALARM, OK or INSUFFICIENT_DATA
    at: datetime
    reason: str = ""


def parse_alarm_event(event: Mapping[str, Any]) -> AlarmChange:
    """The change an EventBridge ``CloudWatch Alarm State Change`` event carries. ValueError if it is none.

    The time is the new state's own timestamp (``detail.state.timestamp``), the event's ``time`` if absent.
    """
    if event.get("detail-type") != "CloudWatch Alarm State Change":
        raise ValueError(f"not a CloudWatch alarm state change: {str(event.get('detail-type'))[:80]!r}")
    detail = event.get("detail")
    state = detail.get("state") if isinstance(detail, Mapping) else None
    if not isinstance(state, Mapping) or not isinstance(detail.get("alarmName"), str) or not detail["alarmName"]:
        raise ValueError("alarm state change without detail.alarmName and detail.state")
    value, stamp = state.get("value"), state.get("timestamp") or event.get("time")
    if not isinstance(value, str) or not isinstance(stamp, str):
        raise ValueError("alarm state change without a state value and timestamp")
    return AlarmChange(detail["alarmName"], value, parse_time(stamp), str(state.get("reason") or ""))


def parse_time(text: str) -> datetime:
    """ISO-8601 with a zone (``Z``, ``+00:00`` or CloudWatch's ``+0000``), as UTC."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"time without a zone: {text[:40]!r}")
    return when.astimezone(UTC)


# --- the store ------------------------------------------------------------------------------------


class Ledger:
    """The outage ledger in the state table (see the module docstring for the item layout)."""

    def __init__(self, table: str, ddb: Any = None) -> None:
        self.table = table
        self.ddb = ddb or client("dynamodb")

    # sources -------------------------------------------------------------------------------------

    def open(self, source: str, ref: str, at: datetime, reason: str = "") -> bool:
        """``ref`` (an alarm) went bad at ``at``. True if this change is new (a redelivery is False)."""
        return self._change(source, ref, at, OPEN, reason)

    def close(self, source: str, ref: str, at: datetime, reason: str = "") -> bool:
        """``ref`` recovered at ``at``: closes its interval open at that time, whenever the ALARM arrives."""
        return self._change(source, ref, at, CLOSE, reason)

    def record_alarm_change(self, change: AlarmChange) -> bool | None:
        """ALARM opens, OK closes; None (nothing recorded) for any other state."""
        if change.state == "ALARM":
            return self.open(ALARM_SOURCE, change.alarm, change.at, change.reason)
        if change.state == "OK":
            return self.close(ALARM_SOURCE, change.alarm, change.at, change.reason)
        return None

    def declare(self, start: datetime, end: datetime, ref: str = OPERATOR_SOURCE, reason: str = "") -> bool:
        """An operator's interval (e.g. a planned maintenance). True if new; the same one twice is one."""
        start, end = _aware(start, "start"), _aware(end, "end")
        if end <= start:
            raise ValueError("an outage must end after it starts")
        item = self._item(f"declared#{iso(start)}#{iso(end)}", "declared", start)
        item.update({"from": _s(iso(start)), "to": _s(iso(end)), "ref": _s(_ref(ref)),
                     "reason": _s(reason[:_MAX_REASON])})
        return self._put_new(item)

    # reading -------------------------------------------------------------------------------------

    def read(self) -> LedgerView:
        """The whole ledger (one Query) and the reconcile's webhook outages (another)."""
        view = LedgerView()
        changes: dict[tuple[str, str], list[tuple[datetime, str, str]]] = {}
        for item in self._items():
            kind = item["kind"]["S"]
            if kind == "change":
                changes.setdefault((_str(item, "source"), _str(item, "ref")), []).append(
                    (parse_time(_str(item, "at")), _str(item, "change"), _str(item, "reason")))
            elif kind == "declared":
                start, end = parse_time(_str(item, "from")), parse_time(_str(item, "to"))
                view.intervals.append(Interval(OPERATOR_SOURCE, _str(item, "ref"), start, end,
                                               f"operator#{iso(start)}#{iso(end)}", _str(item, "reason")))
            elif kind == "job":
                view.jobs.append(_job(item))
            elif kind == "lost":
                view.lost.append((parse_time(_str(item, "from")), parse_time(_str(item, "to"))))
            elif kind == "seen":
                view.seen.add(_str(item, "key"))
        for (source, ref), found in changes.items():
            view.intervals.extend(derive_intervals(source, ref, found))
        for outage in StateStore(self.table, self.ddb).webhook_outages():
            start = parse_time(outage["from"])
            view.intervals.append(Interval(
                WEBHOOK_SOURCE, outage.get("webhook_id") or outage.get("webhook_url", ""), start,
                parse_time(outage["to"]) if outage.get("to") else None, f"webhook#{iso(start)}",
                outage.get("reason", "")))
        view.intervals.sort(key=lambda i: (i.start, i.key))
        view.jobs.sort(key=lambda j: (j.submitted_at or j.reported_at or datetime.min.replace(tzinfo=UTC),
                                      j.job_id))
        view.lost.sort()
        return view

    def intervals(self, now: datetime | None = None, policy: ReplayPolicy | None = None,
                  webhook_id: str | None = None) -> list[IntervalStatus]:
        """Every interval with its status and jobs (``webhook_id``: only that webhook's jobs count)."""
        return assess(self.read(), now or datetime.now(UTC), policy or ReplayPolicy(), webhook_id)

    # replay bookkeeping --------------------------------------------------------------------------

    def record_job(self, job_id: str, webhook_id: str, window: Span, submitted_at: datetime,
                   resubmission_of: Iterable[str] = ()) -> None:
        """A job X accepted. An upsert: X's report may already be here (it can overtake this write)."""
        start, end = window
        values: dict[str, Any] = {
            ":kind": _s("job"), ":j": _s(job_id), ":w": _s(webhook_id), ":wf": _s(iso(start)), ":wt": _s(iso(end)),
            ":fd": _s(start.astimezone(UTC).strftime("%Y%m%d%H%M")), ":td": _s(end.astimezone(UTC).strftime(
                "%Y%m%d%H%M")), ":sub": _s(iso(submitted_at)), ":rec": _s(iso(submitted_at)),
            ":exp": _expiry(submitted_at)}
        sets = ["kind = :kind", "job_id = :j", "webhook_id = :w", "window_from = :wf", "window_to = :wt",
                "from_date = :fd", "to_date = :td", "submitted_at = :sub", "recorded_at = :rec", "expires_at = :exp"]
        previous = ",".join(resubmission_of)
        if previous:
            sets.append("resubmission_of = :prev")
            values[":prev"] = _s(previous)
        conditional_write(lambda: self.ddb.update_item(
            TableName=self.table, Key=_key(f"job#{job_id}"), UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeValues=values), self.table)

    def record_job_status(self, job_id: str, state: str, *, webhook_id: str | None = None, description: str = "",
                          at: datetime) -> bool:
        """X's ``replay_job_status`` for ``job_id``. True if it changed the job.

        Idempotent and order-tolerant: a state only replaces a lower one (Complete > Incomplete >
        anything else), so a late or duplicated report never undoes a Complete. A report for a job
        the ledger has not recorded (yet) is kept; :meth:`record_job` fills in the rest.
        """
        rank = _RANKS.get(state, 0)
        values: dict[str, Any] = {
            ":kind": _s("job"), ":j": _s(job_id), ":s": _s(state[:64]), ":r": {"N": str(rank)},
            ":d": _s(description[:_MAX_REASON]), ":t": _s(iso(at)), ":exp": _expiry(at)}
        sets = ["kind = :kind", "job_id = :j", "x_state = :s", "x_rank = :r", "x_description = :d",
                "reported_at = :t", "recorded_at = if_not_exists(recorded_at, :t)",
                "expires_at = if_not_exists(expires_at, :exp)"]
        if webhook_id:
            sets.append("webhook_id = if_not_exists(webhook_id, :w)")
            values[":w"] = _s(webhook_id)
        return conditional_write(lambda: self.ddb.update_item(
            TableName=self.table, Key=_key(f"job#{job_id}"), UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_not_exists(x_rank) OR x_rank < :r",
            ExpressionAttributeValues=values), self.table)

    def mark_counted(self, job_id: str, status: str) -> bool:
        """Remember that the job's ``status`` was counted in a metric. False if it already was."""
        return conditional_write(lambda: self.ddb.update_item(
            TableName=self.table, Key=_key(f"job#{job_id}"), UpdateExpression="SET counted = :s",
            ConditionExpression="attribute_exists(sk) AND (attribute_not_exists(counted) OR counted <> :s)",
            ExpressionAttributeValues={":s": _s(status)}), self.table)

    def record_lost(self, span: Span, at: datetime) -> bool:
        """A span no replay can recover any more. False if it was already recorded."""
        start, end = span
        item = self._item(f"lost#{iso(start)}", "lost", at)
        item.update({"from": _s(iso(start)), "to": _s(iso(end)), "minutes": {"N": str(span_minutes(span))}})
        return self._put_new(item)

    def mark_seen(self, key: str, at: datetime) -> bool:
        """First sight of an interval (for the OutagesOpened count). False if it was seen before."""
        item = self._item(f"seen#{key}", "seen", at)
        item["key"] = _s(key)
        return self._put_new(item)

    # plumbing ------------------------------------------------------------------------------------

    def _change(self, source: str, ref: str, at: datetime, change: str, reason: str) -> bool:
        if not source or source in (OPERATOR_SOURCE, WEBHOOK_SOURCE):
            raise ValueError(f"{source!r} intervals are not opened and closed by state changes")
        at = _aware(at, "at")
        ref = _ref(ref)
        item = self._item(f"change#{source}#{ref}#{iso(at)}#{change}", "change", at)
        item.update({"source": _s(source), "ref": _s(ref), "at": _s(iso(at)), "change": _s(change),
                     "reason": _s(reason[:_MAX_REASON])})
        return self._put_new(item)

    def _item(self, sk: str, kind: str, at: datetime) -> dict[str, Any]:
        # TTL counted from the later of the event and now: a late write must not expire early.
        written = max(datetime.now(UTC), at)
        return {"pk": _s(PK), "sk": _s(sk), "kind": _s(kind), "recorded_at": _s(iso(datetime.now(UTC))),
                "expires_at": _expiry(written)}

    def _put_new(self, item: dict[str, Any]) -> bool:
        return conditional_write(lambda: self.ddb.put_item(
            TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(sk)"), self.table)

    def _items(self) -> Iterator[dict[str, Any]]:
        paginator = self.ddb.get_paginator("query")
        for page in paginator.paginate(TableName=self.table, ConsistentRead=True, KeyConditionExpression="pk = :p",
                                       ExpressionAttributeValues={":p": _s(PK)}):
            yield from page.get("Items", [])


def derive_intervals(source: str, ref: str, changes: Iterable[tuple[datetime, str, str]]) -> list[Interval]:
    """Intervals from one alarm's changes in any order: ALARM opens (a second ALARM while open keeps
    the earlier start), the first OK after it closes, an OK with nothing open is ignored.

    An OK and an ALARM of the same instant: with an interval open, the OK ends it and the ALARM
    starts the next; with none open, they make one zero-length interval (padded when replayed).
    Either way no change is swallowed."""
    out: list[Interval] = []
    opened: tuple[datetime, str] | None = None

    def close(at: datetime) -> None:
        nonlocal opened
        assert opened is not None
        out.append(Interval(source, ref, opened[0], at, f"{source}#{ref}#{iso(opened[0])}", opened[1]))
        opened = None

    by_instant: dict[datetime, dict[str, str]] = {}
    for at, change, reason in changes:
        by_instant.setdefault(at, {})[change] = reason
    for at in sorted(by_instant):
        here = by_instant[at]
        if opened is not None and CLOSE in here:
            close(at)
            if OPEN in here:
                opened = (at, here[OPEN])
        elif opened is None and OPEN in here:
            opened = (at, here[OPEN])
            if CLOSE in here:
                close(at)
    if opened is not None:
        out.append(Interval(source, ref, opened[0], None, f"{source}#{ref}#{iso(opened[0])}", opened[1]))
    return out


# --- minute spans ---------------------------------------------------------------------------------


def floor_minute(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


def ceil_minute(when: datetime) -> datetime:
    floored = floor_minute(when)
    return floored if floored == when else floored + MINUTE


def span_minutes(span: Span) -> int:
    return max(int((span[1] - span[0]) // MINUTE), 0)


def total_minutes(spans: Iterable[Span]) -> int:
    return sum(span_minutes(s) for s in spans)


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-empty, with overlapping or touching spans joined."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def subtract_spans(spans: Iterable[Span], holes: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    cuts = merge_spans(holes)
    for start, end in merge_spans(spans):
        for cut_start, cut_end in cuts:
            if cut_end <= start or cut_start >= end:
                continue
            if cut_start > start:
                out.append((start, cut_start))
            start = max(start, cut_end)
            if start >= end:
                break
        if start < end:
            out.append((start, end))
    return out


def intersect_spans(spans: Iterable[Span], window: Span) -> list[Span]:
    return merge_spans((max(s, window[0]), min(e, window[1])) for s, e in spans)


def overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


# --- judging intervals ----------------------------------------------------------------------------


def padded_span(interval: Interval, now: datetime, policy: ReplayPolicy) -> Span:
    """What a replay must cover: padded by the margin and widened to whole minutes; up to now while open."""
    start = floor_minute(interval.start - policy.margin)
    end = ceil_minute(interval.end + policy.margin) if interval.end else ceil_minute(now)
    return start, max(start, end)


@dataclass(frozen=True)
class Group:
    """Intervals whose padded spans overlap or touch: replayed as one stretch."""

    span: Span
    closed: bool  # every member has ended
    members: tuple[Interval, ...]


def merge_groups(intervals: Iterable[Interval], now: datetime, policy: ReplayPolicy) -> list[Group]:
    groups: list[Group] = []
    for interval in sorted(intervals, key=lambda i: padded_span(i, now, policy)):
        span = padded_span(interval, now, policy)
        last = groups[-1] if groups else None
        if last and span[0] <= last.span[1]:
            groups[-1] = Group((last.span[0], max(last.span[1], span[1])), last.closed and interval.end is not None,
                               last.members + (interval,))
        else:
            groups.append(Group(span, interval.end is not None, (interval,)))
    return groups


def job_windows(jobs: Iterable[Job], status: str, now: datetime, policy: ReplayPolicy) -> list[Span]:
    return merge_spans(j.window for j in jobs if j.window and j.status(now, policy.job_timeout) == status)


def jobs_of(view: LedgerView, webhook_id: str | None) -> list[Job]:
    return [j for j in view.jobs if webhook_id is None or j.webhook_id == webhook_id]


def lost_now(spans: Iterable[Span], recovered: list[Span], in_flight: list[Span], now: datetime,
             policy: ReplayPolicy, since: datetime | None = None) -> list[Span]:
    """The part of ``spans`` beyond X's reach that no Complete (or still running) job covers."""
    beyond = (since or datetime.min.replace(tzinfo=UTC), policy.oldest_replayable(now))
    return subtract_spans(intersect_spans(spans, beyond), recovered + in_flight)


def assess(view: LedgerView, now: datetime, policy: ReplayPolicy, webhook_id: str | None = None
           ) -> list[IntervalStatus]:
    """Each interval's status at ``now`` (see the module docstring), oldest first."""
    jobs = jobs_of(view, webhook_id)
    recovered = job_windows(jobs, JOB_COMPLETE, now, policy)
    in_flight = job_windows(jobs, RUNNING, now, policy)
    out = []
    for interval in view.intervals:
        span = padded_span(interval, now, policy)
        got = intersect_spans(recovered, span)
        lost = lost_now([span], recovered, in_flight, now, policy)
        pending = subtract_spans([span], got + lost)
        mine = tuple(j for j in jobs if j.window and overlaps(j.window, span))
        if interval.end is None:
            status = S_OPEN
        elif not pending:
            status = S_RECOVERED if not lost else S_LOST if not got else S_PARTIALLY_LOST
        elif any(j.status(now, policy.job_timeout) == RUNNING for j in mine):
            status = S_REPLAYING
        else:
            status = S_PENDING
        out.append(IntervalStatus(interval, status, span, span_minutes(span), total_minutes(got),
                                  total_minutes(lost), total_minutes(pending), mine))
    return out


# --- item helpers ---------------------------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _key(sk: str) -> dict[str, Any]:
    return {"pk": _s(PK), "sk": _s(sk)}


def _str(item: Mapping[str, Any], name: str) -> str:
    return item.get(name, {}).get("S", "")


def _expiry(at: datetime) -> dict[str, str]:
    return {"N": str(int((at + LEDGER_RETENTION).timestamp()))}


def _aware(when: datetime, name: str) -> datetime:
    if when.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return when.astimezone(UTC)


def _ref(ref: str) -> str:
    if not ref:
        raise ValueError("an outage needs a ref (the alarm's name, or who declared it)")
    return ref[:_MAX_REF]


def _job(item: Mapping[str, Any]) -> Job:
    def when(name: str) -> datetime | None:
        text = _str(item, name)
        return parse_time(text) if text else None

    start, end = when("window_from"), when("window_to")
    return Job(
        job_id=_str(item, "job_id"), webhook_id=_str(item, "webhook_id") or None,
        window=(start, end) if start and end else None, submitted_at=when("submitted_at"),
        x_state=_str(item, "x_state") or None, x_description=_str(item, "x_description") or None,
        reported_at=when("reported_at"),
        resubmission_of=tuple(x for x in _str(item, "resubmission_of").split(",") if x),
        counted=_str(item, "counted") or None)

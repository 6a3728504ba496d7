"""``xrelay status``: one screen that answers "am I losing events?".

:func:`gather` reads what the stack keeps, never X: the state table (desired state, the
reconcile's last run and webhook check, users, quarantine, the outage ledger and replay jobs),
the queues' depths, and, where the stack is deployed, CloudWatch (the intake's and the CRC's
metrics, alarms in ALARM). In a local stack (moto: no alarm is ever evaluated and no EMF line
becomes a metric) the events figures come from a bounded Scan of the local events table instead;
a deployed table is never scanned. Every figure says where it came from.

:func:`assess` turns the report into *problems* (something needs a person: ``xrelay status``
exits 1) and *warnings* (worth knowing, nothing to do yet), each with what to do.
:func:`render` is the text screen. The JSON (``--json``) is :class:`StatusReport`; its schema
is ``docs/schemas/status.schema.json``, regenerated with ``xrelay schema status``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from xrelay.aws import client, error_code
from xrelay.observability import NAMESPACE, M
from xrelay.receiving.signing_log import last_signed
from xrelay.recovery.outages import RUNNING, Ledger, ReplayPolicy
from xrelay.recovery.outages import assess as assess_intervals
from xrelay.storage.store import StateStore, iso
from xrelay.subscriptions.desired import DesiredState
from xrelay.tools.cli.stack import Stack
from xrelay.tools.operate.set_aside import FailureKinds, failure_kinds

SCHEMA_VERSION = 1
SOURCES = ("aaa", "xaa", "stream")  # what X delivers events from (models.Source)
QUEUES = ("EventsQueue", "EventsDLQ", "PublishFailuresQueue")
# Local only: how many event items one status reads at most (a deployed table is never scanned).
MAX_SCAN_ITEMS = 10_000
METRIC_PERIOD = timedelta(minutes=5)
METRIC_WINDOW = timedelta(hours=24)
# Outages and replay jobs older than this are not listed unless they still need something.
RECENT = timedelta(days=7)
# The reconcile is stale once this many scheduled runs have passed without one being recorded.
MISSED_RUNS = 3
# A previous_* secret or an unchecked OAuth 2.0 header seen this recently is worth a warning.
SIGNING_RECENT = timedelta(days=1)
SIGNED_WITH_SECRETS = ("client_secret", "previous_client_secret", "consumer_secret", "previous_consumer_secret")
# Minutes of an outage still pending are overdue once it ended longer ago than the replay policy's min
# age plus one job timeout plus this: by then the ReplayFunction has had a whole job to cover them.
REPLAY_SLACK = timedelta(hours=1)
# Lost minutes an operator acknowledged (`xrelay status --acknowledge-lost`), one item per outage.
LOST_ACK = "lost-ack"
# The stack's Parameters the ReplayFunction gets its policy from, by the variable ReplayPolicy reads.
REPLAY_PARAMETERS = {"REPLAY_MARGIN_MINUTES": "ReplayMarginMinutes", "REPLAY_MIN_AGE_MINUTES": "ReplayMinAgeMinutes",
                     "REPLAY_MAX_WINDOW_MINUTES": "ReplayMaxWindowMinutes",
                     "REPLAY_JOB_TIMEOUT_MINUTES": "ReplayJobTimeoutMinutes"}


# --- the report ------------------------------------------------------------------------------------


class _Model(BaseModel):
    # Every field is always in the JSON (null included), so the schema marks them all required.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class Finding(_Model):
    """One thing that needs a person (a problem) or is worth knowing (a warning)."""

    check: Literal["desired", "webhook", "crc", "signing", "reconcile", "users", "queues", "quarantine", "outages",
                   "replay", "alarms"]
    message: str  # what is wrong
    action: str  # what to do: a command, or where the README explains it


class Webhook(_Model):
    url: str | None  # the declared one (None without a desired state)
    status: Literal["valid", "invalid", "missing", "unknown"]
    webhook_id: str | None
    checked_at: datetime | None
    last_valid_at: datetime | None
    invalid_since: datetime | None
    source: str


class Crc(_Model):
    method: Literal["cloudwatch", "reconcile"]
    last_ok_at: datetime | None  # the last CRC answered (CloudWatch), or the webhook last seen valid (local)
    answered_24h: int | None
    refused_24h: int | None
    source: str


class SignedWith(_Model):
    """When one of the app secret's signing secrets last verified a delivery (intake's record)."""

    secret: Literal["client_secret", "previous_client_secret", "consumer_secret", "previous_consumer_secret"]
    scheme: Literal["oauth2", "legacy"]
    last_at: datetime | None
    unchecked_header: str | None  # X also sent this header, which the stack could not check


class Signing(_Model):
    """Which of X's two signing schemes deliveries arrive in, and which secret the CRC answers with."""

    crc_signing_secret: str  # the CrcSigningSecret Parameter: auto, client_secret or consumer_secret
    last_signed: list[SignedWith]  # newest first
    source: str


class ReconcileRun(_Model):
    at: datetime
    ok: bool
    error: str | None
    idle: str | None
    webhook_valid: bool | None
    rate_limited: bool
    out_of_time: bool
    failed: list[str]


class Reconcile(_Model):
    schedule: str | None
    scheduled_here: bool  # deployed, or a rate() that `xrelay local` runs (it runs no cron schedule)
    last_run: ReconcileRun | None
    stale: bool  # MISSED_RUNS scheduled runs passed since the last one (or, before any, since the apply)
    desired_applied_at: datetime | None
    desired_source: str | None
    source: str


class Subscriptions(_Model):
    desired: int | None
    actual: int | None  # what X had before the run's changes
    drift: int | None
    as_of: datetime | None
    source: str


class Users(_Model):
    authorized: list[str]
    revoked: list[str]
    declared_but_revoked: list[str]  # the last reconcile run skipped them
    needing_authorization: list[str]
    source: str


class SourceEvents(_Model):
    source: Literal["aaa", "xaa", "stream"]
    last_received_at: datetime | None
    last_hour: int


class Events(_Model):
    method: Literal["cloudwatch", "local-scan"]
    by_source: list[SourceEvents]
    last_hour: int
    scanned_items: int | None  # local-scan only
    truncated: bool  # local-scan stopped at MAX_SCAN_ITEMS: figures cover part of the table
    source: str


class Queue(_Model):
    logical_id: str
    messages: int  # visible
    in_flight: int  # received, not yet deleted


class Quarantine(_Model):
    pending: int
    oldest_received_at: datetime | None
    reasons: list[str]  # of the first few pending deliveries


class Outage(_Model):
    source: str  # alarm, operator or webhook
    ref: str
    started_at: datetime
    ended_at: datetime | None  # None while open
    reason: str
    status: str  # open, pending, replaying, recovered, lost, partially lost (outages.assess)
    minutes: int  # of the padded span a replay must cover
    recovered_minutes: int
    lost_minutes: int
    lost_acknowledged_minutes: int
    pending_minutes: int
    replay_overdue: bool  # minutes still pending REPLAY_SLACK after the replay should have covered them


class ReplayJob(_Model):
    job_id: str
    status: str  # running, complete, incomplete, timed out, unknown
    window_from: datetime | None
    window_to: datetime | None
    submitted_at: datetime | None
    description: str | None  # X's, once it reported


class Outages(_Model):
    intervals: list[Outage]
    not_listed: int  # recovered (or acknowledged) outages older than RECENT
    jobs: list[ReplayJob]
    acknowledged_now: int  # lost minutes this run acknowledged (--acknowledge-lost)
    source: str


class Alarm(_Model):
    name: str
    since: datetime | None
    reason: str
    description: str


class Alarms(_Model):
    evaluated: bool
    in_alarm: list[Alarm]
    total: int | None  # the stack's alarms, whatever their state
    source: str


class StatusReport(_Model):
    """What ``xrelay status --json`` prints."""

    schema_version: Literal[1]
    stack: str
    where: Literal["local", "deployed"]
    stage: str
    generated_at: datetime
    ok: bool  # no problem: the exit code is 0
    problems: list[Finding]
    warnings: list[Finding]
    webhook: Webhook
    crc: Crc
    signing: Signing
    reconcile: Reconcile
    subscriptions: Subscriptions
    users: Users
    events: Events
    queues: list[Queue]
    # The PublishFailuresQueue's messages by kind: failed batches and set-aside notes need different steps.
    publish_failures: FailureKinds
    quarantine: Quarantine
    outages: Outages
    alarms: Alarms



# --- gathering -------------------------------------------------------------------------------------


def aws_endpoint_is_local() -> bool:
    """AWS_ENDPOINT_URL points at this machine: moto (``xrelay local``), never AWS."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return bool(endpoint) and urlsplit(endpoint).hostname in ("127.0.0.1", "localhost", "::1")


def is_deployed(resources: dict[str, str]) -> bool:
    """A deployed stack runs the functions; ``xrelay local``'s stack holds only the tables and queues."""
    intake = "IntakeFunction" in resources or "WebhookFunction" in resources  # HttpApi's, or FunctionUrl's
    return intake and not aws_endpoint_is_local()


def gather(stack_name: str, *, now: datetime | None = None, deployed: bool | None = None,
           acknowledge_lost: bool = False, progress: Callable[[str], None] | None = None) -> StatusReport:
    """Read the stack's state and judge it. LookupError when there is no such stack.

    ``deployed`` overrides :func:`is_deployed` (tests); ``acknowledge_lost`` records the lost
    minutes found as acknowledged, so they stop being problems (the only write status makes).
    """
    now = now or datetime.now(UTC)
    progress = progress or (lambda step: None)
    stack = Stack(stack_name)
    progress(f"finding stack {stack_name!r}")
    try:
        resources = stack.resources
    except Exception as exc:
        if error_code(exc) == "ValidationError":  # CloudFormation's "Stack with id ... does not exist"
            raise LookupError(f"no stack {stack_name!r} (--stack-name, XRELAY_STACK or samconfig.toml)") from None
        raise
    params = stack.parameters()
    where = "deployed" if (is_deployed(resources) if deployed is None else deployed) else "local"
    stage = params.get("Stage") or "dev"
    state_table = stack.physical("StateTable")
    state = StateStore(state_table)

    progress("reading the state table (desired state, reconcile, webhook, users, quarantine, outages)")
    desired = state.desired()
    url = _declared_url(desired)
    health = state.webhook_health(url) if url else None
    last = state.last_reconcile_run()
    schedule = params.get("ReconcileSchedule")
    webhook = _webhook(url, health)
    scheduled = where == "deployed" or bool(schedule and schedule.startswith("rate("))
    reconcile = _reconcile(desired, last, schedule, scheduled, now)
    subscriptions = Subscriptions(
        desired=last.get("desired") if last else None, actual=last.get("actual") if last else None,
        drift=last.get("drift") if last else None, as_of=_time(last["at"]) if last else None,
        source="the reconcile's last run (state table); actual is what X had before that run's changes")
    users = _users(state.users(), last)
    quarantine = _quarantine(state.quarantined())
    signing = _signing(params, last_signed(state_table, state.ddb))
    outages = _outages(state_table, state.ddb, now, params, (health or {}).get("webhook_id"), acknowledge_lost)

    progress("reading the queues' depths")
    sqs = client("sqs")
    queues = [_queue(sqs, stack.queue_url(logical_id), logical_id) for logical_id in QUEUES]
    failures = next(q for q in queues if q.logical_id == "PublishFailuresQueue")
    progress("reading the publisher's failure queue (failed batches, set-aside notes)")
    publish_failures = failure_kinds(sqs, stack.queue_url("PublishFailuresQueue"),
                                     failures.messages + failures.in_flight)

    if where == "deployed":
        progress("reading CloudWatch metrics (EventsReceived, CrcAnswered, CrcRefused) and alarms")
        events, crc = cloudwatch_figures(client("cloudwatch"), stage, now)
        alarms = alarms_in_alarm(client("cloudwatch"), stack_name)
    else:
        progress("scanning the local events table")
        events = scan_local_events(state.ddb, stack.physical("EventsTable"), now)
        crc = Crc(method="reconcile", last_ok_at=webhook.last_valid_at, answered_24h=None, refused_24h=None,
                  source="the reconcile's last webhook check: X runs a CRC whenever it validates the webhook "
                         "(local: the CRC function writes nothing and moto keeps no metrics)")
        alarms = Alarms(evaluated=False, in_alarm=[], total=None,
                        source="not evaluated locally: moto evaluates no alarm")

    report = StatusReport(
        schema_version=SCHEMA_VERSION, stack=stack_name, where=where, stage=stage, generated_at=now, ok=True,
        problems=[], warnings=[], webhook=webhook, crc=crc, signing=signing, reconcile=reconcile,
        subscriptions=subscriptions,
        users=users, events=events, queues=queues, publish_failures=publish_failures,
        quarantine=quarantine, outages=outages, alarms=alarms)
    return assess(report)


def _declared_url(desired: dict[str, str] | None) -> str | None:
    return DesiredState.from_json(desired["state"]).webhook.url if desired else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


def _webhook(url: str | None, health: dict[str, str] | None) -> Webhook:
    health = health or {}
    status = health.get("status") or "unknown"
    return Webhook(url=url, status=status if status in ("valid", "invalid", "missing") else "unknown",
                   webhook_id=health.get("webhook_id") or None, checked_at=_time(health.get("checked_at")),
                   last_valid_at=_time(health.get("last_valid_at")), invalid_since=_time(health.get("invalid_since")),
                   source="the reconcile's last check of the declared webhook at X (state table)")


def _reconcile(desired: dict[str, str] | None, last: dict[str, Any] | None, schedule: str | None,
               scheduled_here: bool, now: datetime) -> Reconcile:
    run = None
    if last:
        run = ReconcileRun(at=_time(last["at"]), ok=bool(last.get("ok")), error=last.get("error"),
                           idle=last.get("idle"), webhook_valid=last.get("webhook_valid"),
                           rate_limited=bool(last.get("rate_limited")), out_of_time=bool(last.get("out_of_time")),
                           failed=list(last.get("failed") or []))
    applied_at = _time(desired["applied_at"]) if desired else None
    since = run.at if run else applied_at  # before the first run: the apply it should have followed
    missed = scheduled_runs(schedule, since, now, MISSED_RUNS) if since and schedule else None
    return Reconcile(schedule=schedule, scheduled_here=scheduled_here, last_run=run,
                     stale=missed is not None and missed >= MISSED_RUNS, desired_applied_at=applied_at,
                     desired_source=desired["source"] if desired else None,
                     source="the reconcile's record of its last run and the desired state (state table)")


def _users(known: dict[str, dict[str, str]], last: dict[str, Any] | None) -> Users:
    return Users(authorized=sorted(u for u, s in known.items() if s.get("status") == "authorized"),
                 revoked=sorted(u for u, s in known.items() if s.get("status") == "revoked"),
                 declared_but_revoked=sorted((last or {}).get("revoked") or []),
                 needing_authorization=sorted((last or {}).get("needs_authorization") or []),
                 source="users' status (state table); declared but revoked, needing authorization: "
                        "the reconcile's last run")


def _signing(params: dict[str, str], recorded: list[dict[str, str]]) -> Signing:
    known = [SignedWith(secret=r["secret"], scheme=r["scheme"], last_at=_time(r.get("last_at")),
                        unchecked_header=r.get("unchecked_header"))
             for r in recorded if r.get("secret") in SIGNED_WITH_SECRETS and r.get("scheme") in ("oauth2", "legacy")]
    known.sort(key=lambda signed: signed.last_at or datetime.min.replace(tzinfo=UTC), reverse=True)
    return Signing(crc_signing_secret=params.get("CrcSigningSecret") or "auto", last_signed=known,
                   source="the CrcSigningSecret Parameter; intake's record of the secret that last verified a "
                          "delivery (state table, written at most every 10 minutes per warm intake)")


def _quarantine(pending: Iterable[dict[str, Any]]) -> Quarantine:
    items = sorted(pending, key=lambda q: q["received_at"])
    return Quarantine(pending=len(items), oldest_received_at=_time(items[0]["received_at"]) if items else None,
                      reasons=[q["reason"][:200] for q in items[:3]])


def _queue(sqs: Any, url: str, logical_id: str) -> Queue:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return Queue(logical_id=logical_id, messages=int(attrs["ApproximateNumberOfMessages"]),
                 in_flight=int(attrs["ApproximateNumberOfMessagesNotVisible"]))


def replay_policy(params: dict[str, str]) -> ReplayPolicy:
    """The ReplayFunction's policy, from the stack's Parameters (defaults for any it lacks)."""
    return ReplayPolicy.from_env({var: params.get(name, "") for var, name in REPLAY_PARAMETERS.items()})


def _outages(table: str, ddb: Any, now: datetime, params: dict[str, str], known_webhook_id: str | None,
             acknowledge: bool) -> Outages:
    policy = replay_policy(params)
    overdue_before = now - policy.min_age - policy.job_timeout - REPLAY_SLACK
    view = Ledger(table, ddb).read()
    webhook_id = params.get("WebhookId") or known_webhook_id  # whose replay jobs count, as the ReplayFunction
    acknowledged = _lost_acknowledged(ddb, table)
    acknowledged_now = 0
    listed, hidden = [], 0
    for s in assess_intervals(view, now, policy, webhook_id):
        key = s.interval.key
        if acknowledge and s.lost_minutes > acknowledged.get(key, 0):
            acknowledged_now += s.lost_minutes - acknowledged.get(key, 0)
            acknowledged[key] = s.lost_minutes
            # No TTL: a webhook outage is never expired either, and it must not come back unacknowledged.
            ddb.put_item(TableName=table, Item={"pk": {"S": LOST_ACK}, "sk": {"S": key},
                                                "minutes": {"N": str(s.lost_minutes)}, "at": {"S": iso(now)}})
        outage = Outage(source=s.interval.source, ref=s.interval.ref, started_at=s.interval.start,
                        ended_at=s.interval.end, reason=s.interval.reason, status=s.status, minutes=s.minutes,
                        recovered_minutes=s.recovered_minutes, lost_minutes=s.lost_minutes,
                        lost_acknowledged_minutes=min(acknowledged.get(key, 0), s.lost_minutes),
                        pending_minutes=s.pending_minutes,
                        replay_overdue=bool(s.pending_minutes and s.interval.end and s.interval.end < overdue_before))
        settled = outage.pending_minutes == 0 and outage.lost_minutes == outage.lost_acknowledged_minutes
        if outage.ended_at is not None and settled and outage.ended_at < now - RECENT:
            hidden += 1
        else:
            listed.append(outage)
    jobs = []
    for job in reversed(view.jobs):  # newest first
        status = job.status(now, policy.job_timeout)
        when = job.reported_at or job.submitted_at
        if status == RUNNING or (when and when >= now - RECENT):
            jobs.append(ReplayJob(job_id=job.job_id, status=status,
                                  window_from=job.window[0] if job.window else None,
                                  window_to=job.window[1] if job.window else None,
                                  submitted_at=job.submitted_at, description=job.x_description))
    return Outages(intervals=listed, not_listed=hidden, jobs=jobs[:20], acknowledged_now=acknowledged_now,
                   source="the outage ledger and replay jobs (state table), judged with the stack's replay "
                          "Parameters; X's replay reaches 24 hours back")


def _lost_acknowledged(ddb: Any, table: str) -> dict[str, int]:
    paginator = ddb.get_paginator("query")
    return {item["sk"]["S"]: int(item["minutes"]["N"])
            for page in paginator.paginate(TableName=table, ConsistentRead=True, KeyConditionExpression="pk = :p",
                                           ExpressionAttributeValues={":p": {"S": LOST_ACK}})
            for item in page.get("Items", [])}


def scan_local_events(ddb: Any, table: str, now: datetime, limit: int = MAX_SCAN_ITEMS) -> Events:
    """Last received time and last hour's count per source, from a bounded Scan (local stacks only)."""
    latest: dict[str, datetime] = {}
    last_hour = dict.fromkeys(SOURCES, 0)
    seen = 0
    truncated = False
    paginator = ddb.get_paginator("scan")
    pages = paginator.paginate(TableName=table, ProjectionExpression="#s, received_at",
                               ExpressionAttributeNames={"#s": "source"}, PaginationConfig={"PageSize": 1000})
    for page in pages:
        for item in page.get("Items", []):
            if seen >= limit:
                truncated = True
                break
            seen += 1
            source, received = item.get("source", {}).get("S"), item.get("received_at", {}).get("S")
            if source not in last_hour or not received:  # not an event item
                continue
            at = _time(received)
            latest[source] = max(latest.get(source, at), at)
            last_hour[source] += at >= now - timedelta(hours=1)
        if truncated:
            break
    return Events(method="local-scan", by_source=[SourceEvents(source=s, last_received_at=latest.get(s),
                                                               last_hour=last_hour[s]) for s in SOURCES],
                  last_hour=sum(last_hour.values()), scanned_items=seen, truncated=truncated,
                  source=f"a scan of the local events table ({seen} items{', stopped there' if truncated else ''}): "
                         "new events stored, duplicates not counted")


def cloudwatch_figures(cw: Any, stage: str, now: datetime) -> tuple[Events, Crc]:
    """Events received per source and the CRC's answers, from CloudWatch (5-minute sums, last 24 hours).

    ListMetrics finds the (Source, EventType) series intake emitted; GetMetricData reads them and the
    CRC's two counts, in one call up to 500 series.
    """
    end = _ceil(now, METRIC_PERIOD)
    start = end - METRIC_WINDOW
    series = [m["Dimensions"] for page in cw.get_paginator("list_metrics").paginate(
        Namespace=NAMESPACE, MetricName=M.EVENTS_RECEIVED, Dimensions=[{"Name": "Stage", "Value": stage}])
        for m in page["Metrics"]]
    crc_dims = [{"Name": "service", "Value": "crc"}, {"Name": "Stage", "Value": stage}]
    queries = [_stat("crcok", M.CRC_ANSWERED, crc_dims), _stat("crcrefused", M.CRC_REFUSED, crc_dims)]
    queries += [_stat(f"ev{i}", M.EVENTS_RECEIVED, dims) for i, dims in enumerate(series)]
    points: dict[str, list[tuple[datetime, float]]] = {}
    for first in range(0, len(queries), 500):
        for page in cw.get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries[first:first + 500], StartTime=start, EndTime=end):
            for result in page["MetricDataResults"]:
                points.setdefault(result["Id"], []).extend(zip(result["Timestamps"], result["Values"], strict=True))
    hour_ago = end - timedelta(hours=1)
    latest: dict[str, datetime] = {}
    last_hour = dict.fromkeys(SOURCES, 0)
    for i, dims in enumerate(series):
        source = next((d["Value"] for d in dims if d["Name"] == "Source"), None)
        if source not in last_hour:
            continue
        for at, value in points.get(f"ev{i}", []):
            if value > 0:
                latest[source] = max(latest.get(source, at), at)
                last_hour[source] += int(value) if at >= hour_ago else 0
    answered = [at for at, value in points.get("crcok", []) if value > 0]
    events = Events(method="cloudwatch", by_source=[SourceEvents(source=s, last_received_at=latest.get(s),
                                                                 last_hour=last_hour[s]) for s in SOURCES],
                    last_hour=sum(last_hour.values()), scanned_items=None, truncated=False,
                    source="CloudWatch EventsReceived (duplicates included), 5-minute sums over 24 hours: "
                           "a time is the start of the 5 minutes")
    crc = Crc(method="cloudwatch", last_ok_at=max(answered) if answered else None,
              answered_24h=int(sum(v for _, v in points.get("crcok", []))),
              refused_24h=int(sum(v for _, v in points.get("crcrefused", []))),
              source="CloudWatch CrcAnswered / CrcRefused, 5-minute sums over 24 hours")
    return events, crc


def _stat(query_id: str, name: str, dimensions: list[dict[str, str]]) -> dict[str, Any]:
    return {"Id": query_id, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions},
        "Period": int(METRIC_PERIOD.total_seconds()), "Stat": "Sum"}}


def _ceil(when: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    return datetime.fromtimestamp(-(-when.timestamp() // seconds) * seconds, UTC)


def alarms_in_alarm(cw: Any, stack_name: str) -> Alarms:
    """The stack's alarms (SAM names them ``<stack>-<LogicalId>-<suffix>``) that are in ALARM."""
    found = [alarm for page in cw.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{stack_name}-", AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])]
    firing = [Alarm(name=a["AlarmName"], since=a.get("StateUpdatedTimestamp"), reason=a.get("StateReason", ""),
                    description=" ".join(a.get("AlarmDescription", "").split()))
              for a in found if a.get("StateValue") == "ALARM"]
    return Alarms(evaluated=True, in_alarm=firing, total=len(found),
                  source=f"CloudWatch DescribeAlarms, names starting {stack_name}-")


# --- schedules -------------------------------------------------------------------------------------

_MONTHS = {name: i for i, name in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)}
_WEEKDAYS = {name: i for i, name in enumerate("SUN MON TUE WED THU FRI SAT".split(), 1)}
_CRON_HORIZON = timedelta(days=35)


def scheduled_runs(expression: str, after: datetime, until: datetime, enough: int) -> int | None:
    """How many times an EventBridge schedule fired in (after, until], counting up to ``enough``.

    None for an expression this reader cannot evaluate (cron ``L``, ``W`` or ``#``).
    """
    from xrelay.tools.cli.template import rate_seconds

    every = rate_seconds(expression)
    if every:
        return min(int((until - after).total_seconds() // every), enough)
    if not expression.startswith("cron(") or not expression.endswith(")"):
        return None
    try:
        minute, hour, day, month, weekday, year = (
            _cron_field(text, low, high, names) for text, (low, high, names) in zip(
                expression[5:-1].split(), ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS),
                                           (1, 7, _WEEKDAYS), (1970, 2199, {})), strict=True))
    except ValueError:
        return None
    if until - after > _CRON_HORIZON:  # long enough for any schedule that runs at least monthly
        return enough
    fired = 0
    at = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    while at <= until and fired < enough:
        fields = ((minute, at.minute), (hour, at.hour), (day, at.day), (month, at.month),
                  (weekday, at.isoweekday() % 7 + 1), (year, at.year))
        fired += all(allowed is None or value in allowed for allowed, value in fields)
        at += timedelta(minutes=1)
    return fired


def _cron_field(text: str, low: int, high: int, names: dict[str, int]) -> set[int] | None:
    """The values a cron field allows (None: any). ValueError for what this reader does not evaluate."""
    if text in ("*", "?"):
        return None

    def value(word: str) -> int:
        return names[word.upper()] if word.upper() in names else int(word)

    allowed: set[int] = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            first, last = low, high
        elif "-" in body:
            first, last = (value(w) for w in body.split("-", 1))
        else:
            first = value(body)
            last = high if step else first
        allowed.update(range(first, last + 1, int(step) if step else 1))
    return allowed


# --- judging ---------------------------------------------------------------------------------------


def assess(report: StatusReport) -> StatusReport:
    """Fill ``problems`` (a person must act: exit 1), ``warnings`` and ``ok`` from the report's figures."""
    problems: list[Finding] = []
    warnings: list[Finding] = []
    deployed = report.where == "deployed"
    rec, run = report.reconcile, report.reconcile.last_run

    if rec.desired_applied_at is None:
        warnings.append(Finding(
            check="desired", message="no desired state stored: nothing keeps X's webhook and subscriptions true",
            action="`xrelay subscriptions apply FILE` (README: Subscriptions)"))

    hook = report.webhook
    if hook.status in ("invalid", "missing"):
        since = f" since {_show(hook.invalid_since)}" if hook.invalid_since else ""
        problems.append(Finding(
            check="webhook", message=f"webhook {hook.url} is {hook.status} at X{since}: X delivers nothing to it",
            action="read the reconcile's log (CrcValidationFailed: the CRC function or the consumer secret; "
                   "WebhookLimitExceeded: the account's webhook slots); `xrelay subscriptions status` "
                   "(README: Alarms, WebhookInvalidAlarm)"))

    rerun = "`xrelay invoke ReconcileFunction` runs it now"
    unscheduled = "" if rec.scheduled_here else " (`xrelay local` runs no cron schedule)"
    if run is None:
        if rec.desired_applied_at is not None:
            # A problem once the schedule had its chances, else the first run is still due.
            (problems if rec.scheduled_here and rec.stale else warnings).append(Finding(
                check="reconcile", message=f"the desired state was applied {_show(rec.desired_applied_at)} "
                                           f"but no reconcile run is recorded{unscheduled}", action=rerun))
    else:
        if not run.ok:
            problems.append(Finding(
                check="reconcile", message=f"the last reconcile run ({_show(run.at)}) failed: {run.error}",
                action=f"fix what it names (X unreachable, the app secret), then {rerun} "
                       "(README: Alarms, ReconcileFailingAlarm)"))
        elif run.idle and rec.desired_applied_at is not None:
            warnings.append(Finding(check="reconcile", message=f"the last reconcile run was idle: {run.idle}",
                                    action="`xrelay subscriptions apply FILE` to resume, if that is wanted"))
        if rec.stale:
            (problems if rec.scheduled_here else warnings).append(Finding(
                check="reconcile", message=f"no reconcile run since {_show(run.at)}: {MISSED_RUNS} runs of "
                                           f"{rec.schedule} were due since{unscheduled}",
                action=("check ReconcileFunction's schedule, throttles and errors (README: Alarms, "
                        "ReconcileFailingAlarm); " if deployed else "is `xrelay local` running with --no-schedules? ")
                + rerun))
        if run.rate_limited or run.out_of_time:
            warnings.append(Finding(
                check="reconcile", message="the last reconcile run stopped early ("
                + ("X's rate limit" if run.rate_limited else "out of time") + "); the next run resumes",
                action="nothing, unless it keeps happening: `xrelay subscriptions status` shows what is left"))
        if run.failed:
            warnings.append(Finding(
                check="reconcile", message=f"{len(run.failed)} change(s) X refused in the last run: "
                + "; ".join(run.failed[:3]), action="the reconcile's log has X's answer for each"))

    users = report.users
    if users.needing_authorization:
        problems.append(Finding(
            check="users", message="declared users the reconcile cannot act for (no stored credentials, or X "
                                   f"refused their refresh): {', '.join(users.needing_authorization)}",
            action="`xrelay users login USER_ID` (in a browser), or `xrelay users authorize USER_ID` (tokens from a "
                   "prompt, --stdin or --from-file) for each (README: Subscriptions)"))
    if users.declared_but_revoked:
        warnings.append(Finding(
            check="users", message="declared users who revoked the app, not subscribed: "
                                   + ", ".join(users.declared_but_revoked),
            action="they must authorise the app again (`xrelay users authorize`), or drop them from the desired state"))

    _assess_signing(report, warnings)

    if report.crc.refused_24h:
        warnings.append(Finding(
            check="crc", message=f"{report.crc.refused_24h} CRC token(s) refused in 24 hours",
            action="read the CRC function's log: a refused token from X gets the webhook invalidated "
                   "(README: Metrics, CrcRefused)"))

    for queue in report.queues:
        held = queue.messages + queue.in_flight
        if queue.logical_id == "EventsDLQ" and held:
            problems.append(Finding(
                check="queues", message=f"the events DLQ holds {held} message(s): a consumer failed them 5 times",
                action="fix the consumer, then `xrelay dlq redrive` (README: Alarms, EventsDLQAlarm)"))
        elif queue.logical_id == "PublishFailuresQueue" and held:
            _assess_publish_failures(report.publish_failures, held, problems)

    if report.quarantine.pending:
        problems.append(Finding(
            check="quarantine", message=f"{report.quarantine.pending} delivery(ies) quarantined, oldest "
                                        f"{_show(report.quarantine.oldest_received_at)}: their events are not stored",
            action="`xrelay events quarantine` shows why; fix or upgrade, then `xrelay events reprocess` "
                   "(or give one up: `xrelay events discard ID --reason WHY`)"))

    _assess_outages(report, problems, warnings)

    for alarm in report.alarms.in_alarm:
        problems.append(Finding(check="alarms", message=f"{alarm.name} is in ALARM since {_show(alarm.since)}: "
                                                        f"{alarm.reason}",
                                action=alarm.description or "README: Alarms"))

    return report.model_copy(update={"problems": problems, "warnings": warnings, "ok": not problems})


def _assess_publish_failures(kinds: FailureKinds, held: int, problems: list[Finding]) -> None:
    for count, what, action in (
            (kinds.batches, "failed batch(es): their events are stored but were never queued",
             "fix the cause, then `xrelay events republish --from-failures` (README: Alarms, PublishFailuresAlarm)"),
            (kinds.set_aside, "set-aside note(s): each names a stored record that can never be published as it is",
             "`xrelay events set-aside list` shows each record's key and why; deal with it, then "
             "`xrelay events set-aside discard ID --reason WHY` (README: Set-aside records)")):
        if count:
            problems.append(Finding(check="queues", message=f"the publisher's failure queue holds {count} {what}",
                                    action=action))
    unread = held - kinds.batches - kinds.set_aside
    if unread > 0:
        what = f"{kinds.other} message(s) that are neither" if kinds.complete and kinds.other == unread \
            else f"{unread} more message(s) this look did not classify (in flight, or beyond its {kinds.read} read)"
        problems.append(Finding(
            check="queues", message=f"the publisher's failure queue holds {what}",
            action="`xrelay status` again shortly, or read them in the SQS console (README: Alarms, "
                   "PublishFailuresAlarm)"))


def _assess_signing(report: StatusReport, warnings: list[Finding]) -> None:
    recent = report.generated_at - SIGNING_RECENT
    for signed in report.signing.last_signed:
        if signed.last_at is None or signed.last_at < recent:
            continue
        if signed.secret.startswith("previous_"):
            warnings.append(Finding(
                check="signing", message=f"X signed a delivery with {signed.secret} at {_show(signed.last_at)}: "
                                         "the rotation is not finished",
                action=f"keep {signed.secret} until X stops using it (README: X's two signing schemes)"))
        if signed.unchecked_header:
            warnings.append(Finding(
                check="signing", message=f"X also sends {signed.unchecked_header} (last {_show(signed.last_at)}), "
                                         "which this stack cannot check: the X app secret holds no client_secret",
                action="add the app's OAuth 2.0 client_secret to the X app secret; with CrcSigningSecret=auto "
                       "the CRC then answers with it too (README: X's two signing schemes)"))


def _assess_outages(report: StatusReport, problems: list[Finding], warnings: list[Finding]) -> None:
    for outage in report.outages.intervals:
        what = f"{outage.source} outage" + ("" if outage.ref == outage.source else f" {outage.ref}") \
            + f" from {_show(outage.started_at)}"
        unacknowledged = outage.lost_minutes - outage.lost_acknowledged_minutes
        if unacknowledged > 0:
            problems.append(Finding(
                check="outages", message=f"{what}: {unacknowledged} minute(s) lost, beyond X's 24-hour replay",
                action="tell your consumers or recover them elsewhere, then `xrelay status --acknowledge-lost` "
                       "(README: Outages and replay)"))
        if outage.ended_at is None:
            warnings.append(Finding(check="outages", message=f"{what} is still open ({outage.reason or 'no reason'})",
                                    action="nothing yet: ReplayFunction replays it once it closes, or in parts "
                                           "near X's 24-hour horizon (`xrelay replay status`)"))
        elif outage.pending_minutes and outage.status == "replaying":
            warnings.append(Finding(check="outages", message=f"{what}: {outage.pending_minutes} minute(s) being "
                                                             "replayed", action="nothing: a replay job is running"))
        elif outage.pending_minutes and outage.replay_overdue:
            problems.append(Finding(
                check="outages", message=f"{what} to {_show(outage.ended_at)}: {outage.pending_minutes} minute(s) "
                                         "still not replayed",
                action="read ReplayFunction's log and `xrelay replay status`; `xrelay invoke ReplayFunction` runs it "
                       "now; minutes older than 24 hours are lost (README: Outages and replay)"))
        elif outage.pending_minutes:
            warnings.append(Finding(check="outages", message=f"{what}: {outage.pending_minutes} minute(s) waiting "
                                                             "for the replay",
                                    action="nothing yet: `xrelay replay status` shows the next window"))
    for job in report.outages.jobs:
        if job.status == "running":
            warnings.append(Finding(check="replay", message=f"replay job {job.job_id} running since "
                                                            f"{_show(job.submitted_at)}",
                                    action="nothing: X reports when it ends"))
        elif job.status in ("incomplete", "timed out"):
            ended = "ended Incomplete" if job.status == "incomplete" else "never reported (timed out)"
            warnings.append(Finding(check="replay", message=f"replay job {job.job_id} {ended}",
                                    action="nothing: the replay submits the window again"))


def _show(when: datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else "-"


# --- the screen ------------------------------------------------------------------------------------


def render(report: StatusReport) -> str:
    hook, crc, rec, subs, users = report.webhook, report.crc, report.reconcile, report.subscriptions, report.users
    lines = [f"xrelay status of stack {report.stack!r} (stage {report.stage}, {report.where}) at "
             f"{_show(report.generated_at)}", f"webhook {hook.url or '(none declared)'}", ""]
    for title, label, findings in (("NEEDS A PERSON", "PROBLEM", report.problems),
                                   ("WARNINGS", "warning", report.warnings)):
        if findings:
            lines.append(f"{title} ({len(findings)})")
            for f in findings:
                lines += [f"  {label:<8} [{f.check}] {f.message}", f"           do: {f.action}"]
            lines.append("")
    run = rec.last_run
    deployed = report.where == "deployed"
    # The FROM column names the source briefly; --json carries each section's full `source`.
    rows = [
        ("webhook", f"{hook.status}" + (f", id {hook.webhook_id}" if hook.webhook_id else "")
         + f", checked {_show(hook.checked_at)}, last valid {_show(hook.last_valid_at)}", "reconcile's last check"),
        ("last CRC", f"{_show(crc.last_ok_at)}; {crc.answered_24h} answered, {crc.refused_24h} refused in 24 h"
         if crc.method == "cloudwatch" else f"webhook last seen valid {_show(crc.last_ok_at)}",
         "CloudWatch" if crc.method == "cloudwatch" else "reconcile's last check (the CRC writes nothing)"),
        ("signing", f"CRC answers with {report.signing.crc_signing_secret}; deliveries last verified with "
         + (", ".join(f"{w.secret} ({w.scheme}) {_show(w.last_at)}" for w in report.signing.last_signed) or "none yet"),
         "Parameter, intake's record"),
        ("reconcile", (f"last run {_show(run.at)} " + ("ok" if run.ok else f"FAILED: {run.error}")
                       + (f" (idle: {run.idle})" if run.idle else "") if run else "no run recorded")
         + f"; {rec.schedule or 'no schedule'}" + ("" if rec.scheduled_here else " (not run by `xrelay local`)"),
         "state table"),
        ("subscriptions", f"desired {_n(subs.desired)}, actual {_n(subs.actual)}, drift {_n(subs.drift)}",
         "reconcile's last run"),
        ("users", f"{len(users.authorized)} authorised, {len(users.revoked)} revoked, "
                  f"{len(users.needing_authorization)} needing authorisation", "state table, last run"),
        ("quarantine", f"{report.quarantine.pending} pending"
         + (f", oldest {_show(report.quarantine.oldest_received_at)}" if report.quarantine.pending else ""),
         "state table"),
        ("queues", ", ".join(f"{q.logical_id} {q.messages}" + (f" (+{q.in_flight} in flight)" if q.in_flight else "")
                             for q in report.queues), "SQS"),
        ("publish failures", f"{report.publish_failures.batches} failed batch(es), {report.publish_failures.set_aside} "
         f"set-aside note(s), {report.publish_failures.other} other"
         + ("" if report.publish_failures.complete else f" (of {report.publish_failures.read} read)"),
         "PublishFailuresQueue"),
        ("alarms", (", ".join(a.name for a in report.alarms.in_alarm) or "none in ALARM")
         + f" (of {report.alarms.total})" if deployed else "not evaluated locally",
         "CloudWatch" if deployed else "moto evaluates none"),
    ]
    lines += _columns(("WHAT", "STATE", "FROM"), rows)
    lines += ["", f"EVENTS: {report.events.last_hour} in the last hour, from {report.events.source}"]
    lines += _columns(("SOURCE", "LAST RECEIVED", "LAST HOUR"),
                      [(s.source, _show(s.last_received_at), str(s.last_hour)) for s in report.events.by_source])
    outages = report.outages
    lines += ["", "OUTAGES" + (f" ({outages.not_listed} older settled ones not listed)" if outages.not_listed else "")]
    lines += _columns(("SOURCE", "REF", "FROM", "TO", "STATUS", "MINUTES", "RECOVERED", "LOST (ACK)", "PENDING"),
                      [(o.source, o.ref[:40], _show(o.started_at), _show(o.ended_at) if o.ended_at else "open",
                        o.status, str(o.minutes), str(o.recovered_minutes),
                        f"{o.lost_minutes} ({o.lost_acknowledged_minutes})", str(o.pending_minutes))
                       for o in outages.intervals])
    lines += ["", "REPLAY JOBS"]
    lines += _columns(("JOB", "STATUS", "WINDOW", "SUBMITTED"),
                      [(j.job_id, j.status, f"{_show(j.window_from)} .. {_show(j.window_to)}", _show(j.submitted_at))
                       for j in outages.jobs])
    lines += ["", f"{len(report.problems)} problem(s) need a person" if report.problems
              else "nothing needs a person"]
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "-" if value is None else str(value)


def _columns(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in (headers, *rows)]

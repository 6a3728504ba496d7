"""Keep X's side true: make the webhook and the AAA/XAA subscriptions match the declared state.

One run is three steps, kept apart so that ``xrelay subscriptions status`` can show the plan
without doing it:

1. :func:`observe` reads X (``GET /2/webhooks``, the AAA list, every page of the XAA list);
2. :func:`plan` diffs that against the :class:`~xrelay.subscriptions.desired.DesiredState` (pure, apart from
   reading which users are revoked or have stored credentials) into table rows and actions;
3. :func:`execute` performs the actions one by one. An error from X on one action is logged,
   counted by its code and does not stop the others; a 429 (or a rate-limit budget X already
   said is spent) stops the run cleanly: the next scheduled run resumes from a fresh observation.

Rules the plan follows:

* the webhook is the one whose URL is the declared one; other webhooks (another environment's)
  are never touched. Missing: registered. ``valid: false``: re-validated with ``PUT``. Every
  stretch it was not valid is recorded in the state table for the replay.
* prune (off by default: extras are only reported) deletes AAA users and XAA subscriptions of
  *this* webhook only: subscriptions delivered to another webhook, or to none (stream-only), are
  not ours. Subscriptions of types a file cannot declare are never pruned.
* a user who revoked the app is never re-subscribed until authorised again; a user without
  stored credentials is reported as needing authorisation. Neither fails the run.
* a second run with nothing to change makes no write call to X.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from xrelay.events import event_types
from xrelay.subscriptions.desired import DesiredState, SubscriptionKey, XaaSubscriptionSpec
from xrelay.subscriptions.xapi import (
    Endpoint,
    RateLimited,
    UserCredentials,
    Webhook,
    XaaSubscription,
    XApiClient,
    XApiError,
    same_url,
)

_log = logging.getLogger("xrelay.reconcile")

# X's error codes that mean the thing is already the way we want it.
ALREADY_DONE = {"DuplicateSubscriptionFailed"}
GONE = {"SubscriptionNotFound"}


class Op(StrEnum):
    REGISTER_WEBHOOK = "register"
    VALIDATE_WEBHOOK = "re-validate"
    SUBSCRIBE_AAA = "subscribe"
    UNSUBSCRIBE_AAA = "unsubscribe"
    CREATE_XAA = "create"
    UPDATE_XAA_TAG = "update tag"
    DELETE_XAA = "delete"

    @property
    def endpoint(self) -> Endpoint:
        return {
            Op.REGISTER_WEBHOOK: Endpoint.WEBHOOK_CREATE,
            Op.VALIDATE_WEBHOOK: Endpoint.WEBHOOK_VALIDATE,
            Op.SUBSCRIBE_AAA: Endpoint.AAA_SUBSCRIBE,
            Op.UNSUBSCRIBE_AAA: Endpoint.AAA_UNSUBSCRIBE,
            Op.CREATE_XAA: Endpoint.XAA_CREATE,
            Op.UPDATE_XAA_TAG: Endpoint.XAA_UPDATE,
            Op.DELETE_XAA: Endpoint.XAA_DELETE,
        }[self]


@dataclass(frozen=True)
class Action:
    op: Op
    what: str  # the row it fixes, e.g. "AAA user 4337869213"
    user_id: str | None = None  # whose OAuth context the call needs (None: the app's bearer token)
    spec: XaaSubscriptionSpec | None = None
    subscription_id: str | None = None
    target_user: str | None = None  # AAA: the user subscribed or unsubscribed


@dataclass(frozen=True)
class Row:
    """One line of ``xrelay subscriptions status``."""

    what: str
    desired: str
    actual: str
    next: str  # what the next reconcile does about it ("-" for nothing)


@dataclass
class Observation:
    """What X reported. A ``None`` section could not be read (or was not needed)."""

    webhook: Webhook | None
    other_webhooks: list[Webhook] = field(default_factory=list)
    aaa_users: list[str] | None = None
    xaa: list[XaaSubscription] | None = None  # only this webhook's subscriptions
    xaa_elsewhere: int = 0  # subscriptions of the app delivered to another webhook or to none
    errors: list[str] = field(default_factory=list)  # sections X would not let us read


@dataclass
class Plan:
    rows: list[Row] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    drift: int = 0  # differences found: what the actions fix plus extras left because prune is off
    needs_authorization: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    desired_count: int = 0
    actual_count: int = 0


@dataclass
class Report:
    """The outcome of one run: what the handler logs, returns and turns into metrics."""

    plan: Plan
    webhook_valid: bool | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # X's error codes
    rate_limited: bool = False  # the run stopped early on X's rate limit; the next one resumes
    out_of_time: bool = False  # the run stopped early to finish within the Lambda's timeout
    rate_limited_until: datetime | None = None
    skipped: int = 0  # actions not attempted (rate limited, or no webhook to attach to)
    needs_authorization: set[str] = field(default_factory=set)
    outage_closed: dict[str, str] | None = None

    @property
    def users_needing_authorization(self) -> set[str]:
        """Known before the run (no credentials) plus found during it (X refused a refresh)."""
        return self.needs_authorization | self.plan.needs_authorization

    def summary(self) -> dict[str, Any]:
        return {
            "desired": self.plan.desired_count,
            "actual": self.plan.actual_count,
            "drift": self.plan.drift,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "webhook_valid": self.webhook_valid,
            "needs_authorization": sorted(self.users_needing_authorization),
            "revoked": sorted(self.plan.revoked),
            "errors": dict(self.errors),
            "rate_limited": self.rate_limited,
            "out_of_time": self.out_of_time,
            "rate_limited_until": self.rate_limited_until.isoformat() if self.rate_limited_until else None,
            "skipped": self.skipped,
            "done": self.done,
            "failed": self.failed,
        }


class Users(Protocol):
    """Who may be subscribed: revocations (state table) and stored credentials (Secrets Manager)."""

    def revoked(self, user_id: str) -> bool: ...

    def has_credentials(self, user_id: str) -> bool: ...

    def credentials(self, user_id: str, client: XApiClient) -> UserCredentials: ...


class NoWebhook(Exception):
    """An action needs the webhook id and the webhook could not be registered."""


class _Stop(Exception):
    def __init__(self, reset_at: datetime | None):
        self.reset_at = reset_at


# --- 1. observe --------------------------------------------------------------------------------------


def observe(client: XApiClient, desired: DesiredState, *, full: bool = False) -> Observation:
    """Read X's side. ``full`` lists AAA and XAA even when nothing of them is declared (status).

    Raises :class:`~xrelay.subscriptions.xapi.XApiError` when even the webhooks cannot be listed (nothing can
    be decided without them); a failure to list AAA or XAA leaves that section ``None``.
    """
    webhooks = client.list_webhooks()
    mine = [w for w in webhooks if same_url(w.url, desired.webhook.url)]
    obs = Observation(webhook=mine[0] if mine else None,
                      other_webhooks=[w for w in webhooks if not same_url(w.url, desired.webhook.url)])
    if obs.webhook is None:  # nothing can be attached to a webhook that does not exist
        obs.aaa_users, obs.xaa = [], []
        return obs
    wanted = bool(desired.prune or full)
    obs.aaa_users = _read_section(obs, "AAA", lambda: client.list_aaa_subscriptions(obs.webhook.id)) \
        if desired.account_activity or wanted else []
    everything = _read_section(obs, "XAA", client.list_xaa_subscriptions) if desired.activity or wanted else []
    if everything is not None:
        obs.xaa = [s for s in everything if s.webhook_id == obs.webhook.id]
        obs.xaa_elsewhere = len(everything) - len(obs.xaa)
    return obs


def _read_section(obs: Observation, section: str, read: Callable[[], Any]) -> Any:
    """One list call; X's refusal leaves the section unknown (None) and the run goes on. A 429 propagates."""
    try:
        return read()
    except RateLimited:
        raise
    except XApiError as exc:
        obs.errors.append(f"{section} list: {exc.code}")
        _log_x_error(f"listing {section} subscriptions", exc)
        return None


# --- 2. plan -----------------------------------------------------------------------------------------


def xaa_key(event_type: str, filter_: dict[str, str]) -> SubscriptionKey:
    """The identity X's subscription is matched by: canonical type and filter (the tag is not part of it)."""
    return event_types.canonical_xaa_type(event_type), frozenset((k, str(v)) for k, v in filter_.items())


def describe_xaa(event_type: str, filter_: dict[str, str]) -> str:
    inner = ", ".join(f"{k}: {v}" for k, v in sorted(filter_.items()))
    return f"XAA {event_types.canonical_xaa_type(event_type)} {{{inner}}}"


def plan(desired: DesiredState, obs: Observation, users: Users) -> Plan:
    out = Plan(desired_count=len(desired.account_activity) + len(desired.activity))
    _plan_webhook(desired, obs, out)
    _plan_aaa(desired, obs, users, out)
    _plan_xaa(desired, obs, users, out)
    return out


def _blocked(user_id: str, users: Users, out: Plan) -> str | None:
    """Why an action in ``user_id``'s context cannot be taken, or None when it can."""
    if users.revoked(user_id):
        out.revoked.add(user_id)
        return "skip: user revoked the app (authorise again to resume)"
    if not users.has_credentials(user_id):
        out.needs_authorization.add(user_id)
        return "needs authorization: xrelay users authorize " + user_id
    return None


def _plan_webhook(desired: DesiredState, obs: Observation, out: Plan) -> None:
    url = desired.webhook.url
    if obs.webhook is None:
        others = f" (X has {len(obs.other_webhooks)} other webhook(s), left alone)" if obs.other_webhooks else ""
        out.rows.append(Row("webhook", url, "missing" + others, "register"))
        out.actions.append(Action(Op.REGISTER_WEBHOOK, "webhook"))
        out.drift += 1
    elif obs.webhook.valid is False:
        out.rows.append(Row("webhook", url, f"id {obs.webhook.id}, INVALID", "re-validate (PUT)"))
        out.actions.append(Action(Op.VALIDATE_WEBHOOK, "webhook"))
        out.drift += 1
    else:
        state = "valid" if obs.webhook.valid else "validity unknown"
        out.rows.append(Row("webhook", url, f"id {obs.webhook.id}, {state}", "-"))


def _plan_aaa(desired: DesiredState, obs: Observation, users: Users, out: Plan) -> None:
    declared = [u.user_id for u in desired.account_activity]
    if obs.aaa_users is None:
        out.rows.extend(Row(f"AAA user {u}", "subscribed", "unknown (X would not list)", "-") for u in declared)
        return
    actual = list(dict.fromkeys(obs.aaa_users))
    out.actual_count += len(actual)
    for user_id in declared:
        what = f"AAA user {user_id}"
        if user_id in actual:
            out.rows.append(Row(what, "subscribed", "subscribed", "-"))
            continue
        reason = _blocked(user_id, users, out)
        out.rows.append(Row(what, "subscribed", "missing", reason or "subscribe (user context)"))
        if reason is None:
            out.drift += 1
            out.actions.append(Action(Op.SUBSCRIBE_AAA, what, user_id=user_id, target_user=user_id))
    for user_id in actual:
        if user_id in declared:
            continue
        what = f"AAA user {user_id}"
        out.drift += 1
        if desired.prune:
            out.rows.append(Row(what, "-", "subscribed", "unsubscribe (prune)"))
            out.actions.append(Action(Op.UNSUBSCRIBE_AAA, what, target_user=user_id))
        else:
            out.rows.append(Row(what, "-", "subscribed", "report only (prune off)"))


def _plan_xaa(desired: DesiredState, obs: Observation, users: Users, out: Plan) -> None:
    if obs.xaa is None:
        out.rows.extend(Row(describe_xaa(s.event_type, s.filter), _tag(s.tag), "unknown (X would not list)", "-")
                        for s in desired.activity)
        return
    out.actual_count += len(obs.xaa)
    # X's subscriptions by identity, oldest first: the oldest of a duplicated pair is the one kept.
    by_key: dict[SubscriptionKey, list[XaaSubscription]] = {}
    for sub in sorted(obs.xaa, key=lambda s: (s.created_at or "", s.subscription_id)):
        by_key.setdefault(xaa_key(sub.event_type, sub.filter), []).append(sub)

    for spec in desired.activity:
        what = describe_xaa(spec.event_type, spec.filter)
        matches = by_key.pop(spec.key(), [])
        if matches:
            kept, extras = matches[0], matches[1:]
            if spec.tag is not None and kept.tag != spec.tag:
                out.drift += 1
                out.rows.append(Row(what, _tag(spec.tag), f"{kept.subscription_id} {_tag(kept.tag)}", "update tag"))
                out.actions.append(Action(Op.UPDATE_XAA_TAG, what, spec=spec, subscription_id=kept.subscription_id))
            else:
                out.rows.append(Row(what, _tag(spec.tag), f"{kept.subscription_id} {_tag(kept.tag)}", "-"))
            for extra in extras:
                _extra_xaa(extra, "duplicate", desired.prune, out)
            continue
        user_id = spec.filter.get("user_id")
        context_user = user_id if spec.needs_user_context and user_id else None
        reason = _blocked(context_user, users, out) if context_user else None
        out.rows.append(Row(what, _tag(spec.tag), "missing",
                            reason or ("create (user context)" if context_user else "create (app bearer)")))
        if reason is None:
            out.drift += 1
            out.actions.append(Action(Op.CREATE_XAA, what, user_id=context_user, spec=spec))
    for leftovers in by_key.values():
        for extra in leftovers:
            _extra_xaa(extra, "not declared", desired.prune, out)


def _extra_xaa(sub: XaaSubscription, why: str, prune: bool, out: Plan) -> None:
    what = describe_xaa(sub.event_type, sub.filter)
    actual = f"{sub.subscription_id} {_tag(sub.tag)}"
    out.drift += 1
    if not event_types.is_subscribable(sub.event_type):
        # A type this version cannot declare (new at X, or not subscribable): deleting it would
        # remove something the user had no way to keep.
        out.rows.append(Row(what, "-", actual, f"left alone ({why}; type not declarable here)"))
    elif prune:
        out.rows.append(Row(what, "-", actual, f"delete (prune, {why})"))
        out.actions.append(Action(Op.DELETE_XAA, what, subscription_id=sub.subscription_id))
    else:
        out.rows.append(Row(what, "-", actual, f"report only ({why}, prune off)"))


def _tag(tag: str | None) -> str:
    return f"tag {tag!r}" if tag is not None else "no tag"


# --- 3. execute --------------------------------------------------------------------------------------


class WebhookLog(Protocol):
    def record_webhook_check(self, url: str, webhook_id: str | None, status: str, at: datetime,
                             reason: str = "") -> dict[str, str] | None: ...


# Stop starting X calls when less than this is left of the Lambda's time: one call may take X's
# 10 s timeout, and the run must still record the webhook's health and flush its metrics.
RESERVE_SECONDS = 15.0


def execute(desired: DesiredState, obs: Observation, the_plan: Plan, client: XApiClient, users: Users,
            health: WebhookLog | None = None, *, now: datetime | None = None,
            seconds_left: Callable[[], float] | None = None, crc_advice: str = "") -> Report:
    """Carry out the plan. ``crc_advice`` (which secret the CRC answers with, how to switch) is added
    to the report of a failed CRC."""
    now = now or datetime.now(UTC)
    crc_hint = f"; {crc_advice}" if crc_advice else ""
    report = Report(plan=the_plan)
    webhook_id = obs.webhook.id if obs.webhook else None
    if obs.webhook is None:
        webhook_status = "missing"
    else:  # ``valid`` absent from X's answer counts as valid: only X's explicit false is an outage
        webhook_status = "invalid" if obs.webhook.valid is False else "valid"
    webhook_reason = ""
    if health is not None and webhook_status != "valid":
        # Open the outage as observed, before trying to repair it: a repair in this same run then
        # closes it, and a crash mid-run still leaves it recorded.
        health.record_webhook_check(desired.webhook.url, webhook_id, webhook_status, now, webhook_status)
    stopped = False
    for action in the_plan.actions:
        if stopped:
            report.skipped += 1
            continue
        if seconds_left is not None and seconds_left() < RESERVE_SECONDS:
            _log.warning("out of time: %d action(s) left for the next run", len(the_plan.actions) - len(
                report.done) - len(report.failed))
            stopped = report.out_of_time = True
            report.skipped += 1
            continue
        try:
            _respect_budget(client, action.op.endpoint, now)
            if action.op is Op.REGISTER_WEBHOOK:
                webhook_id = client.create_webhook(desired.webhook.url).id
                webhook_status = "valid"  # X registers a webhook only after its CRC passed
            elif action.op is Op.VALIDATE_WEBHOOK:
                webhook_status = "valid" if client.validate_webhook(_need(webhook_id)) else "invalid"
                if webhook_status == "invalid":
                    webhook_reason = "CrcValidationFailed"
                    report.errors["CrcValidationFailed"] += 1
                    report.failed.append(f"{action.what}: re-validation failed (X's CRC did not pass){crc_hint}")
                    _log.warning("webhook re-validation failed: X's CRC against %s did not pass%s",
                                 desired.webhook.url, crc_hint,
                                 extra={"op": action.op.value, "code": "CrcValidationFailed"})
                    continue
            else:
                _subscription_action(action, client, users, _need(webhook_id), report)
            report.done.append(f"{action.op.value} {action.what}")
            _log.info("reconcile: %s %s", action.op.value, action.what, extra={"op": action.op.value})
        except _Stop as stop:
            stopped = report.rate_limited = True
            report.rate_limited_until = stop.reset_at
            report.skipped += 1
        except RateLimited as exc:
            stopped = report.rate_limited = True
            report.rate_limited_until = exc.reset_at
            report.errors[exc.code] += 1
            report.skipped += 1
            _log.warning("X rate limit hit on %s; the rest waits for the next run", exc.endpoint,
                         extra={"reset_at": exc.reset_at.isoformat() if exc.reset_at else None})
        except NoWebhook:
            report.skipped += 1
            report.failed.append(f"{action.op.value} {action.what}: no webhook to attach it to")
        except _NeedsAuthorization as exc:
            report.needs_authorization.add(exc.user_id)
            report.failed.append(f"{action.op.value} {action.what}: needs authorization ({exc.reason})")
            _log.warning("user %s needs to authorise the app again: %s", exc.user_id, exc.reason)
        except XApiError as exc:
            if action.op is Op.REGISTER_WEBHOOK:
                webhook_reason = exc.code
            if _already_so(action.op, exc):  # the state we wanted, reached another way
                report.errors[exc.code] += 1
                report.done.append(f"{action.op.value} {action.what} (X: {exc.code}, already so)")
                _log.info("reconcile: %s %s: X says %s, nothing to do", action.op.value, action.what, exc.code)
                continue
            report.errors[exc.code] += 1
            report.failed.append(f"{action.op.value} {action.what}: {exc.code}"
                                 + (crc_hint if exc.code == "CrcValidationFailed" else ""))
            _log_x_error(f"{action.op.value} {action.what}", exc)
            if exc.code == "CrcValidationFailed" and crc_advice:
                _log.warning("X's CRC failed: %s", crc_advice, extra={"code": exc.code})
    report.webhook_valid = webhook_status == "valid"
    if health is not None:
        report.outage_closed = health.record_webhook_check(desired.webhook.url, webhook_id, webhook_status, now,
                                                           webhook_reason)
    return report


class _NeedsAuthorization(Exception):
    def __init__(self, user_id: str, reason: str):
        super().__init__(reason)
        self.user_id, self.reason = user_id, reason


def _need(webhook_id: str | None) -> str:
    if webhook_id is None:
        raise NoWebhook()
    return webhook_id


def _respect_budget(client: XApiClient, endpoint: Endpoint, now: datetime) -> None:
    """Don't spend a call X already said would be refused (``x-rate-limit-remaining: 0``)."""
    limit = client.rate_limit(endpoint)
    if limit is not None and limit.exhausted(now):
        _log.warning("X's rate-limit budget for %s is spent until %s; stopping this run", endpoint.value,
                     limit.reset_at.isoformat() if limit.reset_at else "unknown")
        raise _Stop(limit.reset_at)


def _user(users: Users, user_id: str, client: XApiClient) -> UserCredentials:
    from xrelay.subscriptions.users import NeedsAuthorization  # the users module imports boto3-backed stores

    try:
        return users.credentials(user_id, client)
    except NeedsAuthorization as exc:
        raise _NeedsAuthorization(user_id, str(getattr(exc, "reason", exc))) from None


def _subscription_action(action: Action, client: XApiClient, users: Users, webhook_id: str, report: Report) -> None:
    if action.op is Op.SUBSCRIBE_AAA:
        client.subscribe_aaa(webhook_id, _user(users, _required(action.user_id), client))
        report.created += 1
    elif action.op is Op.UNSUBSCRIBE_AAA:
        client.unsubscribe_aaa(webhook_id, _required(action.target_user))
        report.deleted += 1
    elif action.op is Op.CREATE_XAA:
        spec = _required(action.spec)
        user = _user(users, action.user_id, client) if action.user_id else None
        client.create_xaa_subscription(spec.event_type, spec.filter, tag=spec.tag, webhook_id=webhook_id, user=user)
        report.created += 1
    elif action.op is Op.UPDATE_XAA_TAG:
        client.update_xaa_subscription(_required(action.subscription_id), tag=_required(action.spec).tag)
        report.updated += 1
    elif action.op is Op.DELETE_XAA:
        client.delete_xaa_subscription(_required(action.subscription_id))
        report.deleted += 1
    else:  # pragma: no cover - every Op is handled above
        raise AssertionError(action.op)


def _required(value: Any) -> Any:
    if value is None:  # pragma: no cover - plan() always fills what its action needs
        raise AssertionError("action is missing a field its operation needs")
    return value


def _already_so(op: Op, exc: XApiError) -> bool:
    """X refused because what the action wanted is already the case.

    X's own names, and for a delete a resource-not-found problem (in any of the spec's shapes: a
    404, or inside a 200): someone else deleted it first.
    """
    return exc.code in ALREADY_DONE | GONE or (op is Op.DELETE_XAA and exc.code == "ResourceNotFound")


def _log_x_error(what: str, exc: XApiError) -> None:
    extra = {"code": exc.code, "status": exc.status, "endpoint": exc.endpoint}
    if exc.status is None:  # no HTTP answer at all (or one we could not read)
        _log.error("X did not answer %s: %s", what, exc, extra=extra)
        return
    detail = "; ".join(exc.messages) or exc.detail or exc.title or str(exc)
    _log.error("X refused %s: %s (HTTP %s) %s", what, exc.code, exc.status, detail, extra=extra)


# --- one whole run -----------------------------------------------------------------------------------


def reconcile(desired: DesiredState, client: XApiClient, users: Users, health: WebhookLog | None = None,
              *, now: datetime | None = None, seconds_left: Callable[[], float] | None = None,
              crc_advice: str = "") -> Report:
    """Observe, plan and execute once. A 429 while observing ends the run with nothing done."""
    now = now or datetime.now(UTC)
    try:
        obs = observe(client, desired)
    except RateLimited as exc:
        _log.warning("X rate limit hit while reading its state; nothing changed, next run resumes")
        report = Report(plan=Plan(desired_count=len(desired.account_activity) + len(desired.activity)),
                        rate_limited=True, rate_limited_until=exc.reset_at)
        report.errors[exc.code] += 1
        return report
    return execute(desired, obs, plan(desired, obs, users), client, users, health, now=now,
                   seconds_left=seconds_left, crc_advice=crc_advice)


def metric_values(report: Report) -> dict[str, float]:
    """The run's gauges and counts, by metric name (``observability.M``); X errors go per code."""
    from xrelay.observability import M

    values: dict[str, float] = {
        M.SUBSCRIPTIONS_DESIRED: report.plan.desired_count,
        M.SUBSCRIPTIONS_ACTUAL: report.plan.actual_count,
        M.SUBSCRIPTIONS_CREATED: report.created,
        M.SUBSCRIPTIONS_UPDATED: report.updated,
        M.SUBSCRIPTIONS_DELETED: report.deleted,
        M.DRIFT: report.plan.drift,
        M.USERS_NEEDING_AUTHORIZATION: len(report.users_needing_authorization),
        M.REVOKED_USERS_SKIPPED: len(report.plan.revoked),
        M.X_API_RATE_LIMITED: 1 if report.rate_limited else 0,
    }
    if report.webhook_valid is not None:
        values[M.WEBHOOK_VALID] = 1 if report.webhook_valid else 0
    return values


def rows_for_status(the_plan: Plan, obs: Observation) -> Iterable[Row]:
    yield from the_plan.rows
    if obs.xaa_elsewhere:
        yield Row(f"XAA on other webhooks / stream-only ({obs.xaa_elsewhere})", "-", "not ours", "never touched")


# --- wired to a stack: the scheduled function and the CLI ---------------------------------------------


class StackUsers:
    """:class:`Users` backed by the stack's state table (revocations) and Secrets Manager (tokens)."""

    def __init__(self, state: Any, credentials: Any):
        self.state, self.store = state, credentials
        self._status: dict[str, dict[str, str]] | None = None
        self._stored: dict[str, Any] = {}

    def revoked(self, user_id: str) -> bool:
        if self._status is None:
            self._status = self.state.users()  # one query for the whole run
        return self._status.get(user_id, {}).get("status") == "revoked"

    def has_credentials(self, user_id: str) -> bool:
        if user_id not in self._stored:  # read only for users an action needs: a no-drift run reads none
            self._stored[user_id] = self.store.get(user_id)
        return self._stored[user_id] is not None

    def credentials(self, user_id: str, client: XApiClient) -> UserCredentials:
        # The secret read by has_credentials() during the plan, refreshed if it is about to expire.
        return self.store.credentials_for(user_id, client, stored=self._stored.pop(user_id, None))


@dataclass
class StackRun:
    """A run against a stack's resources: what the handler and ``xrelay subscriptions`` share."""

    desired: DesiredState | None
    report: Report | None = None
    observation: Observation | None = None
    error: str | None = None  # why the run could not reconcile at all (a failure: alarmed)
    idle: str | None = None  # why there was nothing to do (not a failure)


def load_stack_desired(state: Any) -> DesiredState | None:
    stored = state.desired()
    return DesiredState.from_json(stored["state"]) if stored else None


def torn_down(state: Any) -> str | None:
    """Why the reconcile must leave X alone after ``xrelay teardown`` (None: it may act).

    Without this pause the next scheduled run would register again everything just removed.
    """
    at = state.torn_down_at()
    return f"torn down at {at} (`xrelay teardown`); run `xrelay subscriptions apply FILE` to resume" if at else None


def run_for_stack(settings: Any, *, transport: Any = None, now: datetime | None = None,
                  dry_run: bool = False, seconds_left: Callable[[], float] | None = None) -> StackRun:
    """Reconcile the stack described by ``settings`` (``xrelay.config.Settings``) once.

    ``dry_run`` observes and plans only (``xrelay subscriptions status``). Failures that stop the
    whole run (no desired state, unreadable app secret, X unreachable) come back in ``error``
    rather than as an exception: the next scheduled run is the retry.
    """
    from xrelay.credentials import SecretUnavailable, crc_secret_advice, load_app_credentials, stack_x_client
    from xrelay.storage.store import StateStore
    from xrelay.subscriptions.users import UserCredentialStore

    state = StateStore(settings.state_table)
    desired = load_stack_desired(state)
    if desired is None:
        return StackRun(None, idle="no desired state stored yet: run `xrelay subscriptions apply FILE`")
    if paused := torn_down(state):
        return StackRun(desired, idle=paused)
    try:
        x = stack_x_client(settings, transport)
    except SecretUnavailable as exc:
        return StackRun(desired, error=f"X app credentials unavailable: {exc}")
    users = StackUsers(state, UserCredentialStore(settings.stack_name))
    try:  # the same cached secret value stack_x_client just read: no second Secrets Manager call
        app = load_app_credentials(settings.app_secret_arn, settings.secret_cache_seconds)
        crc_advice = crc_secret_advice(getattr(settings, "crc_signing_secret", "auto"), bool(app.client_secret))
    except SecretUnavailable:
        crc_advice = ""
    with x as client:
        try:
            if dry_run:
                obs = observe(client, desired, full=True)
                return StackRun(desired, Report(plan=plan(desired, obs, users)), obs)
            return StackRun(desired, reconcile(desired, client, users, state, now=now, seconds_left=seconds_left,
                                               crc_advice=crc_advice))
        except XApiError as exc:
            _log_x_error("listing webhooks", exc)
            run = StackRun(desired, error=f"X API unavailable: {exc.code} ({exc})")
            run.report = Report(plan=Plan(desired_count=len(desired.account_activity) + len(desired.activity)))
            run.report.errors[exc.code] += 1
            run.report.rate_limited = isinstance(exc, RateLimited)
            return run

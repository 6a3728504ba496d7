"""``xrelay teardown``: unregister this stack at X before the stack is deleted.

What is removed is what the reconcile calls ours (:func:`xrelay.subscriptions.reconcile.observe`, the same
observation and matching): the webhook whose URL is the declared one, the XAA subscriptions
delivered to it and the AAA users subscribed to it. Other webhooks, XAA subscriptions of other
webhooks and stream-only ones are never touched, nor is anything in AWS (``sam delete`` does that).

Order matters. Subscriptions go first, the webhook last. X's v2 docs say nothing of what deleting a
webhook does to the subscriptions on it (the legacy AAA guide implies AAA ones go with it; XAA ones
may be refused, dropped, or left pointing at an id that no longer exists, which nothing could then
identify as ours). So the webhook is deleted only once every subscription on it is gone, and kept
(``left``) otherwise, for the next run.

Every call uses the app's bearer token, as X documents it for the three deletes. An item X no
longer has (404, ``SubscriptionNotFound``, ``WebhookIdInvalid``) counts as removed, so a second
run finds nothing and changes nothing. One item's error does not stop the others; X's 429 (or a
rate-limit budget X already said is spent) stops the run cleanly, the rest ``left`` for a run
after ``rate_limited_until``.

Before the first removal the stored desired state is marked torn down: the scheduled reconcile
then idles instead of registering everything again a few minutes later (or in the middle of the
teardown). ``xrelay subscriptions apply`` stores a fresh desired state and so resumes it.

The result is the pydantic :class:`TeardownResult`, whose JSON Schema is committed as
``docs/schemas/teardown.schema.json`` (regenerate: ``xrelay schema teardown > docs/schemas/teardown.schema.json``).
Nothing here prints: the CLI shows progress through the ``progress`` callback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xrelay.subscriptions.reconcile import GONE, describe_xaa, load_stack_desired, observe
from xrelay.subscriptions.xapi import Endpoint, RateLimited, XApiClient, XApiError

SCHEMA_VERSION = 1


class Kind(StrEnum):
    XAA = "xaa_subscription"
    AAA = "aaa_subscription"
    WEBHOOK = "webhook"

    @property
    def endpoint(self) -> Endpoint:
        return {Kind.XAA: Endpoint.XAA_DELETE, Kind.AAA: Endpoint.AAA_UNSUBSCRIBE,
                Kind.WEBHOOK: Endpoint.WEBHOOK_DELETE}[self]


class Status(StrEnum):
    PLANNED = "planned"  # found; not acted on (dry run, declined, or before the run)
    REMOVED = "removed"
    ALREADY_GONE = "already_gone"  # X no longer had it when asked to delete it: done all the same
    FAILED = "failed"  # X refused; ``reason`` is its error code
    LEFT = "left"  # not attempted: rate limited, or the webhook kept while subscriptions remain on it


SETTLED = (Status.REMOVED, Status.ALREADY_GONE)


class Outcome(StrEnum):
    DONE = "done"  # everything found is gone
    NOTHING_TO_DO = "nothing_to_do"  # nothing of ours at X, and the desired state already marked torn down
    DRY_RUN = "dry_run"
    DECLINED = "declined"  # not confirmed: nothing changed
    INCOMPLETE = "incomplete"  # something could not be removed (or X could not be read): run again


_MODEL = ConfigDict(extra="forbid")


class Item(BaseModel):
    """One thing at X that the teardown removes."""

    model_config = _MODEL

    kind: Kind
    id: str = Field(description="X's id: the XAA subscription id, the AAA-subscribed user's id, or the webhook id")
    what: str = Field(description="for people, e.g. 'XAA post.create {user_id: 2244994945}'")
    status: Status = Status.PLANNED
    reason: str | None = Field(default=None, description="failed: X's error code; left: why it was not attempted")


class NotOurs(BaseModel):
    """What X has that belongs to someone else: counted, never touched."""

    model_config = _MODEL

    other_webhooks: int = 0
    xaa_elsewhere: int | None = Field(default=None, description="XAA subscriptions of other webhooks, or "
                                      "stream-only; null when not listed (X has no webhook of ours to look under)")


class Counts(BaseModel):
    """The items by status, tallied once the run is over."""

    model_config = _MODEL

    found: int = 0
    removed: int = 0
    already_gone: int = 0
    failed: int = 0
    left: int = 0

    @classmethod
    def of(cls, items: list[Item]) -> Counts:
        by_status = [item.status for item in items]
        return cls(found=len(items), removed=by_status.count(Status.REMOVED),
                   already_gone=by_status.count(Status.ALREADY_GONE), failed=by_status.count(Status.FAILED),
                   left=by_status.count(Status.LEFT))


class TeardownResult(BaseModel):
    """What ``xrelay teardown --json`` prints: what was found at X and what became of each item."""

    model_config = _MODEL

    schema_version: Literal[1] = SCHEMA_VERSION
    stack_name: str
    webhook_url: str = Field(description="the declared webhook URL: what identifies this stack's webhook at X")
    webhook_id: str | None = Field(default=None, description="X's id for it; null when X has no such webhook")
    dry_run: bool = False
    keep_webhook: bool = False
    outcome: Outcome = Outcome.INCOMPLETE
    items: list[Item] = Field(default_factory=list, description="in the order they are removed")
    not_ours: NotOurs = Field(default_factory=NotOurs)
    unreadable: list[str] = Field(default_factory=list,
                                  description="sections X would not list, e.g. 'AAA list: HTTP403'")
    error: str | None = Field(default=None, description="why X could not be read at all (nothing was removed)")
    rate_limited: bool = Field(default=False, description="stopped early on X's rate limit: the rest is 'left'")
    rate_limited_until: datetime | None = Field(default=None, description="when X's rate limit resets, if X said")
    torn_down_at: datetime | None = Field(
        default=None, description="when the desired state was marked torn down (the reconcile idles since)")
    counts: Counts = Field(default_factory=Counts)

    @property
    def pending(self) -> list[Item]:
        return [item for item in self.items if item.status is Status.PLANNED]


Progress = Callable[[int, int, Item], None]  # (position, total, the item just handled)
Confirm = Callable[[TeardownResult], bool]


class NothingDeclared(LookupError):
    """No desired state stored: nothing says which webhook at X is this stack's."""


# --- plan: what of X's side is ours -------------------------------------------------------------------


def find(client: XApiClient, desired: Any, result: TeardownResult) -> None:
    """Fill ``result.items`` from one observation of X (raises what :func:`observe` raises)."""
    obs = observe(client, desired, full=True)
    result.not_ours = NotOurs(other_webhooks=len(obs.other_webhooks))
    result.unreadable = list(obs.errors)
    if obs.webhook is None:  # observe() lists no subscriptions then: nothing can be on a missing webhook
        return
    if obs.xaa is not None:
        result.not_ours.xaa_elsewhere = obs.xaa_elsewhere
    result.webhook_id = obs.webhook.id
    for sub in obs.xaa or []:
        tag = f" tag {sub.tag!r}" if sub.tag is not None else ""
        result.items.append(Item(kind=Kind.XAA, id=sub.subscription_id, what=describe_xaa(sub.event_type, sub.filter)
                                 + tag))
    for user_id in dict.fromkeys(obs.aaa_users or []):
        result.items.append(Item(kind=Kind.AAA, id=user_id, what=f"AAA user {user_id}"))
    if not result.keep_webhook:
        result.items.append(Item(kind=Kind.WEBHOOK, id=obs.webhook.id, what=f"webhook {obs.webhook.url}"))


# --- execute -----------------------------------------------------------------------------------------


def remove(client: XApiClient, result: TeardownResult, *, now: datetime,
           progress: Progress | None = None) -> None:
    """Delete every planned item in order; subscriptions first, the webhook only once they are all gone."""
    items = result.pending
    for position, item in enumerate(items, 1):
        if result.rate_limited:
            item.status, item.reason = Status.LEFT, _rate_limit_reason(result)
        elif item.kind is Kind.WEBHOOK and (blocking := _still_subscribed(result)):
            item.status, item.reason = Status.LEFT, blocking
        else:
            _remove_one(client, item, result, now)
        if progress is not None:
            progress(position, len(items), item)


def _remove_one(client: XApiClient, item: Item, result: TeardownResult, now: datetime) -> None:
    limit = client.rate_limit(item.kind.endpoint)
    if limit is not None and limit.exhausted(now):  # don't spend a call X already said it would refuse
        _stop(result, item, limit.reset_at)
        return
    try:
        if item.kind is Kind.XAA:
            client.delete_xaa_subscription(item.id)
        elif item.kind is Kind.AAA:
            client.unsubscribe_aaa(_required(result.webhook_id), item.id)
        else:
            client.delete_webhook(item.id)
        item.status = Status.REMOVED
    except RateLimited as exc:
        _stop(result, item, exc.reset_at)
    except XApiError as exc:
        item.status, item.reason = (Status.ALREADY_GONE if _gone(item, exc) else Status.FAILED), exc.code


def _stop(result: TeardownResult, item: Item, reset_at: datetime | None) -> None:
    result.rate_limited, result.rate_limited_until = True, reset_at
    item.status, item.reason = Status.LEFT, _rate_limit_reason(result)


def _gone(item: Item, exc: XApiError) -> bool:
    """X's way of saying the thing is not there (any more): what a delete wanted.

    A 404, X's own names, or a resource-not-found problem in any shape (inside a 200 too: the status
    is then 200, the problem's type says it).
    """
    if exc.status == 404 or exc.code in GONE or exc.code == "ResourceNotFound":
        return True
    # X does not know the webhook id: the webhook, and the AAA subscriptions on it, do not exist.
    return exc.code == "WebhookIdInvalid" and item.kind in (Kind.WEBHOOK, Kind.AAA)


def _still_subscribed(result: TeardownResult) -> str | None:
    """Why the webhook must stay for now (None: it may go)."""
    if result.unreadable:
        return "kept: X would not list all its subscriptions (" + "; ".join(result.unreadable) + ")"
    remaining = [i for i in result.items if i.kind is not Kind.WEBHOOK and i.status not in SETTLED]
    if remaining:
        return f"kept: {len(remaining)} subscription(s) on it could not be removed; run `xrelay teardown` again"
    return None


def _rate_limit_reason(result: TeardownResult) -> str:
    when = result.rate_limited_until
    return "X's rate limit: run again" + (f" after {when:%Y-%m-%dT%H:%M:%SZ}" if when else " later")


def _required(value: str | None) -> str:
    if value is None:  # pragma: no cover - find() adds AAA items only under a webhook it found
        raise AssertionError("an AAA item without its webhook id")
    return value


# --- one whole run against a stack -------------------------------------------------------------------


def run_for_stack(settings: Any, *, transport: Any = None, dry_run: bool = False, keep_webhook: bool = False,
                  confirm: Confirm = lambda result: True, progress: Progress | None = None,
                  now: datetime | None = None) -> TeardownResult:
    """Find this stack's side at X, ask ``confirm`` (not for a dry run), mark the desired state torn
    down, then remove. Raises :class:`NothingDeclared` without a stored desired state."""
    result = _run(settings, transport, dry_run, keep_webhook, confirm, progress, now or datetime.now(UTC))
    result.counts = Counts.of(result.items)
    return result


def _run(settings: Any, transport: Any, dry_run: bool, keep_webhook: bool, confirm: Confirm,
         progress: Progress | None, now: datetime) -> TeardownResult:
    from xrelay.credentials import SecretUnavailable, stack_x_client
    from xrelay.storage.store import StateStore, iso

    state = StateStore(settings.state_table)
    desired = load_stack_desired(state)
    if desired is None:
        raise NothingDeclared(f"stack {settings.stack_name!r} has no desired state stored, so nothing says which "
                              "webhook at X is its own (`xrelay subscriptions apply FILE` declares it)")
    marked = state.torn_down_at()
    result = TeardownResult(stack_name=settings.stack_name, webhook_url=desired.webhook.url, dry_run=dry_run,
                            keep_webhook=keep_webhook, torn_down_at=_parse(marked))
    try:
        x = stack_x_client(settings, transport)
    except SecretUnavailable as exc:
        result.error = f"X app credentials unavailable: {exc}"
        return result
    with x as client:
        try:
            find(client, desired, result)
        except RateLimited as exc:
            result.rate_limited, result.rate_limited_until = True, exc.reset_at
            result.error = f"X's rate limit while reading its state: nothing removed; {_rate_limit_reason(result)}"
            return result
        except XApiError as exc:
            result.error = f"X API unavailable: {exc.code} ({exc})"
            return result
        if dry_run:
            result.outcome = Outcome.DRY_RUN
            return result
        if not result.items and marked and not result.unreadable:
            result.outcome = Outcome.NOTHING_TO_DO
            return result
        if not confirm(result):
            result.outcome = Outcome.DECLINED
            return result
        if not marked:
            # Before the first removal, so that a scheduled reconcile meanwhile does not undo it.
            state.mark_torn_down(now)
            result.torn_down_at = _parse(iso(now))
        remove(client, result, now=now, progress=progress)
    if not keep_webhook and all(i.status in SETTLED for i in result.items if i.kind is Kind.WEBHOOK):
        state.forget_webhook_health(desired.webhook.url)  # X has no such webhook (any more)
    settled = all(i.status in SETTLED for i in result.items)
    result.outcome = Outcome.DONE if settled and not result.unreadable else Outcome.INCOMPLETE
    return result


# --- for people (the CLI prints these) ---------------------------------------------------------------


def rows(result: TeardownResult) -> list[tuple[str, str, str]]:
    """(what, X's id, status or reason) per item, for a table."""
    return [(item.what, item.id, item.status.value.replace("_", " ") + (f": {item.reason}" if item.reason else ""))
            for item in result.items]


def progress_line(position: int, total: int, item: Item) -> str:
    reason = f" ({item.reason})" if item.reason else ""
    return f"[{position}/{total}] {item.status.value.replace('_', ' ')}{reason}: {item.what} (id {item.id})"


def notes(result: TeardownResult) -> list[str]:
    """What the table does not show: what is not ours, what X would not list, why X could not be read."""
    lines = []
    theirs = [f"{result.not_ours.other_webhooks} other webhook(s)"] if result.not_ours.other_webhooks else []
    if result.not_ours.xaa_elsewhere:
        theirs.append(f"{result.not_ours.xaa_elsewhere} XAA subscription(s) of other webhooks or stream-only")
    if theirs:
        lines.append("not ours, left alone: " + ", ".join(theirs))
    if result.unreadable:
        lines.append("X would not list: " + "; ".join(result.unreadable))
    if result.error:
        lines.append(result.error)
    return lines


def conclusion(result: TeardownResult) -> str:
    """What happened, and what to do next."""
    counts = result.counts
    paused = (f"the reconcile idles (torn down at {result.torn_down_at:%Y-%m-%dT%H:%M:%SZ}) until "
              "`xrelay subscriptions apply FILE`" if result.torn_down_at else "")
    if result.outcome is Outcome.DRY_RUN:
        return f"dry run: {counts.found} item(s) would be removed; nothing changed"
    if result.outcome is Outcome.DECLINED:
        return "not confirmed: nothing changed"
    if result.outcome is Outcome.NOTHING_TO_DO:
        return f"nothing of this stack left at X; {paused}. Next: `sam delete` (tables are retained)"
    if result.outcome is Outcome.DONE:
        return (f"removed {counts.removed}, already gone {counts.already_gone}; {paused}. "
                "Next: `sam delete` (tables are retained)")
    if result.error:
        return "nothing removed: run `xrelay teardown` again once X can be read"
    return (f"removed {counts.removed}, already gone {counts.already_gone}, failed {counts.failed}, "
            f"left {counts.left}: run `xrelay teardown` again"
            + (f" ({_rate_limit_reason(result)})" if result.rate_limited else "") + (f"; {paused}" if paused else ""))


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None

"""The reconcile against the strict fake of X, with the stack's real state table and user secrets (moto).

Every test declares a desired state, lets X's side drift in one direction, runs the reconcile and
checks X's side afterwards (the fake's state) and which calls were made (the fake's request log).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from fakex import FakeX
from helpers import client_error
from xrelay.storage.store import StateStore
from xrelay.subscriptions.desired import DesiredState
from xrelay.subscriptions.reconcile import Op, StackUsers, metric_values, observe, plan, reconcile
from xrelay.subscriptions.users import StoredUser, UserCredentialStore

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
ALICE, BOB, CAROL = "4337869213", "2244994945", "783214"


def desired(**overrides) -> DesiredState:
    doc = {"webhook": {"url": URL}, "account_activity": [], "activity": [], "prune": False}
    doc.update(overrides)
    return DesiredState.model_validate(doc)


class World:
    """The fake X, the stack's stores and a way to run the reconcile as the function does."""

    def __init__(self, stack):
        self.x = FakeX()
        self.state = StateStore(stack.stack.physical("StateTable"))
        self.secrets = UserCredentialStore("xrelay")

    def authorize(self, user_id: str, kind: str = "oauth1") -> None:
        creds = self.x.register_oauth1_user(user_id) if kind == "oauth1" else self.x.register_oauth2_user(user_id)
        if kind == "oauth1":
            self.secrets.put(StoredUser(user_id, creds))
        else:
            self.secrets.put(StoredUser(user_id, creds, None, datetime.now(UTC) + timedelta(hours=2)))
        self.state.mark_authorized(user_id, datetime.now(UTC))

    def run(self, want: DesiredState, now: datetime | None = None):
        self.x.requests.clear()
        with self.x.client() as client:
            return reconcile(want, client, StackUsers(self.state, self.secrets), self.state, now=now)

    def plan(self, want: DesiredState):
        with self.x.client() as client:
            obs = observe(client, want, full=True)
            return plan(want, obs, StackUsers(self.state, self.secrets))

    def webhook_id(self) -> str:
        (found,) = [w.id for w in self.x.webhooks.values() if w.url == URL]
        return found

    def xaa(self) -> set[tuple[str, tuple, str | None, str | None]]:
        return {(s["event_type"], tuple(sorted(s["filter"].items())), s.get("tag"), s.get("webhook_id"))
                for s in self.x.xaa_subscriptions.values()}

    def writes(self) -> list[str]:
        return [f"{r.method} {r.endpoint} as {r.auth}" for r in self.x.write_requests]


@pytest.fixture
def world(stack):
    return World(stack)


FULL = dict(
    account_activity=[{"user_id": ALICE}],
    activity=[
        {"event_type": "post.create", "filter": {"user_id": BOB}, "tag": "posts"},
        {"event_type": "like.create", "filter": {"user_id": ALICE, "direction": "inbound"}},
    ],
)


def test_from_nothing_everything_is_created_with_the_right_auth_and_a_second_run_writes_nothing(world):
    world.authorize(ALICE)
    report = world.run(desired(**FULL))

    hook = world.webhook_id()
    assert world.x.aaa_subscriptions[hook] == [ALICE]
    assert world.xaa() == {("post.create", (("user_id", BOB),), "posts", hook),
                           ("like.create", (("direction", "inbound"), ("user_id", ALICE)), None, hook)}
    assert world.writes() == [
        "POST POST /2/webhooks as app",
        "POST POST /2/account_activity/webhooks/:webhook_id/subscriptions/all as oauth1",  # Alice's context
        "POST POST /2/activity/subscriptions as app",  # post.create is public: the app's bearer
        "POST POST /2/activity/subscriptions as oauth1",  # likes are private: Alice's context
    ]
    assert (report.created, report.deleted, report.plan.drift, report.webhook_valid) == (3, 0, 4, True)
    assert not report.errors and not report.failed

    again = world.run(desired(**FULL))
    assert world.x.write_requests == []  # idempotent: nothing to change, no write call to X
    assert (again.created, again.plan.drift, again.plan.actual_count, again.plan.desired_count) == (0, 0, 3, 3)


def test_no_write_when_in_sync_reads_no_user_secret(world, faults):
    world.authorize(ALICE)
    world.run(desired(**FULL))
    rule = faults.inject("secretsmanager", "GetSecretValue", client_error("AccessDeniedException", 400))
    world.run(desired(**FULL))
    assert rule.matched == 0 and world.x.write_requests == []


def test_an_invalid_webhook_is_revalidated_and_its_outage_recorded(world):
    hook = world.x.add_webhook(URL, valid=True)
    t0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    world.run(desired(), now=t0)  # seen valid at t0
    world.x.webhooks[hook].valid = False  # X's CRC failed since: deliveries stopped
    report = world.run(desired(), now=t0 + timedelta(minutes=5))

    assert world.writes() == ["PUT PUT /2/webhooks/:webhook_id as app"]
    assert world.x.webhooks[hook].valid and report.webhook_valid
    (outage,) = world.state.webhook_outages()
    # From the last time it was seen valid (X may have stopped any time after) to the repair.
    assert (outage["from"], outage["to"], outage["webhook_id"]) == (
        "2026-11-26T10:00:00.000Z", "2026-11-26T10:05:00.000Z", hook)
    assert report.outage_closed == {"from": "2026-11-26T10:00:00.000Z", "to": "2026-11-26T10:05:00.000Z"}


@pytest.mark.parametrize("answer", ["error", "valid_false"])
def test_a_webhook_that_stays_invalid_keeps_its_outage_open_and_the_run_goes_on(world, answer):
    world.authorize(ALICE)
    hook = world.x.add_webhook(URL, valid=False)
    world.x.crc_passes, world.x.crc_failure_answer = False, answer
    t0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    report = world.run(desired(account_activity=[{"user_id": ALICE}]), now=t0)

    assert not report.webhook_valid and report.errors["CrcValidationFailed"] == 1
    assert world.x.aaa_subscriptions[hook] == [ALICE]  # the rest of the run still happened
    assert world.run(desired(), now=t0 + timedelta(minutes=5)).webhook_valid is False
    (outage,) = world.state.webhook_outages()
    assert outage["from"] == "2026-11-26T10:00:00.000Z" and "to" not in outage  # open: still down

    world.x.crc_passes = True
    world.run(desired(), now=t0 + timedelta(minutes=10))
    (outage,) = world.state.webhook_outages()
    assert outage["to"] == "2026-11-26T10:10:00.000Z"
    assert world.state.webhook_health(URL)["last_valid_at"] == "2026-11-26T10:10:00.000Z"


def test_a_deleted_webhook_is_registered_again_and_the_gap_recorded(world):
    t0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    world.run(desired(), now=t0)
    old = world.webhook_id()
    del world.x.webhooks[old]  # somebody deleted it in the developer portal
    world.run(desired(), now=t0 + timedelta(minutes=5))
    assert world.webhook_id() != old
    (outage,) = world.state.webhook_outages()
    assert (outage["from"], outage["to"], outage["reason"]) == (
        "2026-11-26T10:00:00.000Z", "2026-11-26T10:05:00.000Z", "missing")


def test_another_environments_webhook_is_left_alone_even_when_registration_fails(world):
    other = world.x.add_webhook("https://prod.example.com/webhook")  # the account's only webhook slot
    world.authorize(ALICE)
    report = world.run(desired(**FULL, prune=True))

    assert report.errors["WebhookLimitExceeded"] == 1 and not report.webhook_valid
    assert set(world.x.webhooks) == {other}
    assert [w for w in world.writes() if "DELETE" in w] == []
    # Nothing could be attached to a webhook that does not exist: skipped, not sent.
    assert report.skipped == 3 and world.writes() == ["POST POST /2/webhooks as app"]


def test_aaa_extras_are_reported_without_prune_and_removed_with_it(world):
    world.authorize(ALICE)
    hook = world.x.add_webhook(URL)
    world.x.aaa_subscriptions[hook] = [ALICE, CAROL]

    report = world.run(desired(account_activity=[{"user_id": ALICE}]))
    assert world.x.write_requests == [] and report.plan.drift == 1
    assert [r.next for r in report.plan.rows if CAROL in r.what] == ["report only (prune off)"]

    report = world.run(desired(account_activity=[{"user_id": ALICE}], prune=True))
    assert world.writes() == ["DELETE DELETE /2/account_activity/webhooks/:webhook_id/subscriptions/:user_id/all "
                              "as app"]
    assert world.x.aaa_subscriptions[hook] == [ALICE] and report.deleted == 1


def test_xaa_prune_touches_only_this_webhooks_subscriptions(world):
    hook = world.x.add_webhook(URL)
    world.x.webhook_limit = 2
    other = world.x.add_webhook("https://staging.example.com/webhook")
    mine = world.x.add_xaa_subscription("post.delete", {"user_id": BOB}, webhook_id=hook)
    theirs = world.x.add_xaa_subscription("post.delete", {"user_id": BOB}, webhook_id=other)
    stream_only = world.x.add_xaa_subscription("post.delete", {"user_id": BOB})

    report = world.run(desired(prune=True))
    assert world.writes() == ["DELETE DELETE /2/activity/subscriptions/:subscription_id as app"]
    assert mine not in world.x.xaa_subscriptions
    assert {theirs, stream_only} <= set(world.x.xaa_subscriptions) and report.deleted == 1


def test_duplicates_keep_the_oldest_and_undeclarable_types_are_never_pruned(world):
    hook = world.x.add_webhook(URL)
    first = world.x.add_xaa_subscription("post.create", {"user_id": BOB}, webhook_id=hook)
    second = world.x.add_xaa_subscription("post.create", {"user_id": BOB}, webhook_id=hook)
    future = world.x.add_xaa_subscription("post.translate", {"user_id": BOB}, webhook_id=hook)  # new at X

    report = world.run(desired(activity=[{"event_type": "post.create", "filter": {"user_id": BOB}}], prune=True))
    assert set(world.x.xaa_subscriptions) == {first, future}
    assert second not in world.x.xaa_subscriptions and report.deleted == 1
    (row,) = [r for r in report.plan.rows if "post.translate" in r.what]
    assert row.next.startswith("left alone")


def test_a_changed_tag_is_updated_in_place(world):
    hook = world.x.add_webhook(URL)
    sub = world.x.add_xaa_subscription("post.create", {"user_id": BOB}, tag="old", webhook_id=hook)
    report = world.run(desired(activity=[{"event_type": "post.create", "filter": {"user_id": BOB}, "tag": "posts"}]))
    assert world.writes() == ["PUT PUT /2/activity/subscriptions/:subscription_id as app"]
    assert world.x.xaa_subscriptions[sub]["tag"] == "posts" and report.updated == 1
    # A declaration without a tag leaves X's tag as it is (there is no way to clear it in place).
    world.run(desired(activity=[{"event_type": "post.create", "filter": {"user_id": BOB}}]))
    assert world.x.write_requests == []


def test_a_revoked_user_is_not_resubscribed_until_authorised_again(world):
    world.authorize(ALICE)
    world.state.record_revocation(ALICE, datetime.now(UTC) + timedelta(seconds=1), "revoke-event")
    want = desired(**FULL)
    report = world.run(want)
    hook = world.webhook_id()
    assert world.x.aaa_subscriptions[hook] == []
    assert [s for s in world.xaa() if s[0] == "like.create"] == []
    assert report.plan.revoked == {ALICE} and metric_values(report)["RevokedUsersSkipped"] == 1
    assert [r.next for r in report.plan.rows if r.what == f"AAA user {ALICE}"] == [
        "skip: user revoked the app (authorise again to resume)"]
    assert report.created == 1  # the public subscription did not wait for Alice

    world.x.requests.clear()
    world.authorize(ALICE)  # `xrelay users authorize` again
    report = world.run(want)
    assert world.x.aaa_subscriptions[hook] == [ALICE] and report.created == 2 and not report.plan.revoked


def test_a_user_without_credentials_is_reported_and_the_rest_still_done(world):
    report = world.run(desired(**FULL))
    assert report.plan.needs_authorization == {ALICE}
    assert metric_values(report)["UsersNeedingAuthorization"] == 1
    assert world.xaa() == {("post.create", (("user_id", BOB),), "posts", world.webhook_id())}
    assert not report.failed and not report.errors


def test_rate_limits_stop_the_run_cleanly_and_the_next_run_resumes(world):
    clock = [1_800_000_000.0]
    world.x.clock = lambda: clock[0]
    world.x.rate_limits["POST /2/activity/subscriptions"] = 1
    want = desired(activity=[{"event_type": "post.create", "filter": {"user_id": u}} for u in (ALICE, BOB, CAROL)])

    first = world.run(want)  # X says "remaining 0" after the first create: the run stops before a 429
    assert (first.created, first.skipped, first.rate_limited) == (1, 2, True)
    assert all(r.status != 429 for r in world.x.requests)
    assert metric_values(first)["XApiRateLimited"] == 1

    second = world.run(want)  # a new run in the same window learns it from X's 429, and stops
    assert (second.created, second.rate_limited, second.errors["TooManyRequests"]) == (0, True, 1)
    assert [r.status for r in world.x.write_requests] == [429]

    clock[0] += 15 * 60  # the window resets
    third = world.run(want)
    assert third.created == 1 and len(world.xaa()) == 2


def test_x_errors_are_counted_by_code_and_do_not_stop_the_run(world):
    world.authorize(ALICE)
    world.x.xaa_subscription_limit = 0
    report = world.run(desired(**FULL))
    assert report.errors["SubscriptionLimitExceeded"] == 2
    assert world.x.aaa_subscriptions[world.webhook_id()] == [ALICE]  # AAA went on
    assert len(report.failed) == 2 and all("SubscriptionLimitExceeded" in f for f in report.failed)


def test_aaa_204_answers_count_as_success(world):
    world.authorize(ALICE)
    world.x.aaa_success_status = 204
    report = world.run(desired(account_activity=[{"user_id": ALICE}]))
    assert report.created == 1 and not report.failed


def test_status_plan_shows_desired_actual_and_next_action_without_writing(world):
    world.authorize(ALICE)
    hook = world.x.add_webhook(URL)
    world.x.add_xaa_subscription("post.create", {"user_id": BOB}, tag="old", webhook_id=hook)
    world.x.add_xaa_subscription("post.delete", {"user_id": CAROL}, webhook_id=hook)
    world.x.requests.clear()
    the_plan = world.plan(desired(**FULL))

    assert world.x.write_requests == []
    rows = {r.what: (r.desired, re.sub(r"^[0-9]+ ", "", r.actual), r.next) for r in the_plan.rows}
    assert rows == {
        "webhook": (URL, f"id {hook}, valid", "-"),
        f"AAA user {ALICE}": ("subscribed", "missing", "subscribe (user context)"),
        f"XAA post.create {{user_id: {BOB}}}": ("tag 'posts'", "tag 'old'", "update tag"),
        f"XAA like.create {{direction: inbound, user_id: {ALICE}}}": ("no tag", "missing", "create (user context)"),
        f"XAA post.delete {{user_id: {CAROL}}}": ("-", "no tag", "report only (not declared, prune off)"),
    }
    assert [a.op for a in the_plan.actions] == [Op.SUBSCRIBE_AAA, Op.UPDATE_XAA_TAG, Op.CREATE_XAA]


def test_oauth2_users_are_refreshed_before_expiry_and_a_refused_refresh_needs_authorization(world):
    now = datetime.now(UTC)
    for user_id in (ALICE, BOB):
        creds = world.x.register_oauth2_user(user_id, expires_in=60)  # expires within the 5-minute margin
        world.secrets.put(StoredUser(user_id, creds, world.x.refresh_token_of(user_id), now + timedelta(seconds=60)))
        world.state.mark_authorized(user_id, now)
    old_alice = world.secrets.get(ALICE).credentials.access_token
    world.x.revoke(BOB)  # at X only: intake has not heard of it, so only the refresh can tell

    report = world.run(desired(account_activity=[{"user_id": ALICE}, {"user_id": BOB}]))
    hook = world.webhook_id()
    assert world.x.aaa_subscriptions[hook] == [ALICE]
    assert world.secrets.get(ALICE).credentials.access_token != old_alice  # the rotated token was kept
    assert report.needs_authorization == {BOB} and metric_values(report)["UsersNeedingAuthorization"] == 1
    assert report.failed == [f"subscribe AAA user {BOB}: needs authorization (refresh refused by X (invalid_request))"]


def test_a_run_short_of_time_stops_starting_calls_and_still_records_the_webhook(world):
    want = desired(activity=[{"event_type": "post.create", "filter": {"user_id": u}} for u in (ALICE, BOB, CAROL)])
    left = iter([120.0, 60.0, 14.0, 10.0])  # seconds the Lambda has left before each action
    world.x.requests.clear()
    with world.x.client() as client:
        report = reconcile(want, client, StackUsers(world.state, world.secrets), world.state,
                           seconds_left=lambda: next(left))
    assert (report.created, report.skipped, report.out_of_time) == (1, 2, True)  # register + 1 create
    assert world.state.webhook_health(URL)["status"] == "valid"
    assert world.run(want).created == 2  # the next run finishes the job


def test_the_first_registration_is_not_an_outage(world):
    world.run(desired())
    assert world.state.webhook_outages() == [] and world.state.webhook_health(URL)["status"] == "valid"


def test_a_section_x_will_not_list_is_left_unknown_and_nothing_in_it_is_changed(world):
    import httpx

    from fakex import BASE_URL
    from xrelay.subscriptions.xapi import XApiClient

    world.authorize(ALICE)
    world.x.add_webhook(URL)

    def refuse_aaa_list(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/subscriptions/all/list"):  # e.g. an app without AAA access
            return httpx.Response(403, json={"title": "Forbidden", "type": "about:blank", "status": 403,
                                             "detail": "Your app is not enrolled in the Account Activity API"})
        return world.x(request)

    with XApiClient(world.x.app, base_url=BASE_URL, transport=httpx.MockTransport(refuse_aaa_list)) as client:
        report = reconcile(desired(**FULL, prune=True), client, StackUsers(world.state, world.secrets), world.state)
    assert [r.next for r in report.plan.rows if r.what == f"AAA user {ALICE}"] == ["-"]
    assert all("account_activity" not in w.path for w in world.x.write_requests)
    assert report.created == 2  # XAA went on

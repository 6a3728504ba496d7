"""The fake X held to X's own spec: it answers in the spec's shapes, and a drift is caught where it happens."""

from __future__ import annotations

import httpx
import pytest

from fakex import SPEC_VIOLATIONS, FakeX, _json
from xrelay.subscriptions.xapi import Endpoint, XApiClient, XApiError

WEBHOOK_URL = "https://relay.example.com/webhook"


class DriftingX(FakeX):
    """A fake that has drifted from X: its delete answer invents a field the spec lacks."""

    def _delete_webhook(self, request, principal, webhook_id):
        super()._delete_webhook(request, principal, webhook_id)
        return _json(200, {"data": {"deleted": True}, "meta": {"total_webhooks": 0}})


def test_an_answer_the_spec_does_not_declare_is_caught_as_it_is_given():
    fake = DriftingX()
    hook = fake.add_webhook(WEBHOOK_URL)
    with fake.client() as x:
        x.delete_webhook(hook)  # the client copes; the check does not
    (violation,) = fake.take_spec_violations()
    assert (violation.side, violation.method, violation.status) == ("response", "DELETE", 200)
    assert "'meta' was unexpected" in str(violation) and SPEC_VIOLATIONS == []


def test_the_users_me_answer_is_held_to_the_spec_too(monkeypatch):
    import fakex
    # GET /2/users/me came with the login work; its answer is checked like every other operation's.
    monkeypatch.setattr(fakex, "_json", lambda status, body: _json(status, {**body, "meta": {}}))
    fake = FakeX()
    user = fake.register_oauth2_user("2244994945")
    with fake.client() as x:
        assert x.me(user) == "2244994945"
    (violation,) = fake.take_spec_violations()
    assert (violation.side, violation.method, violation.path) == ("response", "GET", "/2/users/me")
    assert "'meta' was unexpected" in str(violation)


def test_users_me_takes_either_user_context_the_spec_allows_and_not_the_app_s_token():
    fake = FakeX()
    with fake.client() as x:
        assert x.me(fake.register_oauth1_user("42")) == "42"  # the spec's UserToken (OAuth 1.0a)
        assert x.me(fake.register_oauth2_user("43")) == "43"  # OAuth2UserToken
        with pytest.raises(XApiError) as refused:
            x._call(Endpoint.USERS_ME)  # the app's bearer token: no user to be
    assert refused.value.status == 403 and refused.value.code == "UnsupportedAuthentication"
    assert fake.spec_violations == []


def test_users_me_refuses_an_oauth2_token_without_the_scopes_the_spec_names():
    fake = FakeX()
    credentials, _ = fake._issue_oauth2("44", 7200, "dm.read offline.access")
    with fake.client() as x, pytest.raises(XApiError) as refused:
        x.me(credentials)
    assert refused.value.status == 403 and "tweet.read, users.read" in str(refused.value)
    assert fake.spec_violations == []


def test_a_request_the_spec_does_not_allow_is_caught_as_it_is_sent():
    fake = FakeX()
    with fake.client() as x, pytest.raises(XApiError) as refused:
        x._call(Endpoint.WEBHOOKS_LIST, params={"webhook_config.fields": "id,colour"})
    assert refused.value.code == "InvalidRequest"  # the fake refuses it as X would, in the spec's shape
    (violation,) = fake.take_spec_violations()
    assert violation.side == "request" and "webhook_config.fields" in str(violation)


def test_requests_that_are_not_the_client_s_are_not_held_to_the_spec_but_the_answers_are():
    fake = FakeX()
    with httpx.Client(base_url="https://api.x.com", transport=fake.transport()) as raw:
        answer = raw.get("/2/webhooks", params={"colour": "red"}, headers={"Authorization": f"Bearer {fake.bearer_token}"})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"
    assert fake.spec_violations == []  # the refusal itself is a spec shape


# Failures the fake produces, each read by the client; ``error_shapes`` picks the spec's or the field's body.
def crc_fails_at_creation(fake: FakeX, x: XApiClient) -> None:
    fake.crc_passes = False
    x.create_webhook(WEBHOOK_URL)


def duplicate_url(fake: FakeX, x: XApiClient) -> None:
    fake.webhook_limit = 2
    fake.add_webhook(WEBHOOK_URL)
    x.create_webhook(WEBHOOK_URL)


def unknown_webhook(fake: FakeX, x: XApiClient) -> None:
    x.delete_webhook("1234")


def not_subscribed(fake: FakeX, x: XApiClient) -> None:
    x.unsubscribe_aaa(fake.add_webhook(WEBHOOK_URL), "42")


def replay_conflict(fake: FakeX, x: XApiClient) -> None:
    hook = fake.add_webhook(WEBHOOK_URL)
    fake.clock = lambda: 1_795_000_000.0
    x.create_replay_job(hook, "202611180000", "202611180100")
    x.create_replay_job(hook, "202611180100", "202611180200")


def unknown_subscription(fake: FakeX, x: XApiClient) -> None:
    x.delete_xaa_subscription("1234")


def private_event_with_the_app_token(fake: FakeX, x: XApiClient) -> None:
    x.create_xaa_subscription("dm.received", {"user_id": "42"})


def rate_limited(fake: FakeX, x: XApiClient) -> None:
    fake.rate_limits["GET /2/webhooks"] = 0
    x.list_webhooks()


def bad_bearer(fake: FakeX, x: XApiClient) -> None:
    fake.bearer_token = "another-token-entirely"
    x.list_webhooks()


@pytest.mark.parametrize(("scenario", "code"), [
    (crc_fails_at_creation, "CrcValidationFailed"),
    (duplicate_url, "DuplicateUrlFailed"),
    (unknown_webhook, "WebhookIdInvalid"),
    (not_subscribed, "SubscriptionNotFound"),
    (replay_conflict, "ReplayConflictError"),
    (unknown_subscription, "ResourceNotFound"),
    (private_event_with_the_app_token, "UnsupportedAuthentication"),
    (rate_limited, "TooManyRequests"),
    (bad_bearer, "Unauthorized"),
])
@pytest.mark.parametrize("shapes", ["spec", "field"])
def test_the_client_reads_the_fake_s_failures_the_same_in_the_spec_s_shapes_and_the_field_s(scenario, code, shapes):
    fake = FakeX(error_shapes=shapes)
    with fake.client() as x, pytest.raises(XApiError) as raised:
        scenario(fake, x)
    assert raised.value.code == code
    assert fake.requests[-1].status >= 400
    if shapes == "spec":  # held to the spec by the check (a mismatch would fail this test)
        assert fake.spec_violations == []


@pytest.mark.parametrize(("key", "call"), [
    ("GET /2/webhooks", lambda x, hook: x.list_webhooks()),
    ("GET /2/account_activity/webhooks/:webhook_id/subscriptions/all/list", lambda x, hook: x.list_aaa_subscriptions(hook)),
    ("GET /2/activity/subscriptions", lambda x, hook: x.list_xaa_subscriptions()),
])
def test_a_list_the_fake_fails_inside_a_200_is_an_error_not_an_empty_list(key, call):
    fake = FakeX(errors_in_200={key})
    hook = fake.add_webhook(WEBHOOK_URL)
    with fake.client() as x, pytest.raises(XApiError) as raised:
        call(x, hook)
    assert (raised.value.status, raised.value.code) == (200, "ResourceUnavailable")


def test_a_write_the_fake_fails_inside_a_200_applies_nothing():
    fake = FakeX(errors_in_200={"POST /2/webhooks"})
    with fake.client() as x, pytest.raises(XApiError) as raised:
        x.create_webhook(WEBHOOK_URL)
    assert raised.value.status == 200 and fake.webhooks == {}


@pytest.mark.parametrize("knobs", [
    {"aaa_success_status": 204}, {"xaa_create_shape": "flat"}, {"xaa_create_shape": "list"},
    {"xaa_update_shape": "flat"}, {"xaa_meta": True},
])
def test_the_prose_variants_stay_switches_and_the_client_reads_them(knobs):
    fake = FakeX(**knobs)
    hook = fake.add_webhook(WEBHOOK_URL)
    user = fake.register_oauth2_user("42")
    with fake.client() as x:
        x.subscribe_aaa(hook, user)
        created = x.create_xaa_subscription("post.create", {"user_id": "42"}, tag="a", webhook_id=hook)
        assert x.update_xaa_subscription(created.subscription_id, tag="b").tag == "b"
        x.delete_xaa_subscription(created.subscription_id)
        x.unsubscribe_aaa(hook, "42")
    assert fake.xaa_subscriptions == {} and fake.aaa_subscriptions[hook] == []

"""The X API client against the fake X (tests/fakex.py), which checks auth and bodies as X does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from fakex import BASE_URL, FakeX
from xrelay.subscriptions.xapi import (
    AppCredentials,
    Endpoint,
    RateLimited,
    UserCredentials,
    XaaSubscription,
    XApiClient,
    XApiError,
    XApiTransportError,
    error_code,
    replay_date,
)

WEBHOOK_URL = "https://relay.example.com/webhook"


def calls(fake: FakeX) -> list[tuple[str | None, str]]:
    """(endpoint, auth kind) of every request the fake received, in order."""
    return [(r.endpoint, r.auth) for r in fake.requests]


def raw_request(fake: FakeX, method: str, path: str, authorization: str, body: object = None) -> httpx.Response:
    """A request straight to the fake, bypassing the client: for checking what the fake refuses."""
    with httpx.Client(base_url=BASE_URL, transport=fake.transport()) as http:
        return http.request(method, path, json=body, headers={"Authorization": authorization})


def echoing_client(app: AppCredentials, status: int = 400) -> XApiClient:
    """A client whose 'X' answers with an error quoting the Authorization header back."""

    def handler(request: httpx.Request) -> httpx.Response:
        sent = request.headers["authorization"]
        return httpx.Response(status, json={"title": f"Bad {sent}", "detail": f"you sent {sent}",
                                            "errors": [{"message": f"Rejected: {sent}"}]})

    return XApiClient(app, transport=httpx.MockTransport(handler))


# --- credentials -------------------------------------------------------------------------------------


def test_reprs_never_show_secrets(fake: FakeX, x: XApiClient) -> None:
    oauth1 = fake.register_oauth1_user("111")
    oauth2 = fake.register_oauth2_user("222")
    shown = " ".join([repr(fake.app), str(fake.app), repr(oauth1), str(oauth1), repr(oauth2), repr(x)])

    for secret in (*fake.app.secrets(), *oauth1.secrets(), *oauth2.secrets()):
        assert secret not in shown
    assert "oauth1" in repr(oauth1) and "'111'" in repr(oauth1)  # still says which user it is


@pytest.mark.parametrize(
    "build",
    [
        lambda: UserCredentials("oauth1", "token"),  # OAuth 1.0a without its token secret
        lambda: UserCredentials("oauth2", "token", "secret"),  # OAuth 2.0 has no token secret
        lambda: UserCredentials.oauth2(""),
        lambda: UserCredentials("basic", "token"),  # type: ignore[arg-type]
    ],
)
def test_user_credentials_are_exactly_one_kind(build) -> None:
    with pytest.raises(ValueError):
        build()


# --- webhooks ----------------------------------------------------------------------------------------


def test_webhook_lifecycle_uses_the_app_bearer_token(fake: FakeX, x: XApiClient) -> None:
    created = x.create_webhook(WEBHOOK_URL)
    assert created.url == WEBHOOK_URL and created.valid is True and created.id in fake.webhooks

    listed = x.list_webhooks()
    assert [(w.id, w.url, w.valid) for w in listed] == [(created.id, WEBHOOK_URL, True)]
    assert listed[0].created_at  # asked for every field, not X's id/url default
    assert x.validate_webhook(created.id) is True
    x.delete_webhook(created.id)
    assert x.list_webhooks() == [] and fake.webhooks == {}

    assert calls(fake) == [
        ("POST /2/webhooks", "app"),
        ("GET /2/webhooks", "app"),
        ("PUT /2/webhooks/:webhook_id", "app"),
        ("DELETE /2/webhooks/:webhook_id", "app"),
        ("GET /2/webhooks", "app"),
    ]
    assert fake.requests[0].json() == {"url": WEBHOOK_URL}
    assert fake.requests[2].body == b""  # PUT takes no body


def test_create_webhook_is_refused_when_the_crc_fails(fake: FakeX, x: XApiClient) -> None:
    fake.crc_passes = False

    with pytest.raises(XApiError) as raised:
        x.create_webhook(WEBHOOK_URL)

    assert raised.value.code == "CrcValidationFailed" and raised.value.status == 400
    assert fake.webhooks == {}


@pytest.mark.parametrize("failure_answer", ["error", "valid_false"])
def test_validate_webhook_reports_a_failed_crc_whichever_way_x_says_it(
    fake: FakeX, x: XApiClient, failure_answer: str
) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    fake.crc_failure_answer = failure_answer
    fake.crc_passes = False

    assert x.validate_webhook(webhook_id) is False
    assert fake.webhooks[webhook_id].valid is False

    fake.crc_passes = True
    assert x.validate_webhook(webhook_id) is True
    assert fake.webhooks[webhook_id].valid is True


@pytest.mark.parametrize("url", ["https://relay.example.com:8443/webhook", "http://relay.example.com/webhook"])
def test_create_webhook_refuses_urls_x_refuses(fake: FakeX, x: XApiClient, url: str) -> None:
    with pytest.raises(XApiError) as raised:  # X wants https and no port
        x.create_webhook(url)
    assert raised.value.code == "UrlValidationFailed" and fake.webhooks == {}


def test_webhook_errors_are_typed(fake: FakeX, x: XApiClient) -> None:
    fake.webhook_limit = 1
    fake.add_webhook(WEBHOOK_URL)

    with pytest.raises(XApiError) as duplicate:
        x.create_webhook(WEBHOOK_URL)
    with pytest.raises(XApiError) as over_limit:
        x.create_webhook("https://other.example.com/webhook")
    with pytest.raises(XApiError) as unknown:
        x.validate_webhook("1234")

    assert duplicate.value.code == "DuplicateUrlFailed"
    assert over_limit.value.code == "WebhookLimitExceeded"
    assert unknown.value.code == "WebhookIdInvalid"
    assert len(fake.webhooks) == 1


def test_ids_are_checked_before_anything_is_sent(fake: FakeX, x: XApiClient) -> None:
    with pytest.raises(ValueError):
        x.delete_webhook("../../2/activity/subscriptions")
    with pytest.raises(ValueError):
        x.unsubscribe_aaa("123", "not-a-user")
    with pytest.raises(ValueError):
        x.delete_xaa_subscription("")
    assert fake.requests == []


# --- replay ------------------------------------------------------------------------------------------


def test_replay_job_is_created_once_at_a_time(fake: FakeX, x: XApiClient) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=2), now - timedelta(hours=1)

    job_id = x.create_replay_job(webhook_id, start, end)

    assert fake.replay_jobs[job_id].webhook_id == webhook_id
    assert fake.requests[0].json() == {"webhook_id": webhook_id, "from_date": start.strftime("%Y%m%d%H%M"),
                                       "to_date": end.strftime("%Y%m%d%H%M")}
    assert fake.requests[0].auth == "app"
    with pytest.raises(XApiError) as conflict:
        x.create_replay_job(webhook_id, start, end)
    assert conflict.value.code == "ReplayConflictError" and conflict.value.status == 409

    fake.complete_replay(job_id)
    assert x.create_replay_job(webhook_id, start, end) != job_id


def test_replay_dates_are_utc_minutes() -> None:
    assert replay_date(datetime(2026, 3, 1, 12, 5, 59, tzinfo=UTC)) == "202603011205"
    assert replay_date(datetime(2026, 3, 1, 14, 5, tzinfo=timezone(timedelta(hours=2)))) == "202603011205"
    assert replay_date("202603011205") == "202603011205"
    with pytest.raises(ValueError):
        replay_date(datetime(2026, 3, 1, 12, 5))  # naive: whose 12:05?
    with pytest.raises(ValueError):
        replay_date("2026-03-01T12:05")


# --- Account Activity --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["oauth1", "oauth2"])
@pytest.mark.parametrize("success_status", [200, 204])
def test_aaa_subscribe_in_user_context_list_and_unsubscribe_with_bearer(
    fake: FakeX, x: XApiClient, kind: str, success_status: int
) -> None:
    fake.aaa_success_status = success_status  # the docs say 200 + JSON, X's own sample code expects 204
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    user = fake.register_oauth1_user("111") if kind == "oauth1" else fake.register_oauth2_user("111")

    x.subscribe_aaa(webhook_id, user)
    assert x.list_aaa_subscriptions(webhook_id) == ["111"]
    x.unsubscribe_aaa(webhook_id, "111")
    assert x.list_aaa_subscriptions(webhook_id) == []

    assert [r.status for r in fake.requests] == [success_status, 200, success_status, 200]
    assert calls(fake) == [
        ("POST /2/account_activity/webhooks/:webhook_id/subscriptions/all", kind),
        ("GET /2/account_activity/webhooks/:webhook_id/subscriptions/all/list", "app"),
        ("DELETE /2/account_activity/webhooks/:webhook_id/subscriptions/:user_id/all", "app"),
        ("GET /2/account_activity/webhooks/:webhook_id/subscriptions/all/list", "app"),
    ]
    assert fake.requests[0].body == b"{}"


def test_fake_refuses_the_wrong_kind_of_auth_for_aaa(fake: FakeX) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    oauth2 = fake.register_oauth2_user("111")
    fake.aaa_subscriptions[webhook_id].append("111")

    app_subscribes = raw_request(fake, "POST", f"/2/account_activity/webhooks/{webhook_id}/subscriptions/all",
                                 f"Bearer {fake.bearer_token}", {})
    user_unsubscribes = raw_request(fake, "DELETE", f"/2/account_activity/webhooks/{webhook_id}/subscriptions/111/all",
                                    f"Bearer {oauth2.access_token}")
    nobody = raw_request(fake, "GET", f"/2/account_activity/webhooks/{webhook_id}/subscriptions/all/list",
                         "Bearer not-a-token")

    # The spec's Error: X's reason first in the message.
    assert app_subscribes.status_code == 403
    assert app_subscribes.json()["message"].startswith("UnsupportedAuthentication: Authenticating with OAuth 2.0 "
                                                       "Application-Only is forbidden")
    assert user_unsubscribes.status_code == 403
    assert user_unsubscribes.json()["message"].startswith("UnsupportedAuthentication: ")
    assert (nobody.status_code, nobody.json()) == (401, {"code": 401, "message": "Unauthorized: Unauthorized"})
    assert fake.aaa_subscriptions[webhook_id] == ["111"]


def test_aaa_errors_are_typed(fake: FakeX, x: XApiClient) -> None:
    fake.aaa_subscription_limit = 1
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    first, second = fake.register_oauth1_user("111"), fake.register_oauth2_user("222")
    x.subscribe_aaa(webhook_id, first)

    with pytest.raises(XApiError) as duplicate:
        x.subscribe_aaa(webhook_id, first)
    with pytest.raises(XApiError) as over_limit:
        x.subscribe_aaa(webhook_id, second)
    with pytest.raises(XApiError) as not_subscribed:
        x.unsubscribe_aaa(webhook_id, "222")
    with pytest.raises(XApiError) as unknown_webhook:
        x.list_aaa_subscriptions("42")

    assert (duplicate.value.status, duplicate.value.code) == (409, "DuplicateSubscriptionFailed")
    assert over_limit.value.code == "SubscriptionLimitExceeded"
    assert not_subscribed.value.code == "SubscriptionNotFound"
    assert unknown_webhook.value.code == "WebhookIdInvalid"
    assert fake.aaa_subscriptions[webhook_id] == ["111"]


def test_aaa_subscribe_answered_subscribed_false_is_an_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"data": {"subscribed": False}}))
    with XApiClient(AppCredentials("ck", "cs", "bearer"), transport=transport) as client:
        with pytest.raises(XApiError) as raised:
            client.subscribe_aaa("1", UserCredentials.oauth2("user-token"))
    assert raised.value.code == "UnexpectedResponse"


@pytest.mark.parametrize("kind", ["oauth1", "oauth2"])
def test_a_revoked_user_is_refused(fake: FakeX, x: XApiClient, kind: str) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    user = fake.register_oauth1_user("111") if kind == "oauth1" else fake.register_oauth2_user("111")
    fake.revoke("111")

    with pytest.raises(XApiError) as raised:
        x.subscribe_aaa(webhook_id, user)

    assert (raised.value.status, raised.value.code) == (401, "Unauthorized")
    assert fake.aaa_subscriptions[webhook_id] == []


# --- OAuth 1.0a: the fake really verifies, and the client really signs -------------------------------


def test_a_wrong_token_secret_is_refused(fake: FakeX, x: XApiClient) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    real = fake.register_oauth1_user("111")
    forged = UserCredentials.oauth1(real.access_token, "not-the-token-secret", user_id="111")

    with pytest.raises(XApiError) as raised:
        x.subscribe_aaa(webhook_id, forged)

    assert raised.value.status == 401
    assert fake.requests[-1].auth == "invalid" and fake.aaa_subscriptions[webhook_id] == []
    x.subscribe_aaa(webhook_id, real)  # and the genuine pair is accepted
    assert fake.aaa_subscriptions[webhook_id] == ["111"]


def test_a_wrong_consumer_secret_is_refused(fake: FakeX) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    user = fake.register_oauth1_user("111")
    wrong_app = AppCredentials(fake.consumer_key, "not-the-consumer-secret", fake.bearer_token)

    with fake.client(wrong_app) as client, pytest.raises(XApiError) as raised:
        client.subscribe_aaa(webhook_id, user)

    assert raised.value.status == 401 and fake.aaa_subscriptions[webhook_id] == []


def test_an_oauth1_signed_json_body_arrives_intact(fake: FakeX, x: XApiClient) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    user = fake.register_oauth1_user("111")
    tag = "DMs & replies: 100% ✓ a=b&c"  # characters a form-encoding mix-up would mangle

    created = x.create_xaa_subscription("dm.received", {"user_id": "111"}, tag=tag, webhook_id=webhook_id, user=user)

    received = fake.requests[-1]
    assert (received.auth, received.status) == ("oauth1", 200)  # the signature verified
    assert received.json() == {"event_type": "dm.received", "filter": {"user_id": "111"}, "tag": tag,
                               "webhook_id": webhook_id}
    assert fake.xaa_subscriptions[created.subscription_id]["tag"] == tag and created.tag == tag


def test_query_parameters_are_signed(fake: FakeX, x: XApiClient) -> None:
    fake.page_size = 2
    for n in range(5):
        fake.add_xaa_subscription("profile.update.bio", {"user_id": str(100 + n)})
    user = fake.register_oauth1_user("111")

    assert len(x.list_xaa_subscriptions(page_size=2, user=user)) == 5
    assert [r.auth for r in fake.requests] == ["oauth1"] * 3 and "pagination_token" in fake.requests[1].query

    def tamper(request: httpx.Request) -> httpx.Response:  # a parameter changed after signing
        return fake(httpx.Request(request.method, request.url.copy_set_param("max_results", "999"),
                                  headers=request.headers, content=request.content))

    with XApiClient(fake.app, transport=httpx.MockTransport(tamper)) as tampered, pytest.raises(XApiError) as raised:
        tampered.list_xaa_subscriptions(page_size=2, user=user)
    assert raised.value.status == 401


def test_a_replayed_oauth1_request_is_refused(fake: FakeX) -> None:
    user = fake.register_oauth1_user("111")

    def send_twice(request: httpx.Request) -> httpx.Response:
        fake(request)
        return fake(request)  # same nonce, same signature

    with XApiClient(fake.app, transport=httpx.MockTransport(send_twice)) as client, pytest.raises(XApiError) as raised:
        client.list_xaa_subscriptions(user=user)

    assert raised.value.status == 401
    assert [r.status for r in fake.requests] == [200, 401]


# --- X Activity API ----------------------------------------------------------------------------------


def test_xaa_public_events_use_the_bearer_token_and_private_ones_the_users_context(fake: FakeX, x: XApiClient) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    liker = fake.register_oauth2_user("222")

    bio = x.create_xaa_subscription("profile.update.bio", {"user_id": "111"}, tag="bios", webhook_id=webhook_id)
    likes = x.create_xaa_subscription("like.create", {"user_id": "222", "direction": "inbound"}, user=liker)

    assert (bio.event_type, bio.filter, bio.tag, bio.webhook_id) == ("profile.update.bio", {"user_id": "111"},
                                                                     "bios", webhook_id)
    assert (likes.event_type, likes.filter, likes.tag, likes.webhook_id) == (
        "like.create", {"user_id": "222", "direction": "inbound"}, None, None)
    assert fake.requests[1].json() == {"event_type": "like.create",
                                       "filter": {"user_id": "222", "direction": "inbound"}}
    assert calls(fake) == [("POST /2/activity/subscriptions", "app"), ("POST /2/activity/subscriptions", "oauth2")]
    assert set(fake.xaa_subscriptions) == {bio.subscription_id, likes.subscription_id}


def test_xaa_private_events_are_refused_with_the_bearer_token_or_another_users_context(
    fake: FakeX, x: XApiClient
) -> None:
    someone_else = fake.register_oauth1_user("333")

    with pytest.raises(XApiError) as app_only:
        x.create_xaa_subscription("dm.received", {"user_id": "111"})
    with pytest.raises(XApiError) as other_user:
        x.create_xaa_subscription("dm.received", {"user_id": "111"}, user=someone_else)

    assert (app_only.value.status, app_only.value.code) == (403, "UnsupportedAuthentication")
    assert other_user.value.status == 403
    assert fake.xaa_subscriptions == {}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"event_type": "profile.update.bio", "filter": {"user_id": "1"}, "tags": "x"}, "tags"),  # additionalProperties
        ({"event_type": "profile.update.bios", "filter": {"user_id": "1"}}, "profile.update.bios"),
        ({"event_type": "oauth.revoke", "filter": {}}, "oauth.revoke"),  # not in X's enum
        ({"filter": {"user_id": "1"}}, "event_type"),
        ({"event_type": "profile.update.bio", "filter": {"user": "1"}}, "user"),
        ({"event_type": "profile.update.bio", "filter": {"user_id": "@jack"}}, "user_id"),
        ({"event_type": "profile.update.bio", "filter": {"keyword": "x"}}, "user_id"),
        ({"event_type": "news.new", "filter": {"user_id": "1"}}, "keyword"),
        ({"event_type": "news.new", "filter": {"keyword": "k" * 151}}, "keyword"),
        ({"event_type": "follow.follow", "filter": {"user_id": "1", "direction": "both"}}, "direction"),
        ({"event_type": "profile.update.bio", "filter": {"user_id": "1"}, "tag": ""}, "tag"),
        ({"event_type": "profile.update.bio", "filter": {"user_id": "1"}, "tag": "t" * 201}, "tag"),
        ({"event_type": "profile.update.bio", "filter": {"user_id": "1"}, "webhook_id": "abc"}, "webhook_id"),
    ],
)
def test_fake_validates_xaa_create_bodies_as_x_does(fake: FakeX, body: dict, complaint: str) -> None:
    response = raw_request(fake, "POST", "/2/activity/subscriptions", f"Bearer {fake.bearer_token}", body)

    assert response.status_code == 400 and response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://api.x.com/2/problems/invalid-request" and complaint in problem["detail"]
    assert fake.xaa_subscriptions == {}


def test_fake_accepts_xaa_bodies_at_the_documented_limits(fake: FakeX) -> None:
    user = fake.register_oauth2_user("1")
    accepted = [
        (fake.bearer_token, {"event_type": "profile.update.bio", "filter": {"user_id": "1"}, "tag": "t" * 200}),
        (fake.bearer_token, {"event_type": "news.new", "filter": {"keyword": "k" * 150}, "tag": "t"}),
        # the deprecated alias is accepted and stored under its canonical name
        (user.access_token, {"event_type": "chat.conversation_join", "filter": {"user_id": "1"}}),
    ]
    for token, body in accepted:
        assert raw_request(fake, "POST", "/2/activity/subscriptions", f"Bearer {token}", body).status_code == 200
    assert sorted(s["event_type"] for s in fake.xaa_subscriptions.values()) == [
        "chat.conversation.join", "news.new", "profile.update.bio"]


def test_xaa_validation_errors_reach_the_caller_typed(fake: FakeX, x: XApiClient) -> None:
    with pytest.raises(XApiError) as raised:
        x.create_xaa_subscription("profile.update.everything", {"user_id": "1"})
    assert (raised.value.status, raised.value.code) == (400, "InvalidRequest")
    assert raised.value.title == "Invalid Request" and raised.value.type == "https://api.x.com/2/problems/invalid-request"
    assert "profile.update.everything" in raised.value.detail and "profile.update.everything" in str(raised.value)
    # The spec's enum refuses that request too: the check caught it; this test sent it on purpose.
    assert [(v.side, "is not one of" in "".join(v.errors)) for v in fake.take_spec_violations()] == [("request", True)]


@pytest.mark.parametrize("shape", ["list", "flat", "nested"])
def test_xaa_create_parses_every_documented_response_shape(fake: FakeX, x: XApiClient, shape: str) -> None:
    fake.xaa_create_shape = shape
    webhook_id = fake.add_webhook(WEBHOOK_URL)

    created = x.create_xaa_subscription("post.create", {"user_id": "111"}, tag="posts", webhook_id=webhook_id)

    stored = fake.xaa_subscriptions[created.subscription_id]
    assert created == XaaSubscription(created.subscription_id, "post.create", {"user_id": "111"}, "posts", webhook_id,
                                      stored["created_at"], stored["updated_at"])


@pytest.mark.parametrize("shape", ["flat", "nested"])
def test_xaa_update_changes_the_tag(fake: FakeX, x: XApiClient, shape: str) -> None:
    fake.xaa_update_shape = shape
    subscription_id = fake.add_xaa_subscription("post.create", {"user_id": "111"}, tag="old")

    updated = x.update_xaa_subscription(subscription_id, tag="new")

    assert updated is not None and (updated.subscription_id, updated.tag) == (subscription_id, "new")
    assert fake.xaa_subscriptions[subscription_id]["tag"] == "new"
    assert fake.requests[0].json() == {"tag": "new"} and calls(fake) == [
        ("PUT /2/activity/subscriptions/:subscription_id", "app")]


def test_xaa_update_needs_something_to_change(fake: FakeX, x: XApiClient) -> None:
    with pytest.raises(ValueError):
        x.update_xaa_subscription("123")
    assert fake.requests == []


def test_xaa_delete(fake: FakeX, x: XApiClient) -> None:
    subscription_id = fake.add_xaa_subscription("post.create", {"user_id": "111"})

    x.delete_xaa_subscription(subscription_id)
    with pytest.raises(XApiError) as again:
        x.delete_xaa_subscription(subscription_id)

    assert fake.xaa_subscriptions == {}
    assert (again.value.status, again.value.code) == (404, "ResourceNotFound")
    assert calls(fake) == [("DELETE /2/activity/subscriptions/:subscription_id", "app")] * 2


def test_xaa_list_collects_every_page(fake: FakeX, x: XApiClient) -> None:
    fake.page_size = 3  # X's page is smaller than what we ask for
    expected = [fake.add_xaa_subscription("post.create", {"user_id": str(1000 + n)}, tag=f"t{n}") for n in range(7)]

    listed = x.list_xaa_subscriptions()

    assert [s.subscription_id for s in listed] == expected
    assert [s.tag for s in listed] == [f"t{n}" for n in range(7)]
    pages = fake.requests
    assert len(pages) == 3 and all(r.auth == "app" for r in pages)
    assert "pagination_token" not in pages[0].query
    assert pages[1].query["pagination_token"] != pages[2].query["pagination_token"]
    assert all(r.query["max_results"] == "1000" for r in pages)


def test_xaa_list_of_nothing_is_one_call(fake: FakeX, x: XApiClient) -> None:
    assert x.list_xaa_subscriptions(page_size=10) == []
    assert len(fake.requests) == 1


def test_xaa_errors_are_typed(fake: FakeX, x: XApiClient) -> None:
    fake.xaa_subscription_limit = 1
    x.create_xaa_subscription("post.create", {"user_id": "111"})

    with pytest.raises(XApiError) as duplicate:
        x.create_xaa_subscription("post.create", {"user_id": "111"}, tag="a different tag changes nothing")
    with pytest.raises(XApiError) as over_limit:
        x.create_xaa_subscription("post.create", {"user_id": "222"})

    assert (duplicate.value.status, duplicate.value.code) == (409, "DuplicateSubscriptionFailed")
    assert over_limit.value.code == "SubscriptionLimitExceeded"
    assert len(fake.xaa_subscriptions) == 1


def test_reading_everything_writes_nothing(fake: FakeX, x: XApiClient) -> None:
    webhook_id = fake.add_webhook(WEBHOOK_URL)
    fake.add_xaa_subscription("post.create", {"user_id": "111"})

    x.list_webhooks()
    x.list_aaa_subscriptions(webhook_id)
    x.list_xaa_subscriptions()

    assert len(fake.requests) == 3 and fake.write_requests == []


# --- rate limits -------------------------------------------------------------------------------------


def test_rate_limits_are_tracked_per_endpoint_and_429_is_typed(fake: FakeX, x: XApiClient) -> None:
    fake.rate_limits["POST /2/activity/subscriptions"] = 2
    assert x.rate_limit(Endpoint.XAA_CREATE) is None

    x.create_xaa_subscription("post.create", {"user_id": "1"})
    assert x.rate_limit(Endpoint.XAA_CREATE).remaining == 1
    x.create_xaa_subscription("post.create", {"user_id": "2"})
    tracked = x.rate_limit("POST /2/activity/subscriptions")
    assert tracked.limit == 2 and tracked.remaining == 0 and tracked.exhausted()  # a caller can stop here

    with pytest.raises(RateLimited) as raised:
        x.create_xaa_subscription("post.create", {"user_id": "3"})

    reset = datetime.fromtimestamp(fake.rate_limit_reset("POST /2/activity/subscriptions"), UTC)
    assert (raised.value.status, raised.value.code, raised.value.reset_at) == (429, "TooManyRequests", reset)
    assert tracked.reset_at == reset and len(fake.xaa_subscriptions) == 2
    assert x.rate_limit(Endpoint.XAA_LIST) is None  # other endpoints keep their own budget
    assert not tracked.exhausted(now=reset)


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (409, {"errors": [{"message": "DuplicateSubscriptionFailed: Subscription already exists"}]},
         "DuplicateSubscriptionFailed"),
        (400, {"errors": [{"title": "DuplicateSubscriptionFailed", "detail": "exists"}]},
         "DuplicateSubscriptionFailed"),
        (403, {"title": "Subscription Limit Exceeded", "type": "about:blank"}, "SubscriptionLimitExceeded"),
        (400, {"title": "Bad", "type": "https://api.twitter.com/2/problems/crc-validation-failed"},
         "CrcValidationFailed"),
        (400, {"errors": [{"message": "WebhookIdInvalid"}]}, "WebhookIdInvalid"),
        (409, {"errors": [{"message": "ReplayConflictError: A replay job is already in progress"}]},
         "ReplayConflictError"),
        (400, {"errors": [{"message": "BrandNewError: something"}]}, "BrandNewError"),
        (400, {"title": "Invalid Request", "type": "https://api.twitter.com/2/problems/invalid-request"},
         "InvalidRequest"),
        (429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"}, "TooManyRequests"),
        (503, {"errors": [{"code": 67, "message": "Over capacity"}]}, "HTTP503"),
        (502, None, "HTTP502"),
    ],
)
def test_error_codes_are_found_in_whichever_shape_x_uses(status: int, body: object, code: str) -> None:
    assert error_code(status, body) == code


@pytest.mark.parametrize("kind", ["bearer", "oauth1", "oauth2"])
def test_errors_never_carry_credentials(kind: str) -> None:
    app = AppCredentials("consumer-key-1234", "consumer-secret-5678", "app-bearer-token-9012")
    user = {"bearer": None, "oauth1": UserCredentials.oauth1("111-access-token", "token-secret-3456"),
            "oauth2": UserCredentials.oauth2("oauth2-user-token-7890")}[kind]

    with echoing_client(app) as client, pytest.raises(XApiError) as raised:
        if user is None:
            client.list_webhooks()
        else:
            client.subscribe_aaa("1", user)

    error = raised.value
    shown = " ".join(str(part) for part in (error, repr(error), error.title, error.detail, error.type, error.args,
                                            error.messages))
    assert "<redacted>" in shown  # the echo was there, and was scrubbed
    for secret in (*app.secrets(), *(user.secrets() if user else ())):
        if secret:
            assert secret not in shown


def test_an_error_body_that_is_not_json_still_gives_a_typed_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="<html>Bad Gateway</html>"))
    with XApiClient(AppCredentials("ck", "cs", "bearer"), transport=transport) as client:
        with pytest.raises(XApiError) as raised:
            client.list_webhooks()
    assert (raised.value.status, raised.value.code) == (502, "HTTP502") and "Bad Gateway" in str(raised.value)


def test_a_success_that_is_not_json_is_unexpected() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="OK"))
    with XApiClient(AppCredentials("ck", "cs", "bearer"), transport=transport) as client:
        with pytest.raises(XApiError) as raised:
            client.list_webhooks()
    assert raised.value.code == "UnexpectedResponse"


def test_no_answer_is_a_typed_error_and_writes_are_not_retried() -> None:
    attempts: list[str] = []

    def time_out(request: httpx.Request) -> httpx.Response:
        attempts.append(request.method)
        raise httpx.ReadTimeout("timed out", request=request)

    with XApiClient(AppCredentials("ck", "cs", "bearer"), transport=httpx.MockTransport(time_out)) as client:
        with pytest.raises(XApiTransportError) as raised:
            client.create_xaa_subscription("post.create", {"user_id": "1"})

    assert raised.value.status is None and raised.value.code == "TransportError"
    assert isinstance(raised.value, XApiError) and attempts == ["POST"]


def test_fake_rejects_unknown_query_parameters(fake: FakeX) -> None:
    response = raw_request(fake, "GET", "/2/webhooks?expansions=everything", f"Bearer {fake.bearer_token}")
    assert response.status_code == 400 and "expansions" in json.dumps(response.json())

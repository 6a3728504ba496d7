"""Refreshing users' OAuth 2.0 tokens before they expire, against the strict fake of X and Secrets Manager (moto).

X rotates refresh tokens: once one is spent, only the pair X answered with works, so that pair must
be stored before anything uses it. A refresh X refuses means the user has to authorise again; an
outage or a rate limit does not.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.exceptions import ClientError

from fakex import BASE_URL, TOKEN_ENDPOINT, FakeX
from helpers import client_error
from xrelay.aws import client
from xrelay.aws import error_code as aws_error_code
from xrelay.subscriptions.users import NeedsAuthorization, StoredUser, UserCredentialStore
from xrelay.subscriptions.xapi import (
    AppCredentials,
    Endpoint,
    OAuth2Token,
    RateLimited,
    UserCredentials,
    XApiClient,
    XApiError,
    XApiTransportError,
    error_code,
)

ALICE, BOB = "4337869213", "2244994945"
WEBHOOK_URL = "https://relay.example.com/webhook"


class Clock:
    """One time for the fake (its ``clock``) and for the ``now`` the store is given."""

    def __init__(self) -> None:
        self.t = time.time()  # near real time: OAuth 1.0a timestamps are checked against it

    def __call__(self) -> float:
        return self.t

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    def advance(self, **delta: float) -> None:
        self.t += timedelta(**delta).total_seconds()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeX:
    return FakeX(clock=clock, webhook_limit=5)


@pytest.fixture
def x(fake: FakeX):
    with fake.client() as api:
        yield api


@pytest.fixture
def store():
    from moto import mock_aws

    with mock_aws():
        client.cache_clear()
        yield UserCredentialStore("xrelay")
    client.cache_clear()


def secret_of(user_id: str) -> dict:
    return json.loads(client("secretsmanager").get_secret_value(SecretId=f"xrelay/xrelay/users/{user_id}")[
        "SecretString"])


def authorize(fake: FakeX, store: UserCredentialStore, clock: Clock, user_id: str = ALICE, *,
              expires_in: int = 7200, offline: bool = True) -> UserCredentials:
    """The user authorises the app (OAuth 2.0) and the tokens land in Secrets Manager, as `users authorize` does."""
    creds = fake.register_oauth2_user(user_id, expires_in=expires_in, offline=offline)
    store.put(StoredUser(user_id, creds, fake.refresh_token_of(user_id), clock.now + timedelta(seconds=expires_in)))
    return creds


def token_requests(fake: FakeX) -> list:
    return [r for r in fake.requests if r.endpoint == TOKEN_ENDPOINT]


def usable(fake: FakeX, x: XApiClient, creds: UserCredentials) -> bool:
    """Whether X takes the credentials for a user-context call (an AAA subscription)."""
    webhook_id = fake.add_webhook(f"{WEBHOOK_URL}/{len(fake.webhooks)}")
    try:
        x.subscribe_aaa(webhook_id, creds)
    except XApiError as exc:
        assert (exc.status, exc.code) == (401, "Unauthorized")
        return False
    return fake.aaa_subscriptions[webhook_id] == [creds.user_id]


# --- no refresh needed -------------------------------------------------------------------------------


def test_a_fresh_token_is_used_as_is_without_calling_x(fake, x, store, clock) -> None:
    creds = authorize(fake, store, clock)
    clock.advance(minutes=90)  # 30 minutes left: well outside the 5-minute margin

    got = store.credentials_for(ALICE, x, now=clock.now)

    assert got == creds and got.user_id == ALICE and got.kind == "oauth2"
    assert fake.requests == []


def test_oauth1_credentials_pass_through_whatever_the_time(fake, x, store, clock) -> None:
    creds = fake.register_oauth1_user(ALICE)
    store.put(StoredUser(ALICE, creds))

    got = store.credentials_for(ALICE, x, now=clock.now + timedelta(days=365))

    assert got == creds and got.access_token_secret == creds.access_token_secret and got.user_id == ALICE
    assert fake.requests == []


def test_no_stored_secret_needs_authorization(fake, x, store) -> None:
    with pytest.raises(NeedsAuthorization) as raised:
        store.credentials_for(ALICE, x)
    assert raised.value.user_id == ALICE and raised.value.reason == "no stored credentials"
    assert fake.requests == []


# --- refresh -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("left", [timedelta(minutes=4), timedelta(seconds=1), -timedelta(hours=3)],
                         ids=["inside-margin", "about-to-expire", "expired"])
def test_an_expiring_token_is_refreshed_and_the_rotated_pair_stored(fake, x, store, clock, left) -> None:
    old = authorize(fake, store, clock)
    old_refresh = fake.refresh_token_of(ALICE)
    clock.advance(seconds=7200 - left.total_seconds())

    new = store.credentials_for(ALICE, x, now=clock.now)

    assert new.kind == "oauth2" and new.user_id == ALICE and new.access_token != old.access_token
    # Exactly one refresh, as X wants it: form body, the client's Basic auth, the stored refresh token.
    (sent,) = token_requests(fake)
    assert (sent.auth, sent.status, sent.user_id) == ("client", 200, ALICE)
    assert sent.form() == {"grant_type": "refresh_token", "refresh_token": old_refresh}
    # Stored: the new access token, X's new refresh token (the old one is dead) and the new expiry.
    assert secret_of(ALICE) == {
        "kind": "oauth2",
        "access_token": new.access_token,
        "refresh_token": fake.refresh_token_of(ALICE),
        "expires_at": (clock.now + timedelta(seconds=7200)).isoformat(),
    }
    assert fake.refresh_token_of(ALICE) not in (None, old_refresh)
    assert usable(fake, x, new) and not usable(fake, x, old)  # refreshing retired the old access token


def test_a_second_call_uses_the_new_token_without_refreshing_again(fake, x, store, clock) -> None:
    authorize(fake, store, clock)
    clock.advance(seconds=7200 - 60)
    first = store.credentials_for(ALICE, x, now=clock.now)
    clock.advance(minutes=30)

    again = store.credentials_for(ALICE, x, now=clock.now)

    assert again == first and len(token_requests(fake)) == 1
    assert usable(fake, x, again)


def test_a_refresh_without_a_new_refresh_token_keeps_the_stored_one(store, clock) -> None:
    # X always rotates; should it ever leave refresh_token out, the stored one is all there is.
    answer = {"token_type": "bearer", "expires_in": 7200, "access_token": "new-access-token", "scope": "tweet.read"}
    app = AppCredentials("ck", "cs", "bearer", "client-id", "client-secret")
    store.put(StoredUser(ALICE, UserCredentials.oauth2("old-access-token"), "old-refresh-token", clock.now))
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))

    with XApiClient(app, transport=transport) as api:
        got = store.credentials_for(ALICE, api, now=clock.now)

    assert got == UserCredentials.oauth2("new-access-token", user_id=ALICE)
    assert secret_of(ALICE)["refresh_token"] == "old-refresh-token"


def test_tokens_that_cannot_be_stored_are_not_handed_out(fake, x, store, clock, faults) -> None:
    authorize(fake, store, clock)
    clock.advance(hours=2)
    faults.inject("secretsmanager", "PutSecretValue", client_error("InternalServiceError", 500))

    with pytest.raises(ClientError) as raised:
        store.credentials_for(ALICE, x, now=clock.now)

    assert aws_error_code(raised.value) == "InternalServiceError" and len(token_requests(fake)) == 1


def test_a_refresh_another_run_stored_first_is_used(fake, x, store, clock) -> None:
    """Two reconciles refresh at once: the loser's refresh token is already spent, the winner's pair is stored."""
    authorize(fake, store, clock)
    clock.advance(hours=2)
    winner: list[UserCredentials] = []

    class RacingClient:
        def refresh_oauth2_token(self, refresh_token: str, *, now: datetime | None = None) -> OAuth2Token:
            with fake.client() as other:
                winner.append(UserCredentialStore("xrelay").credentials_for(ALICE, other, now=now))
            return x.refresh_oauth2_token(refresh_token, now=now)  # X: already spent

    got = store.credentials_for(ALICE, RacingClient(), now=clock.now)  # type: ignore[arg-type]

    assert got == winner[0] and usable(fake, x, got)
    assert [r.status for r in token_requests(fake)] == [200, 400]


# --- the user must authorise again -------------------------------------------------------------------


def spend_elsewhere(fake: FakeX, user_id: str) -> None:
    with fake.client() as other:
        other.refresh_oauth2_token(fake.refresh_token_of(user_id))


@pytest.mark.parametrize("how", ["spent", "revoked", "unknown"])
def test_a_refused_refresh_needs_authorization_and_leaves_the_secret_alone(fake, x, store, clock, how) -> None:
    authorize(fake, store, clock)
    if how == "spent":  # someone used the refresh token without storing what X sent back
        spend_elsewhere(fake, ALICE)
    elif how == "revoked":
        fake.revoke(ALICE)
    else:
        stored = store.get(ALICE)
        store.put(StoredUser(ALICE, stored.credentials, "never-issued-refresh-token", stored.expires_at))
    before = secret_of(ALICE)
    clock.advance(hours=2)

    with pytest.raises(NeedsAuthorization) as raised:
        store.credentials_for(ALICE, x, now=clock.now)

    assert raised.value.reason == "refresh refused by X (invalid_request)"
    assert isinstance(raised.value.__cause__, XApiError) and raised.value.__cause__.status == 400
    assert secret_of(ALICE) == before
    shown = " ".join([str(raised.value), repr(raised.value), str(raised.value.__cause__),
                      repr(raised.value.__cause__)])
    for secret in (before["access_token"], before["refresh_token"], *fake.app.secrets()):
        assert secret not in shown


def test_bad_app_client_credentials_are_the_apps_error_not_the_users(fake, store, clock) -> None:
    authorize(fake, store, clock)
    clock.advance(hours=2)
    wrong = AppCredentials(fake.consumer_key, fake.consumer_secret, fake.bearer_token, fake.client_id, "wrong-secret")

    # Re-authorising the user would not help: the app's client secret is wrong. Not NeedsAuthorization.
    with fake.client(wrong) as api, pytest.raises(XApiError) as raised:
        store.credentials_for(ALICE, api, now=clock.now)

    assert not isinstance(raised.value, NeedsAuthorization)
    assert (raised.value.status, raised.value.code) == (401, "unauthorized_client")
    assert fake.refresh_token_of(ALICE) == secret_of(ALICE)["refresh_token"]  # X did not spend it


def test_an_expiring_token_without_a_refresh_token_needs_authorization(fake, x, store, clock) -> None:
    authorize(fake, store, clock, offline=False)  # no offline.access: X issued no refresh token
    assert fake.refresh_token_of(ALICE) is None and secret_of(ALICE)["refresh_token"] is None
    clock.advance(seconds=7200 - 60)

    with pytest.raises(NeedsAuthorization) as raised:
        store.credentials_for(ALICE, x, now=clock.now)

    assert "no refresh token" in raised.value.reason and fake.requests == []


# --- temporary failures are not lost authorisations --------------------------------------------------


def failing_client(answer) -> XApiClient:
    app = AppCredentials("ck", "cs", "bearer", "client-id", "client-secret")
    return XApiClient(app, base_url=BASE_URL, transport=httpx.MockTransport(answer))


def time_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectTimeout("timed out", request=request)


@pytest.mark.parametrize(("answer", "error", "status"), [
    (lambda request: httpx.Response(503, json={"title": "Service Unavailable"}), XApiError, 503),
    (lambda request: httpx.Response(500, text="<html>oops</html>"), XApiError, 500),
    (time_out, XApiTransportError, None),
], ids=["503", "500", "no-answer"])
def test_outages_propagate_as_x_api_errors(store, clock, answer, error, status) -> None:
    store.put(StoredUser(ALICE, UserCredentials.oauth2("old-access"), "old-refresh", clock.now))
    before = secret_of(ALICE)

    with failing_client(answer) as api, pytest.raises(error) as raised:
        store.credentials_for(ALICE, api, now=clock.now)

    assert not isinstance(raised.value, NeedsAuthorization) and raised.value.status == status
    assert secret_of(ALICE) == before


def test_a_rate_limited_refresh_propagates_and_can_be_retried(fake, x, store, clock) -> None:
    authorize(fake, store, clock)
    clock.advance(hours=2)
    fake.rate_limits[TOKEN_ENDPOINT] = 0

    with pytest.raises(RateLimited) as raised:
        store.credentials_for(ALICE, x, now=clock.now)

    assert raised.value.status == 429 and raised.value.reset_at is not None
    assert x.rate_limit(Endpoint.OAUTH2_TOKEN).exhausted(now=clock.now)
    fake.rate_limits[TOKEN_ENDPOINT] = 10
    assert usable(fake, x, store.credentials_for(ALICE, x, now=clock.now))  # nothing was spent
    assert x.rate_limit(Endpoint.OAUTH2_TOKEN).remaining == 9


# --- the client --------------------------------------------------------------------------------------


def test_refresh_answers_with_a_redacted_token(fake, x, clock) -> None:
    fake.register_oauth2_user(ALICE, expires_in=600)
    spent = fake.refresh_token_of(ALICE)

    token = x.refresh_oauth2_token(spent, now=clock.now)

    assert token.expires_at == clock.now + timedelta(seconds=600)
    assert token.scope == "tweet.read users.read offline.access"
    assert token.refresh_token == fake.refresh_token_of(ALICE) != spent
    for secret in (token.access_token, token.refresh_token):
        assert secret not in repr(token) and secret not in str(token)
    assert fake.requests[-1].status == 200


def test_a_public_client_names_itself_in_the_body(clock) -> None:
    fake = FakeX(clock=clock, client_secret="")
    fake.register_oauth2_user(ALICE)
    spent = fake.refresh_token_of(ALICE)
    assert fake.app.client_secret == ""

    with fake.client() as api:
        api.refresh_oauth2_token(spent)

    (sent,) = token_requests(fake)
    assert sent.form() == {"grant_type": "refresh_token", "refresh_token": spent, "client_id": fake.client_id}
    assert sent.status == 200


def test_refreshing_needs_a_client_id(fake, store, clock) -> None:
    authorize(fake, store, clock)
    clock.advance(hours=2)
    no_client = AppCredentials(fake.consumer_key, fake.consumer_secret, fake.bearer_token)

    with fake.client(no_client) as api, pytest.raises(ValueError, match="client_id"):
        store.credentials_for(ALICE, api, now=clock.now)
    assert fake.requests == []


def test_app_credentials_keep_the_oauth2_client_out_of_reprs(fake) -> None:
    app = fake.app
    assert app.client_id in app.secrets() and app.client_secret in app.secrets()
    assert fake.client_secret not in repr(app) and fake.client_id not in repr(app)
    assert AppCredentials("ck", "cs", "bearer").client_id == ""  # the positional form still works


def test_token_endpoint_errors_never_carry_credentials() -> None:
    app = AppCredentials("ck-1234", "cs-5678", "bearer-9012", "client-id-3456", "client-secret-7890")

    def echo(request: httpx.Request) -> httpx.Response:
        said = f"{request.headers['authorization']} {request.content.decode()}"
        return httpx.Response(400, json={"error": "invalid_request", "error_description": f"you sent {said}",
                                         "errors": [{"message": f"Rejected: {said}"}]})

    with XApiClient(app, transport=httpx.MockTransport(echo)) as api, pytest.raises(XApiError) as raised:
        api.refresh_oauth2_token("refresh-token-secret-value")

    error = raised.value
    shown = " ".join(str(part) for part in (error, repr(error), error.detail, error.messages, error.args))
    basic = base64.b64encode(b"client-id-3456:client-secret-7890").decode()
    assert error.code == "invalid_request" and "<redacted>" in shown
    for secret in ("refresh-token-secret-value", basic, *app.secrets()):
        assert secret not in shown


@pytest.mark.parametrize(("body", "code"), [
    ({"error": "invalid_request", "error_description": "Value passed for the token was invalid."}, "invalid_request"),
    ({"error": "invalid_grant", "errors": [{"message": "BrandNewError: x"}]}, "invalid_grant"),
    ({"error": "unauthorized_client", "error_description": "Missing valid authorization header"},
     "unauthorized_client"),
    ({"error": {"nested": "object"}, "title": "Invalid Request"}, "InvalidRequest"),  # not OAuth's shape
])
def test_oauth_error_codes_are_taken_as_x_sends_them(body, code) -> None:
    assert error_code(400, body) == code


def test_the_oauth_error_description_is_the_detail(fake, x) -> None:
    with pytest.raises(XApiError) as raised:
        x.refresh_oauth2_token("never-issued")
    assert (raised.value.status, raised.value.code) == (400, "invalid_request")
    assert raised.value.detail == "Value passed for the token was invalid."
    assert "Value passed for the token was invalid." in str(raised.value)


# --- the fake is as strict as X ----------------------------------------------------------------------


def test_an_expired_access_token_is_refused_by_x(fake, x, clock) -> None:
    creds = fake.register_oauth2_user(ALICE, expires_in=60)
    assert usable(fake, x, creds)
    clock.advance(seconds=60)
    assert not usable(fake, x, creds)


def token_request(fake: FakeX, content: bytes | str, *, basic: tuple[str, str] | None = None,
                  content_type: str = "application/x-www-form-urlencoded", query: str = "") -> httpx.Response:
    """A request straight to the fake's token endpoint, bypassing the client."""
    headers = {"Content-Type": content_type}
    if basic is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    with httpx.Client(base_url=BASE_URL, transport=fake.transport()) as http:
        return http.post(f"/2/oauth2/token{query}", content=content, headers=headers)


@pytest.mark.parametrize(("case", "status", "error"), [
    ("wrong client secret", 401, "unauthorized_client"),
    ("wrong client id", 401, "unauthorized_client"),
    ("no client auth", 401, "unauthorized_client"),
    ("client_id differs from Basic", 401, "unauthorized_client"),
    ("extra parameter", 400, "invalid_request"),
    ("repeated parameter", 400, "invalid_request"),
    ("no refresh_token", 400, "invalid_request"),
    ("other grant", 400, "unsupported_grant_type"),
    ("json body", 400, "invalid_request"),
    ("query parameters", 400, "invalid_request"),
])
def test_the_fake_token_endpoint_refuses_what_x_refuses(fake, case, status, error) -> None:
    fake.register_oauth2_user(ALICE)
    refresh = fake.refresh_token_of(ALICE)
    good = (fake.client_id, fake.client_secret)
    form = f"grant_type=refresh_token&refresh_token={refresh}"
    request = {
        "wrong client secret": lambda: token_request(fake, form, basic=(fake.client_id, "nope")),
        "wrong client id": lambda: token_request(fake, form, basic=("someone-else", fake.client_secret)),
        "no client auth": lambda: token_request(fake, f"{form}&client_id={fake.client_id}"),
        "client_id differs from Basic": lambda: token_request(fake, f"{form}&client_id=other", basic=good),
        "extra parameter": lambda: token_request(fake, f"{form}&scope=dm.read", basic=good),
        "repeated parameter": lambda: token_request(fake, f"{form}&grant_type=refresh_token", basic=good),
        "no refresh_token": lambda: token_request(fake, "grant_type=refresh_token", basic=good),
        "other grant": lambda: token_request(fake, f"grant_type=client_credentials&refresh_token={refresh}",
                                             basic=good),
        "json body": lambda: token_request(fake, json.dumps({"grant_type": "refresh_token", "refresh_token": refresh}),
                                           basic=good, content_type="application/json"),
        "query parameters": lambda: token_request(fake, form, basic=good, query=f"?refresh_token={refresh}"),
    }[case]

    response = request()

    assert (response.status_code, response.json()["error"]) == (status, error)
    assert fake.refresh_token_of(ALICE) == refresh  # nothing was spent
    assert token_request(fake, form, basic=good).status_code == 200  # the same token, sent properly, works


def test_the_fake_refuses_a_spent_refresh_token_as_x_does(fake) -> None:
    fake.register_oauth2_user(ALICE)
    refresh = fake.refresh_token_of(ALICE)
    good = (fake.client_id, fake.client_secret)
    form = f"grant_type=refresh_token&refresh_token={refresh}"

    first, second = token_request(fake, form, basic=good), token_request(fake, form, basic=good)

    assert first.status_code == 200 and first.json()["refresh_token"] != refresh
    assert first.headers["cache-control"] == "no-store"
    assert second.status_code == 400
    assert second.json() == {"error": "invalid_request", "error_description": "Value passed for the token was invalid."}

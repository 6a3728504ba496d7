"""The X client's ids in URL paths, rate-limit headers and error shapes, at their edges (issue 19).

The ids of the other tests fail at their first character, the rate-limit budget is only ever
spent, and X's errors come whole; here ids fail late (the 20th digit, a slash after digits), each
header comes alone or malformed, and each part of an error body is left out in turn.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fakex import FakeX
from xrelay.subscriptions.xapi import (
    MAX_XAA_PAGE_SIZE,
    AppCredentials,
    Endpoint,
    RateLimit,
    RateLimited,
    UserCredentials,
    Webhook,
    XaaSubscription,
    XApiClient,
    XApiError,
    error_code,
    same_url,
)

URL = "https://relay.example.com/webhook"
LONGEST = "1234567890123456789"  # 19 digits: X's longest id
# Each is digits up to a late character: a check of the first character alone lets them through.
LATE_FAILURES = ["12345678901234567890", "123456789012345678x", "1234/../../2/webhooks", "123\n", "123 ",
                 "12%2F3", "1.5", "-1", "１２３"]


def answering(*responses: httpx.Response, app: AppCredentials | None = None) -> XApiClient:
    """A client whose 'X' gives these answers, in turn."""
    queue = list(responses)
    return XApiClient(app or AppCredentials("ck", "cs", "bearer-token"),
                      transport=httpx.MockTransport(lambda r: queue.pop(0)))


# --- ids that reach X's URL paths ----------------------------------------------------------------------


def path_calls(x: XApiClient, bad: str, good: str):
    user = UserCredentials.oauth2("user-token")
    return {
        "validate_webhook": lambda: x.validate_webhook(bad),
        "delete_webhook": lambda: x.delete_webhook(bad),
        "create_replay_job": lambda: x.create_replay_job(bad, "202611251200", "202611251300"),
        "list_aaa_subscriptions": lambda: x.list_aaa_subscriptions(bad),
        "subscribe_aaa": lambda: x.subscribe_aaa(bad, user),
        "unsubscribe_aaa webhook": lambda: x.unsubscribe_aaa(bad, good),
        "unsubscribe_aaa user": lambda: x.unsubscribe_aaa(good, bad),  # the second id, the first fine
        "create_xaa_subscription": lambda: x.create_xaa_subscription("post.create", {"user_id": "1"}, webhook_id=bad),
        "update_xaa_subscription id": lambda: x.update_xaa_subscription(bad, tag="t"),
        "update_xaa_subscription webhook": lambda: x.update_xaa_subscription(good, webhook_id=bad),
        "delete_xaa_subscription": lambda: x.delete_xaa_subscription(bad),
    }


@pytest.mark.parametrize("bad", LATE_FAILURES)
def test_an_id_that_fails_late_is_refused_before_anything_is_sent(fake: FakeX, x: XApiClient, bad: str) -> None:
    for name, call in path_calls(x, bad, LONGEST).items():
        with pytest.raises(ValueError, match="must be 1-19 digits"):
            call()
        assert fake.requests == [], name


def test_the_id_a_refusal_names_is_the_one_that_is_wrong(x: XApiClient) -> None:
    with pytest.raises(ValueError, match="^user_id must be 1-19 digits$"):
        x.unsubscribe_aaa(LONGEST, "12345678901234567890")
    with pytest.raises(ValueError, match="^webhook_id must be 1-19 digits$"):
        x.unsubscribe_aaa("12345678901234567890", LONGEST)


def test_ids_of_nineteen_digits_reach_x_in_the_path_of_each_call(fake: FakeX, x: XApiClient) -> None:
    for call in path_calls(x, LONGEST, "7").values():
        with pytest.raises(XApiError):  # X answers: no such webhook or subscription
            call()
    paths = [r.path for r in fake.requests]
    assert "/2/webhooks/1234567890123456789" in paths
    assert "/2/account_activity/webhooks/7/subscriptions/1234567890123456789/all" in paths
    assert "/2/account_activity/webhooks/1234567890123456789/subscriptions/all/list" in paths
    assert "/2/activity/subscriptions/1234567890123456789" in paths
    assert {"webhook_id": LONGEST, "from_date": "202611251200", "to_date": "202611251300"} in \
        [r.json() for r in fake.requests if r.path == "/2/webhooks/replay"]


def test_endpoint_paths_put_each_id_in_its_own_place() -> None:
    assert Endpoint.AAA_UNSUBSCRIBE.path(webhook_id="11", user_id="22") == \
        "/2/account_activity/webhooks/11/subscriptions/22/all"
    assert Endpoint.AAA_UNSUBSCRIBE.method == "DELETE" and Endpoint.WEBHOOKS_LIST.path() == "/2/webhooks"


# --- rate limits: each header alone, malformed, absent ----------------------------------------------


def with_headers(status: int = 200, **headers: str) -> httpx.Response:
    body = {"data": []} if status < 400 else {"code": status, "message": "TooManyRequests: Too Many Requests"}
    return httpx.Response(status, json=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


RESET = 1_800_000_000


@pytest.mark.parametrize("headers, expected", [
    ({"x_rate_limit_limit": "15", "x_rate_limit_remaining": "3", "x_rate_limit_reset": str(RESET)},
     RateLimit(15, 3, datetime.fromtimestamp(RESET, UTC))),
    ({"x_rate_limit_remaining": "0"}, RateLimit(None, 0, None)),
    ({"x_rate_limit_limit": "15"}, RateLimit(15, None, None)),
    ({"x_rate_limit_reset": str(RESET)}, RateLimit(None, None, datetime.fromtimestamp(RESET, UTC))),
    ({"x_rate_limit_limit": "lots", "x_rate_limit_remaining": "2"}, RateLimit(None, 2, None)),
])
def test_each_rate_limit_header_is_read_alone_and_a_malformed_one_is_unknown(headers, expected) -> None:
    with answering(with_headers(**headers)) as client:
        client.list_webhooks()
        assert client.rate_limit(Endpoint.WEBHOOKS_LIST) == expected


def test_an_answer_without_rate_limit_headers_keeps_what_the_last_one_said() -> None:
    with answering(with_headers(x_rate_limit_remaining="4"), with_headers(),
                   with_headers(x_rate_limit_reset="abc")) as client:
        client.list_webhooks()
        client.list_webhooks()
        assert client.rate_limit(Endpoint.WEBHOOKS_LIST) == RateLimit(None, 4, None)
        client.list_webhooks()
        assert client.rate_limit(Endpoint.WEBHOOKS_LIST) == RateLimit(None, 4, None)
        assert client.rate_limit(Endpoint.XAA_LIST) is None


def test_a_429_is_rate_limited_until_the_reset_its_own_headers_give() -> None:
    with answering(with_headers(x_rate_limit_reset="100"),
                   with_headers(429, x_rate_limit_remaining="0", x_rate_limit_reset=str(RESET))) as client:
        client.list_webhooks()
        with pytest.raises(RateLimited) as raised:
            client.list_webhooks()
    assert raised.value.reset_at == datetime.fromtimestamp(RESET, UTC)  # not the previous answer's reset
    assert (raised.value.status, raised.value.code) == (429, "TooManyRequests")


def test_a_429_without_headers_is_rate_limited_with_no_known_reset() -> None:
    with answering(with_headers(429)) as client, pytest.raises(RateLimited) as raised:
        client.list_webhooks()
    assert raised.value.reset_at is None and client.rate_limits == {}


def test_other_errors_are_not_rate_limits_even_with_the_headers() -> None:
    error = httpx.Response(503, json={"code": 503, "message": "ServiceUnavailable: busy"},
                           headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(RESET)})
    with answering(error) as client, pytest.raises(XApiError) as raised:
        client.list_webhooks()
    assert not isinstance(raised.value, RateLimited) and raised.value.code == "ServiceUnavailable"


NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("limit, exhausted", [
    (RateLimit(15, None, NOW + timedelta(minutes=1)), False),  # nothing said about what is left
    (RateLimit(15, 1, NOW + timedelta(minutes=1)), False),
    (RateLimit(15, 0, NOW + timedelta(seconds=1)), True),
    (RateLimit(15, 0, NOW), False),  # the window resets now: spent no more
    (RateLimit(15, 0, NOW - timedelta(seconds=1)), False),
    (RateLimit(15, 0, None), True),  # spent, and no word on when it comes back
    (RateLimit(15, -1, NOW + timedelta(minutes=1)), True),
])
def test_a_budget_is_exhausted_only_while_nothing_is_left_before_its_reset(limit: RateLimit, exhausted: bool) -> None:
    assert limit.exhausted(NOW) is exhausted


def test_a_budget_spent_at_the_fake_is_exhausted_until_its_window_ends(fake: FakeX, x: XApiClient) -> None:
    now = [1_800_000_000.0]
    fake.clock = lambda: now[0]
    fake.rate_limits["GET /2/webhooks"] = 1
    x.list_webhooks()
    spent = x.rate_limit(Endpoint.WEBHOOKS_LIST)
    assert spent == RateLimit(1, 0, datetime.fromtimestamp(now[0] + 900, UTC))
    assert spent.exhausted(datetime.fromtimestamp(now[0] + 899, UTC))
    assert not spent.exhausted(datetime.fromtimestamp(now[0] + 900, UTC))
    now[0] += 900
    assert x.list_webhooks() == [] and x.rate_limit(Endpoint.WEBHOOKS_LIST).remaining == 0


# --- X's error shapes, each part in turn ---------------------------------------------------------------


def error_of(status: int, body=None, text: str | None = None, *, app: AppCredentials | None = None) -> XApiError:
    response = httpx.Response(status, json=body) if text is None else httpx.Response(status, text=text)
    with XApiClient(app or AppCredentials("ck", "cs", "bearer-token"),
                    transport=httpx.MockTransport(lambda r: response)) as client:
        with pytest.raises(XApiError) as raised:
            client.list_webhooks()
    return raised.value


def test_the_spec_error_keeps_its_integer_code_and_its_message_as_the_detail() -> None:
    error = error_of(400, {"code": 400, "message": "WebhookIdInvalid: The webhook id is not valid"})
    assert (error.code, error.x_code, error.detail) == ("WebhookIdInvalid", 400, "WebhookIdInvalid: The webhook id is not valid")
    assert error.messages == ("WebhookIdInvalid: The webhook id is not valid",)
    assert str(error) == ("X API GET /2/webhooks: HTTP 400 WebhookIdInvalid: WebhookIdInvalid: The webhook id is not "
                          "valid")
    assert error_of(400, {"code": True, "message": "x"}).x_code is None  # a boolean is no code
    assert error_of(400, {"code": "400", "message": "x"}).x_code is None


def test_a_problem_gives_its_own_fields_and_the_first_of_its_errors_fills_the_gaps() -> None:
    error = error_of(400, {"title": "Invalid Request", "errors": [
        {"message": "The `tag` field is too long", "title": "Ignored title", "type": "https://x/problems/t",
         "detail": "first detail"},
        {"message": "The `filter` field is missing", "detail": "second detail"}]})
    assert (error.title, error.type, error.detail) == ("Invalid Request", "https://x/problems/t", "first detail")
    assert error.messages == ("The `tag` field is too long", "The `filter` field is missing")
    assert str(error).endswith(": The `tag` field is too long; The `filter` field is missing")


def test_the_explanation_takes_three_messages_at_most_and_three_hundred_characters() -> None:
    many = error_of(400, {"errors": [{"message": f"problem {i}"} for i in range(5)]})
    assert str(many).endswith(": problem 0; problem 1; problem 2") and len(many.messages) == 5
    long = error_of(400, {"errors": [{"message": "m" * 400}]})
    assert str(long).endswith(": " + "m" * 300)


def test_without_messages_the_detail_explains_then_oauths_description() -> None:
    problem = error_of(404, {"title": "Not Found Error", "detail": "no such webhook",
                             "type": "https://api.x.com/2/problems/resource-not-found"})
    assert (problem.code, problem.detail, problem.messages) == ("ResourceNotFound", "no such webhook", ())
    assert str(problem).endswith("HTTP 404 ResourceNotFound: no such webhook")
    oauth = error_of(400, {"error": "invalid_request", "error_description": "Value passed for the token was invalid"})
    assert (oauth.code, oauth.detail) == ("invalid_request", "Value passed for the token was invalid")


def test_an_error_that_is_not_json_keeps_two_hundred_characters_of_its_text() -> None:
    error = error_of(502, text="<html>" + "b" * 500)
    assert (error.code, error.detail) == ("HTTP502", ("<html>" + "b" * 500)[:200])
    bare = error_of(502, text="")
    assert (bare.detail, str(bare)) == (None, "X API GET /2/webhooks: HTTP 502 HTTP502")


def test_a_200_with_errors_and_no_data_says_so_and_keeps_its_status() -> None:
    error = error_of(200, {"errors": [{"title": "Service Unavailable", "detail": "try again later",
                                       "type": "https://api.x.com/2/problems/resource-unavailable"}]})
    assert (error.status, error.code, error.detail) == (200, "ResourceUnavailable", "try again later")
    assert str(error) == ("X API GET /2/webhooks: HTTP 200 with errors and no data: ResourceUnavailable: "
                          "try again later")


def test_short_values_are_not_taken_for_secrets_but_every_longer_credential_is() -> None:
    app = AppCredentials("abc", "wxyz", "bearer-token")
    error = error_of(400, {"message": "abc: wxyz and bearer-token in abcdef"}, app=app)
    assert error.detail == "abc: <redacted> and <redacted> in abcdef"  # a 3-character value would mangle text


@pytest.mark.parametrize("body, code", [
    ({"error": "e" * 64}, "e" * 64),
    ({"error": "e" * 65, "title": "Bad Request"}, "BadRequest"),  # no OAuth error name is that long
    ({"error": "invalid request", "title": "Bad Request"}, "BadRequest"),
    ({"message": "lowercase: not a name", "title": "T"}, "T"),
    ({"type": "about:blank", "title": "Too Many Requests"}, "TooManyRequests"),
    ({"type": "https://api.x.com/2/problems/client-forbidden/", "title": "Forbidden"}, "ClientForbidden"),
    ({"title": "!!!"}, "HTTP418"),
    ({"errors": ["not an object", {"message": "Named: in the second"}]}, "Named"),
    ({"errors": [{"title": "first"}], "title": "Outer Title"}, "OuterTitle"),  # the body before its errors
    ({"detail": "the subscription limit exceeded for this app"}, "SubscriptionLimitExceeded"),
    ({"errors": [{"detail": "Duplicate-URL failed: already registered"}]}, "DuplicateUrlFailed"),
    (["not", "an", "object"], "HTTP418"),
])
def test_the_name_of_an_error_is_found_in_x_s_order_of_shapes(body, code: str) -> None:
    assert error_code(418, body) == code


# --- answers that look like success ----------------------------------------------------------------------


def test_a_list_answered_with_no_body_is_an_error_and_a_write_answered_so_is_done() -> None:
    with answering(httpx.Response(204), httpx.Response(200, content=b"  ")) as client:
        with pytest.raises(XApiError, match="HTTP 204 with no body for a list"):
            client.list_webhooks()
        client.delete_webhook("1")


@pytest.mark.parametrize("flag, ok", [({"deleted": True}, True), ({"deleted": False}, False), ({}, True),
                                      ({"deleted": "true"}, False)])
def test_a_delete_x_explicitly_denies_is_an_error(flag: dict, ok: bool) -> None:
    with answering(httpx.Response(200, json={"data": flag})) as client:
        if ok:
            client.delete_xaa_subscription("5")
        else:
            with pytest.raises(XApiError, match="unexpected response: X answered data.deleted="):
                client.delete_xaa_subscription("5")


def test_a_replay_job_id_is_read_from_data_or_the_top_level_and_its_absence_is_an_error() -> None:
    with answering(httpx.Response(200, json={"data": {"job_id": "42"}}), httpx.Response(200, json={"job_id": 43}),
                   httpx.Response(200, json={"data": {}})) as client:
        assert client.create_replay_job("1", "202611251200", "202611251300") == "42"
        assert client.create_replay_job("1", "202611251200", "202611251300") == "43"
        with pytest.raises(XApiError, match="no job_id in the response"):
            client.create_replay_job("1", "202611251200", "202611251300")


def test_users_me_needs_a_numeric_id() -> None:
    user = UserCredentials.oauth2("token")
    with answering(httpx.Response(200, json={"data": {"id": "2244994945"}}),
                   httpx.Response(200, json={"data": {"id": "xdev"}}), httpx.Response(200, json={"data": {}})) as client:
        assert client.me(user) == "2244994945"
        for _ in range(2):
            with pytest.raises(XApiError, match="no data.id"):
                client.me(user)


def test_webhooks_and_subscriptions_are_read_tolerantly_but_never_invented() -> None:
    assert Webhook.from_json({"id": 5, "valid": "true"}) == Webhook("5", "", None, None)
    assert Webhook.from_json({"id": "5", "url": URL, "valid": False, "created_at": "t"}) == Webhook("5", URL, False, "t")
    sub = XaaSubscription.from_json({"id": 9, "event_type": "post.create", "filter": {"user_id": 1}, "tag": None})
    assert (sub.subscription_id, sub.filter, sub.tag) == ("9", {"user_id": "1"}, None)
    assert XaaSubscription.from_json({"subscription_id": "8", "id": "9", "filter": "x"}).filter == {}
    assert XaaSubscription.from_json({"subscription_id": "8", "id": "9"}).subscription_id == "8"
    with pytest.raises(KeyError):
        XaaSubscription.from_json({"event_type": "post.create"})


def test_listing_skips_what_is_not_a_subscription_and_keeps_its_neighbours() -> None:
    page = {"data": [{"subscription_id": "1", "event_type": "a"}, "junk", {"event_type": "no id"},
                     {"subscription": {"subscription_id": "2", "event_type": "b"}}, {"id": "3", "event_type": "c"}]}
    with answering(httpx.Response(200, json=page)) as client:
        assert [(s.subscription_id, s.event_type) for s in client.list_xaa_subscriptions()] == \
            [("1", "a"), ("2", "b"), ("3", "c")]


@pytest.mark.parametrize("size, ok", [(0, False), (1, True), (MAX_XAA_PAGE_SIZE, True), (MAX_XAA_PAGE_SIZE + 1, False)])
def test_a_page_size_is_one_to_x_s_maximum(fake: FakeX, x: XApiClient, size: int, ok: bool) -> None:
    if ok:
        assert x.list_xaa_subscriptions(page_size=size) == []
        assert fake.requests[-1].query == {"max_results": str(size)}
    else:
        with pytest.raises(ValueError, match=f"page_size must be 1..{MAX_XAA_PAGE_SIZE}"):
            x.list_xaa_subscriptions(page_size=size)
        assert fake.requests == []


def test_pages_are_followed_with_the_token_each_gives_and_a_repeated_token_stops_it() -> None:
    pages = [httpx.Response(200, json={"data": [{"id": "1"}], "meta": {"next_token": "p2"}}),
             httpx.Response(200, json={"data": [{"id": "2"}], "meta": {"next_token": "p3"}}),
             httpx.Response(200, json={"data": [{"id": "3"}], "meta": {"next_token": "p2"}})]
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(dict(request.url.params))
        return pages.pop(0)

    with XApiClient(AppCredentials("ck", "cs", "b"), transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(XApiError, match="a token it had already returned"):
            client.list_xaa_subscriptions(page_size=7)
    assert sent == [{"max_results": "7"}, {"max_results": "7", "pagination_token": "p2"},
                    {"max_results": "7", "pagination_token": "p3"}]


# --- two webhooks: ours is found by URL, never its neighbour --------------------------------------------


@pytest.mark.parametrize("a, b, same", [
    ("https://Relay.Example.com/webhook", URL, True),
    ("HTTPS://relay.example.com/webhook", URL, True),
    ("https://relay.example.com/Webhook", URL, False),  # paths are case-sensitive
    ("https://relay.example.com/webhook2", URL, False),
    ("https://relay.example.com/webhook", "https://relay.example.co/mwebhook", False),
    ("https://relay.example.com", "https://relay.example.com/", False),
])
def test_a_webhook_url_matches_ignoring_only_the_case_of_scheme_and_host(a: str, b: str, same: bool) -> None:
    assert same_url(a, b) is same and same_url(b, a) is same


def test_two_webhooks_are_listed_each_with_its_own_validity(fake: FakeX, x: XApiClient) -> None:
    ours = fake.add_webhook(URL)
    theirs = fake.add_webhook(URL + "2", valid=False)
    listed = {w.id: w for w in x.list_webhooks()}
    assert (listed[ours].url, listed[ours].valid) == (URL, True)
    assert (listed[theirs].url, listed[theirs].valid) == (URL + "2", False)
    assert [w.id for w in listed.values() if same_url(w.url, URL.upper().replace("/WEBHOOK", "/webhook"))] == [ours]


# --- the authorization-code grant: a confidential client in Basic, a public one in the form -------------


@pytest.mark.parametrize("client_secret", ["client-secret-1", ""])
def test_a_code_is_exchanged_with_the_client_named_where_its_kind_requires(client_secret: str) -> None:
    import base64
    from urllib.parse import parse_qsl

    sent: list[httpx.Request] = []

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"token_type": "bearer", "access_token": "at-1", "refresh_token": "rt-1",
                                         "expires_in": 7200, "scope": "tweet.read offline.access"})

    app = AppCredentials("ck", "cs", "bearer", client_id="client-id-1", client_secret=client_secret)
    with XApiClient(app, transport=httpx.MockTransport(token_endpoint)) as client:
        token = client.exchange_oauth2_code("the-code", "http://127.0.0.1:8765/callback", "the-verifier", now=NOW)

    (request,) = sent
    form = dict(parse_qsl(request.content.decode()))
    expected = {"grant_type": "authorization_code", "code": "the-code", "redirect_uri": "http://127.0.0.1:8765/callback",
                "code_verifier": "the-verifier"}
    if client_secret:
        assert form == expected
        assert request.headers["authorization"] == "Basic " + base64.b64encode(b"client-id-1:client-secret-1").decode()
    else:
        assert form == expected | {"client_id": "client-id-1"} and "authorization" not in request.headers
    assert (token.access_token, token.refresh_token, token.expires_at) == ("at-1", "rt-1", NOW + timedelta(hours=2))


OAUTH2_CLIENT = AppCredentials("ck", "cs", "bearer", client_id="cid", client_secret="client-secret")


@pytest.mark.parametrize("expires_in, expected", [
    (7200, NOW + timedelta(seconds=7200)), ("7200", NOW + timedelta(seconds=7200)), (None, None),
    ("9" * 10, NOW + timedelta(seconds=9_999_999_999)),
])
def test_a_tokens_lifetime_is_counted_in_seconds_from_the_request(expires_in, expected) -> None:
    body = {"token_type": "Bearer", "access_token": "at"} | ({} if expires_in is None else {"expires_in": expires_in})
    with answering(httpx.Response(200, json=body), app=OAUTH2_CLIENT) as client:
        assert client.refresh_oauth2_token("rt", now=NOW).expires_at == expected


@pytest.mark.parametrize("body, complaint", [
    ({"token_type": "bearer", "access_token": "at", "expires_in": True}, "expires_in is not a number of seconds"),
    ({"token_type": "bearer", "access_token": "at", "expires_in": "1" * 11}, "expires_in is not a number of seconds"),
    ({"token_type": "bearer", "access_token": "at", "expires_in": "-5"}, "expires_in is not a number of seconds"),
    ({"token_type": "bearer", "access_token": "at", "expires_in": 1.5}, "expires_in is not a number of seconds"),
    ({"token_type": "mac", "access_token": "at"}, "token_type is not bearer"),
    ({"token_type": "bearer", "access_token": ""}, "no access_token in the response"),
    ({"token_type": "bearer", "access_token": "at", "refresh_token": ""}, "refresh_token is not a token"),
    ({"token_type": "bearer", "access_token": "at", "refresh_token": 5}, "refresh_token is not a token"),
])
def test_a_token_answer_x_would_not_give_is_unexpected_and_names_no_value(body, complaint) -> None:
    with answering(httpx.Response(200, json=body), app=OAUTH2_CLIENT) as client:
        with pytest.raises(XApiError) as raised:
            client.refresh_oauth2_token("rt", now=NOW)
    assert raised.value.code == "UnexpectedResponse" and str(raised.value).endswith(complaint)


# --- values with units, and what must not change once built ------------------------------------------


@pytest.mark.parametrize("given, seconds", [({}, 10.0), ({"timeout": 2.5}, 2.5)])
def test_every_request_carries_the_clients_timeout_in_seconds(given: dict, seconds: float) -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"data": []})

    with XApiClient(AppCredentials("ck", "cs", "b"), transport=httpx.MockTransport(handler), **given) as client:
        client.list_webhooks()
    assert seen == [{"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}]


def test_credentials_tokens_and_results_cannot_be_changed_once_built() -> None:
    import dataclasses

    built = [AppCredentials("ck", "cs", "b"), UserCredentials.oauth2("t"), Webhook("1", URL),
             XaaSubscription("1", "post.create", {}), RateLimit(1, 0, None)]
    from xrelay.subscriptions.xapi import OAuth2Token

    built.append(OAuth2Token("at", None, None))
    for value in built:
        field = dataclasses.fields(value)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, "changed")


@pytest.mark.parametrize("consumer_key, consumer_secret", [("ck", ""), ("", "cs"), ("", "")])
def test_oauth1_signing_needs_both_consumer_values_and_sends_nothing_without_them(fake: FakeX, consumer_key: str,
                                                                                  consumer_secret: str) -> None:
    user = fake.register_oauth1_user("111")
    app = AppCredentials(consumer_key, consumer_secret, fake.bearer_token)
    with fake.client(app) as client, pytest.raises(ValueError, match="needs AppCredentials.consumer_key and "
                                                                      "consumer_secret"):
        client.subscribe_aaa(fake.add_webhook(URL), user)
    assert fake.requests == []


@pytest.mark.parametrize("shapes", ["spec", "field"])
def test_a_spent_user_budget_is_that_users_alone_in_either_error_shape(fake: FakeX, x: XApiClient, shapes: str) -> None:
    """X budgets user-context calls per user: Alice's 429 (in the spec's shape or the field's) leaves Bob's alone."""
    fake.error_shapes = shapes
    fake.rate_limits["GET /2/activity/subscriptions"] = 1
    alice, bob = fake.register_oauth2_user("111"), fake.register_oauth2_user("222")
    x.list_xaa_subscriptions(user=alice)
    with pytest.raises(RateLimited) as raised:
        x.list_xaa_subscriptions(user=alice)
    reset = datetime.fromtimestamp(fake.rate_limit_reset("GET /2/activity/subscriptions", "oauth2", "111"), UTC)
    assert (raised.value.code, raised.value.status, raised.value.reset_at) == ("TooManyRequests", 429, reset)
    assert x.list_xaa_subscriptions(user=bob) == []
    bobs = datetime.fromtimestamp(fake.rate_limit_reset("GET /2/activity/subscriptions", "oauth2", "222"), UTC)
    assert x.rate_limit(Endpoint.XAA_LIST) == RateLimit(1, 0, bobs)  # the latest answer's headers: Bob's


def test_a_tag_and_a_webhook_id_are_only_ever_named_so_they_cannot_be_swapped(fake: FakeX, x: XApiClient) -> None:
    with pytest.raises(TypeError):
        x.update_xaa_subscription("1", "posts")  # type: ignore[misc]
    with pytest.raises(TypeError):
        x.create_xaa_subscription("post.create", {"user_id": "1"}, "posts")  # type: ignore[misc]
    assert fake.requests == []

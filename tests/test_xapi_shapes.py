"""The X client against every failure shape X's spec declares, for every endpoint it calls.

X's spec (tests/spec/x-openapi.json) gives each of these endpoints the same three ways to fail: an
``Error`` ``{code, message}`` (``application/json``) with X's named reason first in ``message``, one
of the ``Problem`` subtypes (``application/problem+json``), or a 200 that carries ``errors`` and no
``data``. Beside them, the shapes X's pages and servers show (``about:blank`` problems,
``api.twitter.com`` problem types, ``errors[].message``). The bodies here are built from the spec
and checked against it, so the list follows the spec rather than our reading of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from spec.trim_openapi import NOT_IN_SPEC
from xrelay.subscriptions.xapi import (
    KNOWN_ERROR_CODES,
    AppCredentials,
    Endpoint,
    UserCredentials,
    XApiClient,
    XApiError,
)
from xspec import load_spec, response_errors

APP = AppCredentials("ck", "cs", "bearer-token-0001")
USER = UserCredentials.oauth2("user-token-0001", user_id="42")
WID, SID, UID = "1900000000000000001", "1900000000000000002", "42"

# One call per endpoint the spec declares, the way xrelay makes it.
CALLS: dict[Endpoint, Callable[[XApiClient], Any]] = {
    Endpoint.WEBHOOKS_LIST: lambda x: x.list_webhooks(),
    Endpoint.WEBHOOK_CREATE: lambda x: x.create_webhook("https://relay.example.com/webhook"),
    Endpoint.WEBHOOK_VALIDATE: lambda x: x.validate_webhook(WID),
    Endpoint.WEBHOOK_DELETE: lambda x: x.delete_webhook(WID),
    Endpoint.WEBHOOK_REPLAY: lambda x: x.create_replay_job(WID, "202611261100", "202611261200"),
    Endpoint.AAA_LIST: lambda x: x.list_aaa_subscriptions(WID),
    Endpoint.AAA_SUBSCRIBE: lambda x: x.subscribe_aaa(WID, USER),
    Endpoint.AAA_UNSUBSCRIBE: lambda x: x.unsubscribe_aaa(WID, UID),
    Endpoint.XAA_LIST: lambda x: x.list_xaa_subscriptions(),
    Endpoint.XAA_CREATE: lambda x: x.create_xaa_subscription("post.create", {"user_id": UID}),
    Endpoint.XAA_UPDATE: lambda x: x.update_xaa_subscription(SID, tag="posts"),
    Endpoint.XAA_DELETE: lambda x: x.delete_xaa_subscription(SID),
    Endpoint.USERS_ME: lambda x: x.me(USER),
}
LISTS = (Endpoint.WEBHOOKS_LIST, Endpoint.AAA_LIST, Endpoint.XAA_LIST)
PROBLEM_JSON = {"content-type": "application/problem+json"}


def test_every_endpoint_the_spec_declares_is_exercised():
    assert set(CALLS) == set(Endpoint) - NOT_IN_SPEC


def spec_problems() -> dict[str, dict[str, Any]]:
    """One instance of each of the spec's Problem subtypes: its ``type``, and every required field."""
    schemas = load_spec()["components"]["schemas"]
    problems = {}
    for choice in schemas["Problem"]["oneOf"]:
        schema = schemas[choice["$ref"].rsplit("/", 1)[1]]
        problem_type = schema["properties"]["type"]["enum"][0]
        body = {"type": problem_type, "title": "A title", "detail": "What went wrong, in X's words."}
        body.update({name: "thing" for name in schema["required"] if name not in body})
        problems[problem_type.rsplit("/", 1)[1]] = body
    return problems


PROBLEMS = spec_problems()


def camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.split("-"))


def answering(response: httpx.Response) -> tuple[XApiClient, list[httpx.Request]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return response

    return XApiClient(APP, transport=httpx.MockTransport(handler)), sent


def failing(endpoint: Endpoint, response: httpx.Response, *, declared: bool = True) -> XApiError:
    """Call ``endpoint`` against an X answering ``response``: the error it raises (checked to be the spec's)."""
    client, sent = answering(response)
    with client, pytest.raises(XApiError) as raised:
        CALLS[endpoint](client)
    if declared:
        assert response_errors(sent[0], response) == [], "the test's answer is not one the spec declares"
    return raised.value


def test_the_spec_has_nine_problem_subtypes_and_each_is_built_valid():
    assert len(PROBLEMS) == 9 and "resource-not-found" in PROBLEMS and "invalid-request" in PROBLEMS


# --- Error {code, message} ---------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
@pytest.mark.parametrize("name", [n for n in KNOWN_ERROR_CODES if n != "CrcValidationFailed"])
def test_errors_named_in_the_message_keep_their_name(endpoint, name):
    error = failing(endpoint, httpx.Response(400, json={"code": 400, "message": f"{name}: what X says"}))
    assert (error.status, error.code, error.x_code) == (400, name, 400)
    assert error.detail == f"{name}: what X says" and error.messages == (f"{name}: what X says",)


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
def test_an_error_with_an_unknown_name_keeps_that_name(endpoint):
    error = failing(endpoint, httpx.Response(403, json={"code": 453, "message": "ClientForbidden: nope"}))
    assert (error.status, error.code, error.x_code) == (403, "ClientForbidden", 453)


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
def test_an_error_without_a_name_is_named_by_its_status(endpoint):
    error = failing(endpoint, httpx.Response(503, json={"code": 503, "message": "Service unavailable, try again"}))
    assert (error.status, error.code) == (503, "HTTP503") and "try again" in str(error)


@pytest.mark.parametrize("endpoint", [e for e in CALLS if e is not Endpoint.WEBHOOK_VALIDATE], ids=str)
def test_a_crc_failure_is_named(endpoint):
    error = failing(endpoint, httpx.Response(400, json={"code": 400, "message": "CrcValidationFailed: no answer"}))
    assert error.code == "CrcValidationFailed"


# --- Problem and its subtypes ------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
@pytest.mark.parametrize("kind", PROBLEMS)
def test_every_problem_subtype_is_read(endpoint, kind):
    problem = PROBLEMS[kind]
    error = failing(endpoint, httpx.Response(400, headers=PROBLEM_JSON, json=problem))
    assert (error.status, error.code) == (400, camel(kind))
    assert (error.type, error.title, error.detail) == (problem["type"], "A title", "What went wrong, in X's words.")
    assert "What went wrong" in str(error)


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
@pytest.mark.parametrize("kind", ["resource-not-found", "invalid-request"])
def test_problems_of_x_s_servers_read_the_same(endpoint, kind):
    # In the field X's servers still say api.twitter.com in ``type`` and send plain JSON.
    field = {**PROBLEMS[kind], "type": f"https://api.twitter.com/2/problems/{kind}"}
    error = failing(endpoint, httpx.Response(400, json=field), declared=False)
    assert error.code == camel(kind)


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
@pytest.mark.parametrize(("body", "code"), [
    ({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}, "Unauthorized"),
    ({"title": "DuplicateUrlFailed", "type": "about:blank", "detail": "exists"}, "DuplicateUrlFailed"),
    ({"errors": [{"message": "SubscriptionNotFound: not subscribed"}]}, "SubscriptionNotFound"),
    ({"errors": [{"parameters": {}, "message": "bad"}], "title": "Invalid Request", "detail": "One or more",
      "type": "https://api.twitter.com/2/problems/invalid-request"}, "InvalidRequest"),
])
def test_shapes_x_s_pages_show_beside_the_spec(endpoint, body, code):
    assert failing(endpoint, httpx.Response(400, json=body), declared=False).code == code


# --- errors inside a 200 -----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
@pytest.mark.parametrize("kind", ["resource-unavailable", "internal-error", "not-authorized-for-resource"])
def test_a_200_with_errors_and_no_data_is_a_failure(endpoint, kind):
    error = failing(endpoint, httpx.Response(200, json={"errors": [PROBLEMS[kind]]}))
    assert (error.status, error.code, error.type) == (200, camel(kind), PROBLEMS[kind]["type"])
    assert "with errors and no data" in str(error) and "What went wrong" in str(error)


@pytest.mark.parametrize("endpoint", CALLS, ids=str)
def test_a_200_naming_x_s_reason_in_its_errors_keeps_the_name(endpoint):
    problem = {**PROBLEMS["invalid-request"], "detail": "ReplayConflictError: a job is already running"}
    assert failing(endpoint, httpx.Response(200, json={"errors": [problem]})).code == "ReplayConflictError"


@pytest.mark.parametrize("endpoint", LISTS, ids=str)
@pytest.mark.parametrize("answer", [
    httpx.Response(200, json={"data": [], "errors": [PROBLEMS["resource-unavailable"]]}),
    httpx.Response(200, json={"data": [{"id": WID}], "errors": [PROBLEMS["internal-error"]]}),
])
def test_a_list_that_reports_errors_is_never_taken_as_complete(endpoint, answer):
    # The reconcile would re-create what a partial or empty list leaves out, and a prune would misjudge it.
    client, _ = answering(answer)
    with client, pytest.raises(XApiError) as raised:
        CALLS[endpoint](client)
    assert raised.value.status == 200


@pytest.mark.parametrize("endpoint", LISTS, ids=str)
def test_a_list_with_no_body_is_not_an_empty_list(endpoint):
    client, _ = answering(httpx.Response(204))
    with client, pytest.raises(XApiError) as raised:
        CALLS[endpoint](client)
    assert raised.value.code == "UnexpectedResponse"


@pytest.mark.parametrize(("endpoint", "body"), [
    (Endpoint.WEBHOOKS_LIST, {"meta": {"result_count": 0}}),  # v2 leaves data out of an empty list
    (Endpoint.WEBHOOKS_LIST, {"data": [], "meta": {"result_count": 0}}),
    (Endpoint.AAA_LIST, {"data": {"application_id": "1", "webhook_id": WID, "subscriptions": []}}),
    (Endpoint.XAA_LIST, {}),
])
def test_a_list_that_is_really_empty_is_empty(endpoint, body):
    client, sent = answering(httpx.Response(200, json=body))
    with client:
        assert CALLS[endpoint](client) == []
    assert response_errors(sent[0], httpx.Response(200, json=body)) == []


def test_data_beside_errors_is_a_result_for_a_single_object():
    # X's partial-result convention: the object was made; the errors concern something around it.
    body = {"data": {"job_id": "7", "created_at": "2026-11-26T12:00:00.000Z"}, "errors": [PROBLEMS["internal-error"]]}
    client, sent = answering(httpx.Response(200, json=body))
    with client:
        assert CALLS[Endpoint.WEBHOOK_REPLAY](client) == "7"
    assert response_errors(sent[0], httpx.Response(200, json=body)) == []


# --- re-validation: a failed CRC is "not valid", in every shape ------------------------------------


@pytest.mark.parametrize("answer", [
    httpx.Response(200, json={"data": {"valid": False}}),
    httpx.Response(400, json={"code": 400, "message": "CrcValidationFailed: the webhook did not answer"}),
    httpx.Response(200, json={"errors": [{**PROBLEMS["invalid-request"], "detail": "CrcValidationFailed: no"}]}),
    httpx.Response(400, json={"errors": [{"message": "CrcValidationFailed: no"}]}),
    httpx.Response(400, json={"title": "CrcValidationFailed", "type": "about:blank", "detail": "no"}),
], ids=["valid-false", "error", "errors-in-200", "errors-message", "about-blank"])
def test_a_failed_crc_on_revalidation_reports_not_valid(answer):
    client, _ = answering(answer)
    with client:
        assert client.validate_webhook(WID) is False


def test_other_failures_of_revalidation_still_raise():
    client, _ = answering(httpx.Response(400, json={"code": 400, "message": "WebhookIdInvalid: unknown"}))
    with client, pytest.raises(XApiError) as raised:
        client.validate_webhook(WID)
    assert raised.value.code == "WebhookIdInvalid"


def test_secrets_stay_out_of_an_error_message_in_the_spec_shape():
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": 400, "message": f"Rejected: {request.headers['authorization']}"})

    with XApiClient(APP, transport=httpx.MockTransport(echo)) as client, pytest.raises(XApiError) as raised:
        client.list_webhooks()
    shown = " ".join(map(str, (raised.value, raised.value.detail, raised.value.messages)))
    assert APP.bearer_token not in shown and re.search(r"<redacted>", shown)

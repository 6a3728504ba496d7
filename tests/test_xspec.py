"""The copy of X's OpenAPI spec the tests hold the client and the fake to, and the validator over it."""

from __future__ import annotations

import json

import httpx
import pytest
from openapi_spec_validator import validate as validate_openapi_document

from spec.trim_openapi import NOT_IN_SPEC, spec_operations, trim
from xrelay.subscriptions.xapi import Endpoint
from xspec import load_spec, request_errors, response_errors


def test_the_copy_is_a_valid_openapi_document_that_trimming_again_leaves_unchanged():
    spec = load_spec()
    validate_openapi_document(spec)  # every $ref resolves, and the document is OpenAPI 3.0
    again = trim(spec)
    assert again == {**spec, "info": again["info"]}  # closed: nothing referenced is missing, nothing extra kept
    assert spec["info"]["version"] == "2.167" and len(spec["info"]["x-trimmed-from"]["sha256"]) == 64


def test_the_copy_declares_every_endpoint_the_client_calls():
    spec = load_spec()
    declared = {(method, path) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert declared == set(spec_operations())
    assert len(declared) == len(Endpoint) - len(NOT_IN_SPEC)
    for method, path in declared:  # each with the two failure shapes the spec gives every endpoint
        failure = spec["paths"][path][method]["responses"]["default"]["content"]
        assert failure["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        assert failure["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}


def request(method: str, path: str, body: object = None, **params: str) -> httpx.Request:
    headers = {"Authorization": "Bearer token", "User-Agent": "xrelay"}
    content = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        content = json.dumps(body).encode()
    return httpx.Request(method, f"https://api.x.com{path}", params=params or None, headers=headers, content=content)


LIST = request("GET", "/2/webhooks", **{"webhook_config.fields": "created_at,id,url,valid"})
PROBLEM = {"content-type": "application/problem+json"}


@pytest.mark.parametrize(("response", "complaint"), [
    (httpx.Response(200, json={"data": [{"id": "1", "url": "https://a.example/x", "valid": True, "extra": 1}]}),
     "'extra' was unexpected"),
    (httpx.Response(200, json={"data": {"id": "1"}}), "is not of type 'array'"),
    (httpx.Response(400, json={"title": "Bad", "type": "about:blank", "detail": "no"}), "'code' is a required"),
    (httpx.Response(400, json={"code": "400", "message": "x"}), "is not of type 'integer'"),
    (httpx.Response(400, headers=PROBLEM, json={"title": "Bad", "type": "about:blank", "detail": "no"}), "about:blank"),
    (httpx.Response(404, headers=PROBLEM, json={"type": "https://api.x.com/2/problems/resource-not-found",
                                                "title": "Not Found", "detail": "gone"}), "'resource_type'"),
    (httpx.Response(204), "Missing response data"),
])
def test_the_validator_refuses_answers_the_spec_does_not_declare(response, complaint):
    assert complaint in "\n".join(response_errors(LIST, response))


@pytest.mark.parametrize("response", [
    httpx.Response(200, json={"data": [{"id": "1", "url": "https://a.example/x", "valid": True,
                                        "created_at": "2026-01-01T00:00:00.000Z"}], "meta": {"result_count": 1}}),
    httpx.Response(200, json={"errors": [{"type": "https://api.x.com/2/problems/internal-error", "title": "Oops",
                                          "detail": "try later"}]}),
    httpx.Response(400, json={"code": 400, "message": "CrcValidationFailed: no"}),
    httpx.Response(400, headers=PROBLEM, json={"type": "https://api.x.com/2/problems/invalid-request",
                                               "title": "Invalid Request", "detail": "bad"}),
])
def test_the_validator_accepts_what_the_spec_declares(response):
    assert response_errors(LIST, response) == []


@pytest.mark.parametrize(("sent", "complaint"), [
    (request("POST", "/2/activity/subscriptions", {"event_type": "post.create", "filter": {"user_id": "1"},
                                                   "extra": 1}), "'extra' was unexpected"),
    (request("POST", "/2/activity/subscriptions", {"event_type": "post.bookmark", "filter": {"user_id": "1"}}),
     "is not one of"),
    (request("POST", "/2/webhooks/replay", {"webhook_id": "1", "from_date": "2026", "to_date": "202601010000"}),
     "does not match"),
    (request("GET", "/2/webhooks", **{"webhook_config.fields": "id,colour"}), "webhook_config.fields"),
    (request("GET", "/2/spaces/search"), "not found"),  # a path the client never calls
])
def test_the_validator_refuses_requests_the_spec_does_not_allow(sent, complaint):
    assert complaint in "\n".join(request_errors(sent))

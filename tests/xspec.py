"""X's own OpenAPI spec as a test oracle: every request the client sends and every answer the fake gives.

The copy in ``tests/spec/x-openapi.json`` is X API v2 2.167 trimmed to the operations the client calls
(``tests/spec/trim_openapi.py``). Validation is openapi-core's (parameters, bodies, content types,
security schemes, ``oneOf``/discriminator for ``Problem``), over a *strict* reading of the spec: an
object schema that says nothing about other properties is closed (openapi-core's
``additional_properties_default_policy="forbid"``), so a field the spec lacks is a mismatch too. The
one place the strict reading is loosened is :data:`EXTENSIONS`: each is something X's own pages show
and the spec leaves out, named with its source.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
from openapi_core import Config, OpenAPI
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH = Path(__file__).resolve().parent / "spec" / "x-openapi.json"
SERVER = "https://api.x.com"

# Fields X's pages show that the spec (2.167) does not declare, added to the strict reading.
EXTENSIONS: dict[str, dict[str, Any]] = {
    # The spec declares pagination_token and max_results for this list but no meta at all; D-XQ shows
    # meta.total_subscriptions, and the v2 convention for a next page is meta.next_token.
    "GetActivitySubscriptionsResponse": {"meta": {"type": "object", "additionalProperties": False, "properties": {
        "next_token": {"type": "string"}, "result_count": {"type": "integer"},
        "total_subscriptions": {"type": "integer"}}}},
}


def load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def with_extensions(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for name, properties in EXTENSIONS.items():
        spec["components"]["schemas"][name]["properties"].update(properties)
    return spec


@cache
def openapi() -> OpenAPI:
    config = Config(
        additional_properties_default_policy="forbid",
        # X's problems come as application/problem+json: JSON, which openapi-core only knows by the plain name.
        extra_media_type_deserializers={"application/problem+json": json.loads},
    )
    return OpenAPI.from_dict(with_extensions(load_spec()), config=config)


class _Request:
    """An httpx request as openapi-core reads one; always addressed to X's server (the fake may sit elsewhere)."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request
        self.parameters = _parameters(request)

    host_url = SERVER

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return self._request.headers.get("content-type", "application/json").lower()


def _parameters(request: httpx.Request):
    from openapi_core.datatypes import RequestParameters

    query = parse_qs(request.url.query.decode(), keep_blank_values=True)
    return RequestParameters(query=ImmutableMultiDict(query), header=Headers(dict(request.headers)),
                             cookie=ImmutableMultiDict())


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        return self._response.headers.get("content-type", "").lower()

    @property
    def headers(self) -> Headers:
        return Headers(dict(self._response.headers))

    @property
    def data(self) -> bytes | None:
        return self._response.content or None


@cache
def _operations() -> tuple[tuple[str, re.Pattern[str]], ...]:
    paths = load_spec()["paths"]
    return tuple((method.upper(), re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "$"))
                 for path, item in paths.items() for method in item)


def declares(method: str, path: str) -> bool:
    """Whether the spec has an operation for ``method`` ``path`` (whatever the fake routes it through)."""
    return any(method.upper() == op_method and pattern.match(path) for op_method, pattern in _operations())


def request_errors(request: httpx.Request) -> list[str]:
    """Why ``request`` is not one the spec allows (empty if it is)."""
    return _errors(lambda: openapi().validate_request(_Request(request)))


def response_errors(request: httpx.Request, response: httpx.Response) -> list[str]:
    """Why ``response`` is not an answer the spec declares for ``request``'s operation (empty if it is)."""
    response.read()
    return _errors(lambda: openapi().validate_response(_Request(request), _Response(response)))


def _errors(validate) -> list[str]:
    try:
        with warnings.catch_warnings():  # openapi-core cannot check an OAuth 2.0 user token, and says so each time
            warnings.filterwarnings("ignore", "Unsupported scheme type")
            validate()
    except Exception as exc:  # openapi-core raises one error, often with the schema errors as its cause
        causes = [str(exc)]
        inner = getattr(exc, "schema_errors", None) or getattr(exc.__cause__, "schema_errors", None) or ()
        causes += [f"  {'/'.join(map(str, error.absolute_path)) or '<body>'}: {error.message}" for error in inner]
        if exc.__cause__ is not None and not inner:
            causes.append(f"  {exc.__cause__}")
        return causes
    return []

"""Lambda function URL requests (the Endpoint Parameter's FunctionUrl): one function, two routes.

A function URL hands the function every request whatever its method and path. The event is payload
format 2.0, as the HTTP API's, with sentinels where the API would have routed (``routeKey`` and
``requestContext.stage`` are ``$default``), header names in lower case, the path in ``rawPath``
and ``requestContext.http``, and a body that is not text base64-encoded (``apigw.raw_body``
decodes it). The HTTP API routed ``GET /webhook`` to the CRC and ``POST /webhook`` to the intake,
and answered anything else itself: :func:`route` does the same here. Imported on the CRC's path,
so it imports nothing heavy.
"""

from __future__ import annotations

from typing import Any, Literal

from xrelay.receiving.apigw import Response

WEBHOOK_PATH = "/webhook"  # the path of the WebhookUrl output, as on the HTTP API
CRC: Literal["crc"] = "crc"
DELIVERIES: Literal["deliveries"] = "deliveries"
# What the HTTP API answers for a route it does not have (same body), and a method it does not route.
NOT_FOUND = Response(404, {"message": "Not Found"})
METHOD_NOT_ALLOWED = Response(405, {"message": "Method Not Allowed"}, {"allow": "GET, POST"})


def method_and_path(event: dict[str, Any]) -> tuple[str, str]:
    http = (event.get("requestContext") or {}).get("http") or {}
    return str(http.get("method") or "").upper(), str(event.get("rawPath") or http.get("path") or "")


def route(event: dict[str, Any]) -> Literal["crc", "deliveries"] | Response:
    """``crc`` for GET /webhook, ``deliveries`` for POST /webhook; the answer itself for anything else."""
    method, path = method_and_path(event)
    if path != WEBHOOK_PATH:
        return NOT_FOUND
    if method == "GET":
        return CRC
    if method == "POST":
        return DELIVERIES
    return METHOD_NOT_ALLOWED

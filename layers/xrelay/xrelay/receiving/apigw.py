"""API Gateway HTTP API (payload format 2.0) events in, Lambda proxy responses out."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def to_proxy(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json", **self.headers},
            "body": json.dumps(self.body, separators=(",", ":")),
        }


def header(event: dict[str, Any], name: str) -> str | None:
    """A request header, matched case-insensitively (API Gateway flavours differ in case)."""
    headers = event.get("headers") or {}
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def query(event: dict[str, Any], name: str) -> str | None:
    params = event.get("queryStringParameters") or {}
    return params.get(name)


def raw_body(event: dict[str, Any]) -> bytes:
    """The exact bytes X sent: the signature covers them, so never re-serialise parsed JSON."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")

"""boto3 clients, created once per process with timeouts that fit X's delivery deadline.

boto3 reads the standard ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``) itself, which
is how the same code talks to moto locally and to AWS when deployed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# X waits a few seconds for an answer: fail fast and let X retry rather than hang past its deadline.
# As many connections as intake's write threads (intake.WRITE_THREADS): one delivery's events are
# written concurrently.
_TIMEOUTS = {"connect_timeout": 2, "read_timeout": 4, "retries": {"mode": "standard", "total_max_attempts": 3},
             "max_pool_connections": 16}


@cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(**_TIMEOUTS))


def error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None

"""The one place where the CLI turns an expected failure into one line and an exit code.

Exit codes (README, "Commands"):

* 0: done; 1: done, and the result is a failure (``status`` needs a person, a function reported
  ``"ok": false``, a delivery was refused, some items failed);
* 2: the command line or an input file is wrong, e.g. an unknown stack name (nothing was changed);
* 3: the target cannot be reached (no local stack running, no network, credentials missing or refused);
* 130: interrupted.

Anything not recognised here is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

USAGE, UNREACHABLE, INTERRUPTED = 2, 3, 130
START_LOCAL = "start it with `make run` (or `xrelay local`)"


@dataclass(frozen=True)
class Failure:
    message: str
    code: int


class CliError(Exception):
    """Raised by commands for an expected failure: ``message`` is printed as it is."""

    def __init__(self, message: str, code: int = USAGE):
        super().__init__(message)
        self.code = code


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port (0: any free one), so a mistyped one is a usage line, not an OverflowError."""
    return _whole(text, 0, 65535, "not a TCP port (0-65535)")


def at_least_one(text: str) -> int:
    """An argparse type: a count that must be a whole number of at least 1."""
    return _whole(text, 1, None, "must be a whole number of at least 1")


def seconds(text: str) -> float:
    """An argparse type: a duration in seconds, more than 0 (time.sleep(-1) is a ValueError traceback)."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a number of seconds more than 0: {text!r}")
    return value


def _whole(text: str, low: int, high: int | None, problem: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"{problem}: {text!r}")
    return value


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def explain(exc: BaseException, stack_name: str = "xrelay") -> Failure | None:
    """One line and an exit code for ``exc`` (or for the failure it wraps); None for a bug."""
    for cause in _chain(exc):
        failure = _explain_one(cause, stack_name)
        if failure:
            return failure
    return None


def _explain_one(exc: BaseException, stack_name: str) -> Failure | None:  # noqa: C901 - one table
    from botocore import exceptions as bx

    from xrelay.tools.cli.target import is_loopback

    if isinstance(exc, CliError):
        return Failure(str(exc), exc.code)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", INTERRUPTED)
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        url = exc.kwargs.get("endpoint_url", "?")
        if is_loopback(url):
            return Failure(f"cannot reach the local emulator at {_origin(url)}: is the local stack running? "
                           f"{START_LOCAL}, or choose its port with AWS_ENDPOINT_URL", UNREACHABLE)
        return Failure(f"cannot reach AWS at {_origin(url)}: check the network and AWS_ENDPOINT_URL/AWS_REGION",
                       UNREACHABLE)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return Failure("no usable AWS credentials: configure a profile (aws configure / aws sso login), "
                       "or use --local for the local emulator", UNREACHABLE)
    if isinstance(exc, bx.NoRegionError):
        return Failure("no AWS region: set AWS_REGION (or a region in your profile)", UNREACHABLE)
    if isinstance(exc, bx.TokenRetrievalError | bx.SSOError | bx.ProfileNotFound):
        return Failure(f"AWS credentials: {exc} (aws sso login, or check AWS_PROFILE)", UNREACHABLE)
    if isinstance(exc, bx.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if "does not exist" in message and code == "ValidationError":  # CloudFormation: no such stack
            return Failure(f"no stack {stack_name!r} there: choose it with --stack-name (or XRELAY_STACK), "
                           f"deploy it, or (local stack) {START_LOCAL}", USAGE)
        if code in ("ExpiredToken", "ExpiredTokenException", "UnrecognizedClientException",
                    "InvalidClientTokenId", "AccessDenied", "AccessDeniedException", "SignatureDoesNotMatch"):
            return Failure(f"AWS refused the credentials ({code}: {message}): refresh them "
                           "(aws sso login) or choose another AWS_PROFILE", UNREACHABLE)
        if code in ("ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue",
                    "QueueDoesNotExist"):
            return Failure(f"a resource of stack {stack_name!r} is missing ({code}: {message}): "
                           "is the stack complete?", UNREACHABLE)
        return None
    import httpx

    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        url = str(exc.request.url) if _has_request(exc) else "the URL"
        return Failure(f"cannot connect to {url}: is the local stack running? {START_LOCAL}, "
                       "or give the webhook's URL with --url", UNREACHABLE)
    if isinstance(exc, httpx.TimeoutException):
        return Failure(f"no answer in time from {exc.request.url if _has_request(exc) else 'the URL'}",
                       UNREACHABLE)
    if isinstance(exc, json.JSONDecodeError):
        return Failure(f"not JSON: {exc}", USAGE)
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
        return Failure(f"cannot read {exc.filename}: {exc.strerror}", USAGE)
    if isinstance(exc, LookupError) and not isinstance(exc, KeyError):
        return Failure(str(exc), USAGE)
    return None


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def _has_request(exc: Exception) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when there is none
        return True
    except RuntimeError:
        return False

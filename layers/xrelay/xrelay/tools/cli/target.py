"""Which AWS a CLI command talks to: the local emulator or a deployed stack's account, said out loud.

Chosen once per command, in this order: ``--local``; ``AWS_ENDPOINT_URL`` (loopback hosts are the
emulator); AWS credentials configured in any standard place (variables, a profile, ``~/.aws``
files, SSO, container/web-identity roles) mean AWS; only with none of these is it the local
emulator. Someone with an AWS profile never lands on the emulator without asking for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LOCAL_AWS = "http://127.0.0.1:5000"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Any of these set means "I have AWS credentials" to boto3's chain.
CREDENTIAL_VARIABLES = ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_WEB_IDENTITY_TOKEN_FILE",
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
CREDENTIAL_FILES = (("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"), ("AWS_CONFIG_FILE", "~/.aws/config"))


@dataclass(frozen=True)
class Target:
    local: bool
    endpoint: str | None  # None: AWS's own endpoints
    why: str  # what chose it, for the announcement

    def describe(self, stack_name: str, account: str | None = None, region: str | None = None) -> str:
        if self.local:
            return f"stack {stack_name!r} on the local emulator at {self.endpoint} ({self.why})"
        where = f"AWS account {account or '(unknown)'}, region {region or '(unset)'}"
        via = f" via {self.endpoint}" if self.endpoint else ""
        return f"stack {stack_name!r} in {where}{via} ({self.why})"


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in LOOPBACK


def credentials_source(env: Mapping[str, str] | None = None) -> str | None:
    """Where boto3 would find AWS credentials (a variable or a file), or None when nowhere obvious."""
    env = os.environ if env is None else env
    for name in CREDENTIAL_VARIABLES:
        if env.get(name):
            return f"{name} is set"
    for variable, default in CREDENTIAL_FILES:
        path = Path(env.get(variable) or default).expanduser()
        try:
            if path.is_file() and path.read_text().strip():
                return f"{path} exists"
        except OSError:
            continue
    return None


def choose(force_local: bool = False, env: Mapping[str, str] | None = None) -> Target:
    env = os.environ if env is None else env
    endpoint = env.get("AWS_ENDPOINT_URL")
    if force_local:
        return Target(True, endpoint if endpoint and is_loopback(endpoint) else LOCAL_AWS, "--local")
    if endpoint:
        return Target(is_loopback(endpoint), endpoint, "AWS_ENDPOINT_URL")
    source = credentials_source(env)
    if source:
        return Target(False, None, f"AWS credentials: {source}; --local for the emulator")
    return Target(True, LOCAL_AWS, "no AWS_ENDPOINT_URL and no AWS credentials configured")

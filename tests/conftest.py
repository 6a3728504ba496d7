"""Shared fixtures: a fresh local stack per test, built from template.yaml inside moto.

``stack`` is the same LocalStack that ``xrelay local`` runs, with AWS mocked in-process
(``mock_aws``) instead of a moto server: the functions, their environment, the tables and the
queues are the template's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_EC2_METADATA_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="xrelay",
    POWERTOOLS_DEV="false",
    # moto's in-process mock serves DynamoDB Streams only on the streams endpoint (server mode
    # needs no such hint); real AWS never sees this variable.
    AWS_ENDPOINT_URL_DYNAMODB_STREAMS="https://streams.dynamodb.us-east-1.amazonaws.com",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
for _name in ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_BEARER_TOKEN", "X_CLIENT_ID", "X_CLIENT_SECRET",
              "X_PREVIOUS_CONSUMER_SECRET", "X_PREVIOUS_CLIENT_SECRET", "CRC_SIGNING_SECRET",
              "X_API_BASE_URL"):  # the local stack seeds the app secret and X's URL from these
    os.environ.pop(_name, None)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def all_fixtures() -> list[str]:
    return sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json"))


@pytest.fixture(autouse=True)
def x_spec_conformance():
    """Fail any test in which the X client sent, or the fake X answered, something X's OpenAPI spec does not declare."""
    from fakex import SPEC_VIOLATIONS

    SPEC_VIOLATIONS.clear()
    yield
    found, SPEC_VIOLATIONS[:] = list(SPEC_VIOLATIONS), []
    if found:
        pytest.fail("exchanges with the fake X that X's spec does not declare:\n" + "\n".join(map(str, found)),
                    pytrace=False)


@pytest.fixture
def stack(request):
    from moto import mock_aws

    from xrelay.aws import client
    from xrelay.tools.local.local import LocalStack

    with mock_aws():
        client.cache_clear()
        local = LocalStack(ROOT, "xrelay")
        local.provision({**STACK_PARAMETERS, **getattr(request, "param", {})})  # see EACH_USER_INDEX
        yield local
    client.cache_clear()


@pytest.fixture
def purging_stack():
    """A local stack deployed with PurgeOnRevoke=true (and UserIndex's default, false: it forces the index on)."""
    from moto import mock_aws

    from xrelay.aws import client
    from xrelay.tools.local.local import LocalStack

    with mock_aws():
        client.cache_clear()
        local = LocalStack(ROOT, "xrelay")
        local.provision({**STACK_PARAMETERS, "PurgeOnRevoke": "true"})
        yield local
    client.cache_clear()


@pytest.fixture
def fake():
    """The fake X, with room for 5 webhooks (a module may define its own: a clock, other limits)."""
    from fakex import FakeX

    return FakeX(webhook_limit=5)


@pytest.fixture
def x(fake):
    """The X client talking to ``fake``."""
    with fake.client() as client:
        yield client


# Run any test module against another configuration of the template, e.g. the ByUser index on:
# XRELAY_TEST_PARAMETERS=UserIndex=true .venv/bin/pytest tests/test_compliance.py (issue 16).
STACK_PARAMETERS = dict(pair.split("=", 1) for pair in os.environ.get("XRELAY_TEST_PARAMETERS", "").split(",") if pair)
# A test that reads by user runs once with the ByUser index and once without (issue 16).
EACH_USER_INDEX = pytest.mark.parametrize("stack", [{"UserIndex": "true"}, {"UserIndex": "false"}], indirect=True,
                                          ids=["UserIndex-true", "UserIndex-false"])


def users_indexed(stack) -> bool:
    """Whether the local stack indexes events by user (UserIndex, or PurgeOnRevoke)."""
    return stack.environment("IntakeFunction")["INDEX_USERS"] == "true"


@pytest.fixture
def faults(monkeypatch):
    """Make chosen AWS calls fail: ``faults.inject(service, operation, action, times=, after=, when=)``."""
    from botocore.client import BaseClient

    from helpers import Faults

    injector = Faults(BaseClient._make_api_call)
    monkeypatch.setattr(BaseClient, "_make_api_call",
                        lambda aws, operation, params: injector.call(aws, operation, params))
    return injector


@pytest.fixture
def fake_x(monkeypatch):
    """A strict fake X served on a local port, found by the functions through X_API_BASE_URL."""
    from fakex import FakeX
    from helpers import serve

    fake = FakeX()
    server = serve(fake)
    monkeypatch.setenv("X_API_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("X_CONSUMER_KEY", fake.consumer_key)
    monkeypatch.setenv("X_CONSUMER_SECRET", fake.consumer_secret)
    monkeypatch.setenv("X_BEARER_TOKEN", fake.bearer_token)
    yield fake
    server.shutdown()


# The declared state most tests start from: the webhook, Alice's AAA activity, Bob's posts (XAA).
WEBHOOK_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
ALICE, BOB = "4337869213", "2244994945"
DESIRED = f"""webhook:
  url: {WEBHOOK_URL}
account_activity:
  - user_id: "{ALICE}"
activity:
  - event_type: post.create
    filter: {{user_id: "{BOB}"}}
    tag: posts
"""


def apply_desired(directory: Path, text: str = DESIRED) -> Path:
    """Store ``text`` as the stack's desired state the way an operator does (`xrelay subscriptions apply`)."""
    from xrelay.tools.cli.cli import main

    path = directory / "x.yaml"
    path.write_text(text)
    assert main(["subscriptions", "apply", str(path)]) == 0
    return path


@pytest.fixture
def wired(fake_x, stack, tmp_path):
    """The stack with the fake's app credentials seeded (as `xrelay local` seeds them) and DESIRED applied."""
    apply_desired(tmp_path)
    return stack

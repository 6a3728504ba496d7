"""events/<Function>.json: one sample trigger per function, each accepted by its real handler.

These are what `xrelay invoke NAME` uses by default, so they must stay valid as the code moves.
"""

import json

import pytest

from conftest import ROOT
from helpers import published_keys, stored_keys
from xrelay.receiving.signature import sign
from xrelay.tools.cli import template as tpl
from xrelay.tools.local.local import DEV_CONSUMER_SECRET

FUNCTIONS = sorted(tpl.functions(tpl.load(ROOT / "template.yaml")))


def sample(name: str) -> dict:
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_has_a_sample_event(function):
    assert (ROOT / "events" / f"{function}.json").is_file(), f"add events/{function}.json"


def test_crc_sample_is_answered(stack):
    result = stack.invoke("CrcFunction", sample("CrcFunction"))
    assert result["statusCode"] == 200
    token = sample("CrcFunction")["queryStringParameters"]["crc_token"].encode()
    assert json.loads(result["body"]) == {"response_token": sign(DEV_CONSUMER_SECRET, token)}


def test_intake_sample_is_signed_for_the_local_default_secret_and_stored(stack):
    result = stack.invoke("IntakeFunction", sample("IntakeFunction"))
    assert result["statusCode"] == 200 and json.loads(result["body"])["new"] == 1
    assert stored_keys(stack) == ["xaa:post.create:user_id=1111111111111111111:2080761390344937796"]


def test_publisher_sample_puts_its_record_on_the_queue(stack):
    assert stack.invoke("PublisherFunction", sample("PublisherFunction")) == {"batchItemFailures": []}
    assert published_keys(stack) == ["xaa:post.create:user_id=1111111111111111111:2080761390344937796"]


def test_local_endpoint_wins_over_inherited_per_service_endpoints(monkeypatch):
    """A stray AWS_ENDPOINT_URL_<SERVICE> would send that service's calls to real AWS."""
    import os

    from xrelay.aws import client
    from xrelay.tools.local.local import use_local_aws

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", "https://streams.dynamodb.us-east-1.amazonaws.com")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    use_local_aws("http://127.0.0.1:5999")
    assert "AWS_ENDPOINT_URL_DYNAMODB_STREAMS" not in os.environ
    assert client("dynamodbstreams").meta.endpoint_url == "http://127.0.0.1:5999"
    client.cache_clear()

"""WebhookFunction (Endpoint=FunctionUrl) through its real handler, with function URL events, against moto.

One function answers X's CRC (GET /webhook) and its deliveries (POST /webhook) behind a Lambda
function URL: the events are shaped as the function URL sends them (events/WebhookFunction*.json:
routeKey and stage "$default", lower-case headers, accountId "anonymous").
"""

from __future__ import annotations

import base64
import copy
import json

import pytest

from conftest import ROOT, STACK_PARAMETERS, fixture_bytes
from helpers import emf, published_keys, stored_keys, values
from xrelay.receiving.signature import SIGNATURE_HEADER, sign
from xrelay.tools.local.local import DEV_CONSUMER_SECRET

FUNCTION = "WebhookFunction"


def sample(name: str) -> dict:
    return json.loads((ROOT / "events" / f"{name}.json").read_text())


@pytest.fixture
def url_stack():
    from moto import mock_aws

    from xrelay.aws import client
    from xrelay.tools.local.local import LocalStack

    with mock_aws():
        client.cache_clear()
        local = LocalStack(ROOT, "xrelay")
        local.provision({**STACK_PARAMETERS, "Endpoint": "FunctionUrl"})
        yield local
    client.cache_clear()


def request(stack, method: str, *, query: str = "", body: bytes | None = None, secret: str | None = DEV_CONSUMER_SECRET,
            path: str = "/webhook", base64_body: bool = False) -> tuple[int, dict]:
    """A function URL request made from the sample events' shape."""
    event = copy.deepcopy(sample("WebhookFunction" if method == "POST" else "WebhookFunction-crc"))
    event["requestContext"]["http"]["method"] = method
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = query
    event.pop("queryStringParameters", None)
    if query:
        event["queryStringParameters"] = dict(pair.split("=", 1) for pair in query.split("&"))
    if body is not None:
        event["headers"].pop(SIGNATURE_HEADER, None)
        if secret is not None:
            event["headers"][SIGNATURE_HEADER] = sign(secret, body)
        event["body"] = base64.b64encode(body).decode() if base64_body else body.decode()
        event["isBase64Encoded"] = base64_body
    result = stack.invoke(FUNCTION, event)
    return result["statusCode"], json.loads(result["body"])


def test_the_samples_are_answered_as_crc_and_intake_answer_theirs(url_stack):
    crc = url_stack.invoke(FUNCTION, sample("WebhookFunction-crc"))
    token = sample("WebhookFunction-crc")["queryStringParameters"]["crc_token"].encode()
    assert crc["statusCode"] == 200
    assert json.loads(crc["body"]) == {"response_token": sign(DEV_CONSUMER_SECRET, token)}
    delivered = url_stack.invoke(FUNCTION, sample("WebhookFunction"))
    assert delivered["statusCode"] == 200 and json.loads(delivered["body"])["new"] == 1
    assert stored_keys(url_stack) == ["xaa:post.create:user_id=1111111111111111111:2080761390344937796"]
    url_stack.drain()
    assert published_keys(url_stack) == stored_keys(url_stack)


def test_the_crc_refuses_what_it_would_not_sign(url_stack):
    assert request(url_stack, "GET", query="")[0] == 400
    status, body = request(url_stack, "GET", query="crc_token=%7B%22a%22%3A1%7D")
    assert status == 400 and "response_token" not in body


def test_a_signed_delivery_is_stored_once_and_a_copy_is_a_duplicate(url_stack):
    body = fixture_bytes("xaa/01_post.create.json")
    assert request(url_stack, "POST", body=body) == (200, {"status": "accepted", "events": 1, "new": 1,
                                                           "duplicates": 0})
    assert request(url_stack, "POST", body=body)[1]["duplicates"] == 1  # X redelivers: nothing new
    assert stored_keys(url_stack) == ["xaa:post.create:user_id=1111111111111111111:2080761390344937796"]


@pytest.mark.parametrize("secret,status", [(None, 401), ("not-the-secret", 403)])
def test_unsigned_or_forged_deliveries_are_refused_and_store_nothing(url_stack, secret, status):
    got, body = request(url_stack, "POST", body=fixture_bytes("xaa/01_post.create.json"), secret=secret)
    assert got == status and "new" not in body
    assert stored_keys(url_stack) == []


def test_a_base64_body_is_verified_on_its_decoded_bytes(url_stack):
    """A function URL base64-encodes a body it does not take for text; X signs the bytes it sent."""
    status, body = request(url_stack, "POST", body=fixture_bytes("xaa/01_post.create.json"), base64_body=True)
    assert status == 200 and body["new"] == 1


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/", 404), ("POST", "/other", 404), ("GET", "/webhook/", 404),  # the API had only /webhook
    ("PUT", "/webhook", 405), ("DELETE", "/webhook", 405),
])
def test_anything_but_get_or_post_webhook_is_answered_without_running_either(url_stack, method, path, status):
    got, body = request(url_stack, method, path=path, query="crc_token=foo", body=b"{}")
    assert got == status and "response_token" not in body and "new" not in body
    assert stored_keys(url_stack) == []


def test_each_path_counts_under_its_own_service_as_the_alarms_read_it(url_stack, capsys):
    request(url_stack, "GET", query="crc_token=abc")
    request(url_stack, "POST", body=fixture_bytes("xaa/01_post.create.json"))
    request(url_stack, "POST", body=fixture_bytes("xaa/01_post.create.json"), secret="wrong")
    blobs = emf(capsys)
    assert values(blobs, "CrcAnswered", service="crc", Stage="dev") == [1.0]
    assert values(blobs, "EventsStored", service="intake", Stage="dev") == [1.0]
    assert values(blobs, "SignaturesRefused", service="intake", Stage="dev") == [1.0]
    assert values(blobs, "CrcAnswered", service="intake") == [] and values(blobs, "EventsStored", service="crc") == []


def test_the_crc_path_imports_neither_boto3_nor_pydantic_and_the_first_post_imports_the_intake():
    """X allows the CRC about 3 s, cold start included: GET must stay as light as CrcFunction's."""
    import subprocess
    import sys

    code = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("webhook_app", "functions/webhook/app.py")
app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
from xrelay.credentials import SigningSecrets
app.load_signing_secrets = lambda *_: SigningSecrets(consumer="c")
class Context:
    function_name = "WebhookFunction"; memory_limit_in_mb = 512; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction"
    def get_remaining_time_in_millis(self): return 8000
heavy = ("pydantic", "boto3", "httpx", "xrelay.subscriptions.xapi", "xrelay.events.models", "xrelay.receiving.intake", "xrelay.storage.store")
event = json.load(open("events/WebhookFunction-crc.json"))
assert app.handler(event, Context())["statusCode"] == 200
print(sorted(m for m in heavy if m in sys.modules))
app._deliveries_handler()
print(sorted(m for m in ("xrelay.receiving.intake", "xrelay.storage.store") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "", "CRC_SIGNING_SECRET": "auto", "POWERTOOLS_METRICS_NAMESPACE": "xrelay",
                               "AWS_DEFAULT_REGION": "us-east-1"})
    assert done.returncode == 0, done.stderr
    after_get, after_post = done.stdout.strip().splitlines()[-2:]
    assert after_get == "[]"
    assert after_post == "['xrelay.receiving.intake', 'xrelay.storage.store']"


def test_a_stack_with_the_function_url_counts_as_deployed_for_status(monkeypatch):
    from xrelay.tools.operate.status import is_deployed

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert is_deployed({"WebhookFunction": "xrelay-WebhookFunction-AbC", "StateTable": "xrelay-StateTable-1"})
    assert not is_deployed({"StateTable": "xrelay-StateTable-1"})  # xrelay local's stack: tables and queues only


def test_the_function_url_function_follows_what_the_template_gives_the_crc_and_intake():
    """WebhookFunction stands for CrcFunction + IntakeFunction: a change to theirs (environment, layers,
    logging, memory, reserved concurrency) must reach it, or Endpoint=FunctionUrl silently drifts."""
    from xrelay.tools.cli import template as tpl

    resources = tpl.load(ROOT / "template.yaml")["Resources"]
    crc, intake, webhook = (resources[name]["Properties"] for name in ("CrcFunction", "IntakeFunction", FUNCTION))
    environment = {**crc["Environment"]["Variables"], **intake["Environment"]["Variables"]}
    environment.pop("POWERTOOLS_SERVICE_NAME")  # each path names its own service (crc, intake)
    assert webhook["Environment"]["Variables"] == environment
    own = {"Description", "CodeUri", "Environment", "LoggingConfig", "Role", "Events", "FunctionUrlConfig"}
    assert {key: webhook.get(key) for key in (set(intake) | set(webhook)) - own} == \
        {key: intake.get(key) for key in (set(intake) | set(webhook)) - own}
    assert {**webhook["LoggingConfig"], "LogGroup": None} == {**intake["LoggingConfig"], "LogGroup": None}
    assert webhook["LoggingConfig"]["LogGroup"] == {"Ref": "WebhookLogGroup"}
    assert webhook["FunctionUrlConfig"] == {"AuthType": "NONE"}  # X's signature is the authentication

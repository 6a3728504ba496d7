"""X's two signing schemes end to end: `xrelay local` as a real process, given both secrets and their rotation.

`tests/test_e2e_local.py` runs a stack given the consumer secret alone (an OAuth 1.0a-only app);
here the app secret also holds a client secret, so the CRC answers with it, as X expects of an app
with OAuth 2.0. README "X's two signing schemes".
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from conftest import FIXTURES, ROOT, fixture_bytes
from helpers import child_env
from test_e2e_local import SECRET, Local, running_local
from xrelay.receiving.signature import LEGACY_HEADER, OAUTH2_HEADER, sign

pytestmark = pytest.mark.e2e

CLIENT = "e2e-client-secret"
OLD_CLIENT = "e2e-previous-client-secret"
OLD_CONSUMER = "e2e-previous-consumer-secret"
BOTH = {"X_CLIENT_SECRET": CLIENT, "X_PREVIOUS_CLIENT_SECRET": OLD_CLIENT, "X_PREVIOUS_CONSUMER_SECRET": OLD_CONSUMER}
# One fresh delivery per test that expects a 200 (the stack is shared): (fixture, its event's key).
FRESH = {
    "oauth2": ("xaa/01_post.create.json", "xaa:post.create:user_id=1111111111111111111:2080761390344937796"),
    "legacy": ("xaa/07_like.create.json",
               "xaa:like.create:direction=outbound,user_id=1111111111111111111:-3402274206530057851"),
    "both": ("aaa/favorite.json", "aaa:2244994945:favorite:a7ba59eab0bfcba386f7acedac279542"),
    "old-client": ("aaa/tweet_create_two.json", "aaa:2244994945:tweet:1924465506158878990"),
    "old-consumer": ("aaa/follow.json", None),
}
REFUSED = ("aaa/block.json", "aaa:2244994945:block:2244994945>3001969357@1517588749178")


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    with running_local(tmp_path_factory.mktemp("xrelay-local-schemes"), **BOTH) as running:
        yield running


def deliver(local: Local, name: str, *, oauth2: str | None = None, legacy: str | None = None):
    body = fixture_bytes(name)
    headers = {"content-type": "application/json"}
    if oauth2 is not None:
        headers[OAUTH2_HEADER] = sign(oauth2, body)
    if legacy is not None:
        headers[LEGACY_HEADER] = sign(legacy, body)
    response = httpx.post(local.url, content=body, headers=headers, timeout=10)
    return response.status_code, response.json()


def test_the_crc_answers_with_the_client_secret_and_the_output_says_so(local):
    token = "e2e-schemes-token"
    response = httpx.get(local.url, params={"crc_token": token}, timeout=5)
    assert response.json() == {"response_token": sign(CLIENT, token.encode())}
    assert "the CRC answers with its client_secret (auto)" in local.log.read_text()


@pytest.mark.parametrize("case,signed", [
    ("oauth2", {"oauth2": CLIENT}),
    ("legacy", {"legacy": SECRET}),
    ("both", {"oauth2": CLIENT, "legacy": SECRET}),
    ("old-client", {"oauth2": OLD_CLIENT}),  # rotation of the client secret
])
def test_each_scheme_and_each_rotation_is_accepted_and_stored(local, case, signed):
    name, key = FRESH[case]
    code, answer = deliver(local, name, **signed)
    assert code == 200 and answer["new"] >= 1, answer
    assert local.stored(key)


def test_the_previous_consumer_secret_is_accepted_during_its_rotation(local):
    code, answer = deliver(local, FRESH["old-consumer"][0], legacy=OLD_CONSUMER)
    assert code == 200 and answer["status"] == "accepted"


@pytest.mark.parametrize("signed,status", [
    ({"oauth2": "wrong"}, 403),
    ({"legacy": "wrong"}, 403),
    ({"oauth2": "wrong", "legacy": SECRET}, 403),  # no downgrade to a right legacy signature
    ({"oauth2": SECRET}, 403),  # the consumer secret in the OAuth 2.0 header
])
def test_a_wrong_signature_in_either_scheme_is_refused_and_not_stored(local, signed, status):
    code, answer = deliver(local, REFUSED[0], **signed)
    assert code == status and "does not match" in answer["error"]
    assert not local.stored(REFUSED[1])


@pytest.mark.parametrize("scheme,header", [("oauth2", OAUTH2_HEADER), ("legacy", LEGACY_HEADER),
                                           ("both", OAUTH2_HEADER)])
def test_xrelay_send_signs_in_the_scheme_asked_for(local, scheme, header):
    sent = subprocess.run([sys.executable, "-m", "xrelay.tools.cli.cli", "send", str(FIXTURES / "aaa/favorite.json"),
                           "--url", local.url, "--scheme", scheme], cwd=ROOT, env=child_env(X_CONSUMER_SECRET=SECRET, **BOTH),
                          capture_output=True, text=True, timeout=30)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    status, _, answer = sent.stdout.strip().partition(" ")
    assert status == "200" and json.loads(answer)["status"] == "accepted"


def test_xrelay_send_refuses_oauth2_without_a_client_secret(local):
    sent = subprocess.run([sys.executable, "-m", "xrelay.tools.cli.cli", "send", str(FIXTURES / "aaa/favorite.json"),
                           "--url", local.url, "--scheme", "oauth2"], cwd=ROOT, env=child_env(X_CONSUMER_SECRET=SECRET),
                          capture_output=True, text=True, timeout=30)
    assert sent.returncode == 2 and "X_CLIENT_SECRET" in sent.stderr


def test_the_forced_parameter_makes_the_crc_answer_with_the_consumer_secret(tmp_path):
    """CRC_SIGNING_SECRET stands for the CrcSigningSecret Parameter in a local run."""
    with running_local(tmp_path, CRC_SIGNING_SECRET="consumer_secret", **BOTH) as forced:
        response = httpx.get(forced.url, params={"crc_token": "forced"}, timeout=5)
        assert response.json() == {"response_token": sign(SECRET, b"forced")}
        assert "the CRC answers with its consumer_secret (consumer_secret)" in forced.log.read_text()
        # deliveries are still checked in both schemes
        assert deliver(forced, FRESH["oauth2"][0], oauth2=CLIENT)[0] == 200

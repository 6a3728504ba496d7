"""What each shape of the app secret lets through the real CRC and intake handlers (moto), and the
constant-time comparison of every MAC in the project (issue 19: the guards mutation testing found thin).

Each test names what it keeps out: a forged delivery (a secret the app secret does not really hold,
an empty key anyone can sign with), a delivery counted under the wrong secret, a CRC answered with
the wrong one.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from conftest import ROOT, fixture_bytes
from helpers import crc, post, state_items, stored_keys
from xrelay.aws import client
from xrelay.receiving.signature import LEGACY_HEADER, OAUTH2_HEADER, sign

CLIENT, OLD_CLIENT = "client-secret-current", "client-secret-previous"
CONSUMER, OLD_CONSUMER = "consumer-secret-current", "consumer-secret-previous"
BODY = fixture_bytes("xaa/01_post.create.json")
OTHER_BODY = fixture_bytes("aaa/favorite.json")


def set_app_secret(stack, value: dict | str) -> None:
    """Replace the stack's X app secret (a dict as JSON, or a bare string), seen at once."""
    from aws_lambda_powertools.utilities.parameters import clear_caches

    text = value if isinstance(value, str) else json.dumps({"consumer_key": "ck", "bearer_token": "bt", **value})
    client("secretsmanager").put_secret_value(SecretId=stack.environment("CrcFunction")["X_APP_SECRET_ARN"],
                                              SecretString=text)
    clear_caches()


def deliver(stack, *, oauth2: str | None = None, legacy: str | None = None, body: bytes = BODY) -> int:
    headers = {}
    if oauth2 is not None:
        headers[OAUTH2_HEADER] = sign(oauth2, body)
    if legacy is not None:
        headers[LEGACY_HEADER] = sign(legacy, body)
    return post(stack, body, secret=None, headers=headers)[0]


def signed_with(stack) -> list[str]:
    """The app secret's fields that verified deliveries, as intake records them for `xrelay status`."""
    return sorted(item["sk"]["S"] for item in state_items(stack, "signing"))


# ------------------------------------------------------------------------------- no previous secret


def test_without_a_rotation_only_the_current_secrets_verify_and_are_recorded_as_current(stack):
    set_app_secret(stack, {"consumer_secret": CONSUMER, "client_secret": CLIENT})
    assert deliver(stack, legacy=OLD_CONSUMER) == 403
    assert deliver(stack, oauth2=OLD_CLIENT) == 403
    assert stored_keys(stack) == []
    assert deliver(stack, legacy=CONSUMER) == 200
    assert deliver(stack, oauth2=CLIENT, body=OTHER_BODY) == 200
    assert signed_with(stack) == ["client_secret", "consumer_secret"]


# ------------------------------------------------------------------------- empty or absent values


@pytest.mark.parametrize("field", ["previous_consumer_secret", "previous_client_secret"])
def test_an_empty_previous_secret_is_no_key_anyone_can_sign_with(stack, field):
    """HMAC accepts an empty key: if "" counted as a previous secret, anyone could sign with it."""
    set_app_secret(stack, {"consumer_secret": CONSUMER, "client_secret": CLIENT, field: ""})
    assert deliver(stack, legacy="") == 403
    assert deliver(stack, oauth2="") == 403
    assert stored_keys(stack) == [] and signed_with(stack) == []


def test_an_empty_current_secret_leaves_its_scheme_unconfigured_even_with_a_previous_one(stack):
    """``consumer_secret: ""`` beside a previous value: the scheme is not configured (401), whatever signs."""
    set_app_secret(stack, {"consumer_secret": "", "previous_consumer_secret": OLD_CONSUMER, "client_secret": CLIENT})
    for key in ("", OLD_CONSUMER):
        code, body = post(stack, BODY, secret=None, headers={LEGACY_HEADER: sign(key, BODY)})
        assert code == 401 and "consumer_secret" in body["error"]
    assert stored_keys(stack) == []
    # the CRC, on auto, answers with the client secret, never with the empty or the previous value
    assert crc(stack, "crc_token=foo") == (200, {"response_token": sign(CLIENT, b"foo")})


def test_non_string_secret_fields_count_as_absent(stack):
    set_app_secret(stack, {"consumer_secret": CONSUMER, "client_secret": 42, "previous_consumer_secret": ["x"]})
    assert deliver(stack, oauth2="42") == 401
    assert deliver(stack, legacy="['x']") == 403
    assert crc(stack, "crc_token=foo")[1] == {"response_token": sign(CONSUMER, b"foo")}


def test_a_bare_string_secret_is_the_consumer_secret_alone_with_its_newline_trimmed(stack):
    """A secret created from a file often ends in a newline; the key X shares has none."""
    set_app_secret(stack, CONSUMER + "\n")
    assert crc(stack, "crc_token=foo") == (200, {"response_token": sign(CONSUMER, b"foo")})
    assert deliver(stack, legacy=CONSUMER) == 200
    assert deliver(stack, legacy=CONSUMER + "\n", body=OTHER_BODY) == 403
    assert deliver(stack, oauth2=CONSUMER, body=OTHER_BODY) == 401  # no client_secret in a bare string
    assert signed_with(stack) == ["consumer_secret"]


# ------------------------------------------------------------------------------ rotation in progress


def test_during_a_rotation_the_current_secret_is_recorded_as_current_and_the_previous_as_previous(stack):
    set_app_secret(stack, {"consumer_secret": CONSUMER, "previous_consumer_secret": OLD_CONSUMER})
    assert deliver(stack, legacy=CONSUMER) == 200
    assert signed_with(stack) == ["consumer_secret"]
    assert deliver(stack, legacy=OLD_CONSUMER, body=OTHER_BODY) == 200
    assert signed_with(stack) == ["consumer_secret", "previous_consumer_secret"]
    assert crc(stack, "crc_token=foo")[1] == {"response_token": sign(CONSUMER, b"foo")}


def test_a_previous_secret_equal_to_the_current_one_counts_as_the_current_one(stack):
    """An operator who pasted the same value in both fields: no rotation is in progress (the first match wins)."""
    set_app_secret(stack, {"consumer_secret": CONSUMER, "previous_consumer_secret": CONSUMER})
    assert deliver(stack, legacy=CONSUMER) == 200
    assert signed_with(stack) == ["consumer_secret"]


def test_a_rotation_of_one_scheme_opens_nothing_in_the_other(stack):
    """The previous consumer secret is a legacy key only: in the OAuth 2.0 header it is wrong (403)."""
    set_app_secret(stack, {"consumer_secret": CONSUMER, "previous_consumer_secret": OLD_CONSUMER,
                           "client_secret": CLIENT, "previous_client_secret": OLD_CLIENT})
    assert deliver(stack, oauth2=OLD_CONSUMER) == 403
    assert deliver(stack, legacy=OLD_CLIENT) == 403
    assert deliver(stack, oauth2=CLIENT, legacy=OLD_CLIENT) == 200  # OAuth 2.0 decides
    assert signed_with(stack) == ["client_secret"]


def test_when_the_rotation_ends_the_previous_secret_stops_verifying(stack):
    set_app_secret(stack, {"consumer_secret": CONSUMER, "previous_consumer_secret": OLD_CONSUMER})
    assert deliver(stack, legacy=OLD_CONSUMER) == 200
    set_app_secret(stack, {"consumer_secret": CONSUMER})
    assert deliver(stack, legacy=OLD_CONSUMER, body=OTHER_BODY) == 403


@pytest.mark.parametrize("mangle", [lambda v: v[:12] + "!" + v[12:], lambda v: v[:12] + " " + v[12:],
                                    lambda v: v[:12] + "\n" + v[12:], lambda v: v[:12] + "*" + v[12:]])
def test_a_signature_is_read_as_strict_base64_only(stack, mangle):
    """A lenient decoder drops stray characters and would accept a header X never sends: 401, not verified."""
    set_app_secret(stack, {"consumer_secret": CONSUMER})
    value = sign(CONSUMER, BODY)
    assert mangle(value) != value
    code, body = post(stack, BODY, secret=None, headers={LEGACY_HEADER: mangle(value)})
    assert code == 401 and "malformed" in body["error"] and stored_keys(stack) == []


@pytest.mark.parametrize("extra", [-1, 1, 16])
def test_a_digest_of_any_other_length_is_malformed_not_merely_wrong(extra):
    """401 (malformed, a client bug) for a value that is no SHA-256 digest, shorter or longer; 403 is for a wrong one."""
    import base64
    import hashlib
    import hmac

    from xrelay.receiving.signature import SignatureRefused, verify

    digest = hmac.new(CONSUMER.encode(), BODY, hashlib.sha256).digest()
    raw = digest[:extra] if extra < 0 else digest + bytes(extra)
    with pytest.raises(SignatureRefused) as refused:
        verify("sha256=" + base64.b64encode(raw).decode(), BODY, [CONSUMER])
    assert (refused.value.status, refused.value.reason) == (401, f"malformed {LEGACY_HEADER} header: not a SHA-256 digest")


def test_the_crc_advice_on_auto_without_a_client_secret_says_auto_will_use_one_once_added():
    """On auto, adding client_secret is the whole fix; only a forced consumer_secret also needs the Parameter changed."""
    from xrelay.credentials import crc_secret_advice

    auto = crc_secret_advice("auto", has_client_secret=False)
    assert "(CrcSigningSecret=auto then uses it)" in auto and "set CrcSigningSecret" not in auto
    forced = crc_secret_advice("consumer_secret", has_client_secret=False)
    assert "and set CrcSigningSecret=auto or client_secret" in forced and "then uses it" not in forced


@pytest.mark.parametrize("field", ["client_id", "client_secret"])
def test_a_non_string_optional_field_is_refused_by_name_not_with_a_crash(field):
    from xrelay.credentials import SecretUnavailable, parse_app_secret

    doc = {"consumer_key": "ck", "consumer_secret": CONSUMER, "bearer_token": "bt", field: 42}
    with pytest.raises(SecretUnavailable) as refused:
        parse_app_secret(json.dumps(doc))
    assert str(refused.value) == f"X app secret JSON has non-string '{field}'"


def test_the_signing_secrets_never_show_a_value_in_their_repr_or_a_traceback():
    from xrelay.credentials import SigningSecrets

    secrets = SigningSecrets.parse(json.dumps({"consumer_secret": CONSUMER, "previous_consumer_secret": OLD_CONSUMER,
                                               "client_secret": CLIENT}))
    shown = repr(secrets) + str(secrets)
    assert not any(value in shown for value in (CONSUMER, OLD_CONSUMER, CLIENT))
    assert shown.startswith("SigningSecrets(consumer_secret=<redacted>, previous_consumer_secret=<redacted>, "
                            "client_secret=<redacted>, previous_client_secret=None)")
    with pytest.raises(AttributeError):  # frozen: a handler cannot swap a key on the cached secrets
        secrets.consumer = "attacker"  # type: ignore[misc]


# ---------------------------------------------------------------- constant-time comparison, everywhere


def _mac_names(tree: ast.AST) -> set[str]:
    """Names bound to a MAC in a module: ``x = hmac.new(...)...`` or ``x = sign(...)``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_mac(node.value):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _is_mac(node: ast.AST) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Attribute) and func.attr == "new" and getattr(func.value, "id", "") == "hmac":
                return True
            if getattr(func, "id", None) == "sign" or getattr(func, "attr", None) == "sign":
                return True
    return False


def test_no_mac_is_compared_with_equality_anywhere_in_the_code():
    """Lint: in the layer and the handlers, a MAC (``hmac.new``, ``signature.sign``) or a name bound to
    one never meets ``==``/``!=``/``in``: an early-exit comparison tells an attacker, byte by byte, how
    close a forged signature is. Such a check goes through ``hmac.compare_digest``."""
    sources = sorted((ROOT / "layers/xrelay/xrelay").rglob("*.py")) + sorted((ROOT / "functions").glob("*/app.py"))
    assert len(sources) > 20
    offenders = []
    for path in sources:
        tree = ast.parse(path.read_text())
        macs = _mac_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn)
                                                     for op in node.ops):
                for side in (node.left, *node.comparators):
                    if _is_mac(side) or (isinstance(side, ast.Name) and side.id in macs):
                        offenders.append(f"{Path(path).relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


def test_the_lint_finds_a_mac_compared_with_equality():
    """The rule above is not vacuous: it flags both spellings of the bug."""
    for bad in ("def check(h, body, key):\n    expected = hmac.new(key, body, sha256).digest()\n    return h == expected\n",
                "def check(h, body, key):\n    return sign(key, body) != h\n"):
        tree = ast.parse(bad)
        compares = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)]
        assert any(_is_mac(side) or (isinstance(side, ast.Name) and side.id in _mac_names(tree))
                   for node in compares for side in (node.left, *node.comparators))


def test_every_module_that_checks_a_mac_uses_compare_digest():
    """Only signature.py verifies MACs; any module that computes one with hmac.new must check with compare_digest."""
    for path in sorted((ROOT / "layers/xrelay/xrelay").rglob("*.py")):
        text = path.read_text()
        if "hmac.new(" in text:
            assert "hmac.compare_digest(" in text, path.name


def test_how_a_delivery_was_signed_is_a_value_that_cannot_be_changed_after_the_check():
    """``Verified`` is frozen: what the check decided cannot be rewritten on the way to the record."""
    import dataclasses

    from xrelay.receiving.signature import Verified, verify_delivery

    verified = verify_delivery({LEGACY_HEADER: sign(CONSUMER, BODY)}, BODY, [], [CONSUMER])
    assert {verified, Verified("legacy")} == {Verified("legacy", previous=False)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        verified.previous = True  # type: ignore[misc]

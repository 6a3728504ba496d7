import pytest

from xrelay.receiving.signature import SignatureRefused, TokenRefused, check_crc_token, crc_response, sign, verify


def test_crc_matches_the_public_known_answer():
    # Values from X's public CRC example gist (jcipriano), answer computed independently.
    secret = "z3ZX4v7mAAUGykl3EcmkqbartmuW8VFOOzCloLx9Q45P0hLrFu"
    token = "9b4507b3-9040-4669-9ca3-6b94edb50553"
    assert crc_response(secret, token) == {"response_token": "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="}


def test_delivery_signature_matches_autohooks_known_answer():
    body = b'{"test_number":1,"test_string":"two"}'
    assert sign("test", body) == "sha256=YWHphPn/JFq43jkF0y4/w8R/SelmLjvpunhVFY8JhlI="
    assert verify("sha256=YWHphPn/JFq43jkF0y4/w8R/SelmLjvpunhVFY8JhlI=", body, ["test"]) == 0


@pytest.mark.parametrize("token", ["foo", "challenge_string", "9b4507b3-9040-4669-9ca3-6b94edb50553",
                                   "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=", "a" * 256])
def test_token_shaped_values_are_answered(token):
    assert check_crc_token(token) == token


@pytest.mark.parametrize("token,why", [
    (None, "missing"), ("", "missing"),
    ('{"for_user_id":"1","tweet_create_events":[]}', "characters"),
    ('"quoted"', "characters"), ("has space", "characters"), ("tab\there", "characters"),
    ("new\nline", "characters"), ("{}", "characters"), ("a" * 257, "longer"),
])
def test_values_that_could_be_bodies_are_refused(token, why):
    with pytest.raises(TokenRefused) as refused:
        check_crc_token(token)
    assert why in refused.value.reason


def test_a_refused_token_is_never_signed():
    with pytest.raises(TokenRefused):
        crc_response("secret", '{"data":{}}')


@pytest.mark.parametrize("header,status", [
    (None, 401), ("", 401), ("sha1=abc", 401), ("sha256=not base64!!", 401),
    ("sha256=" + "QUJD", 401),  # base64, but 3 bytes: not a SHA-256 digest
])
def test_missing_or_malformed_signature_is_401(header, status):
    with pytest.raises(SignatureRefused) as refused:
        verify(header, b"{}", ["secret"])
    assert refused.value.status == status


def test_wrong_signature_is_403():
    with pytest.raises(SignatureRefused) as refused:
        verify(sign("other", b"{}"), b"{}", ["secret"])
    assert refused.value.status == 403


def test_signature_over_different_bytes_is_403():
    # Same JSON value, different bytes: the signature covers the wire bytes, not the parsed JSON.
    with pytest.raises(SignatureRefused):
        verify(sign("secret", b'{"a": 1}'), b'{"a":1}', ["secret"])


def test_previous_secret_is_accepted_during_rotation():
    body = b'{"x":1}'
    assert verify(sign("new", body), body, ["new", "old"]) == 0
    assert verify(sign("old", body), body, ["new", "old"]) == 1
    with pytest.raises(SignatureRefused):
        verify(sign("older", body), body, ["new", "old"])


# ------------------------------------------------------------------ X's two schemes (verify_delivery)

from xrelay.receiving.signature import LEGACY_HEADER, OAUTH2_HEADER, Verified, verify_delivery  # noqa: E402

BODY = b'{"data":{"event_type":"post.create"}}'


def headers(oauth2: str | None = None, legacy: str | None = None) -> dict[str, str]:
    out = {}
    if oauth2 is not None:
        out[OAUTH2_HEADER] = sign(oauth2, BODY)
    if legacy is not None:
        out[LEGACY_HEADER] = sign(legacy, BODY)
    return out


@pytest.mark.parametrize("given,expected", [
    (headers(oauth2="client"), Verified("oauth2")),
    (headers(legacy="consumer"), Verified("legacy")),
    (headers(oauth2="client", legacy="consumer"), Verified("oauth2")),
    (headers(oauth2="client", legacy="wrong"), Verified("oauth2")),  # the OAuth 2.0 header decides alone
    (headers(oauth2="client-old"), Verified("oauth2", previous=True)),
    (headers(legacy="consumer-old"), Verified("legacy", previous=True)),
])
def test_each_scheme_and_rotation_is_accepted(given, expected):
    got = verify_delivery(given, BODY, ["client", "client-old"], ["consumer", "consumer-old"])
    assert got == expected
    assert got.secret == {("oauth2", False): "client_secret", ("oauth2", True): "previous_client_secret",
                          ("legacy", False): "consumer_secret", ("legacy", True): "previous_consumer_secret"}[
        got.scheme, got.previous]


@pytest.mark.parametrize("given,status,named", [
    (headers(oauth2="wrong", legacy="consumer"), 403, OAUTH2_HEADER),  # no downgrade
    (headers(oauth2="wrong"), 403, OAUTH2_HEADER),
    (headers(legacy="wrong"), 403, LEGACY_HEADER),
    ({OAUTH2_HEADER: "", LEGACY_HEADER: sign("consumer", BODY)}, 401, OAUTH2_HEADER),
    ({}, 401, OAUTH2_HEADER),
])
def test_wrong_or_missing_signatures_are_refused(given, status, named):
    with pytest.raises(SignatureRefused) as refused:
        verify_delivery(given, BODY, ["client"], ["consumer"])
    assert refused.value.status == status and named in refused.value.reason


def test_a_scheme_whose_secret_is_not_configured_is_401_naming_the_field():
    with pytest.raises(SignatureRefused) as refused:
        verify_delivery(headers(oauth2="client"), BODY, [], ["consumer"])
    assert refused.value.status == 401 and "client_secret" in refused.value.reason
    with pytest.raises(SignatureRefused) as refused:
        verify_delivery(headers(legacy="consumer"), BODY, ["client"], [])
    assert refused.value.status == 401 and "consumer_secret" in refused.value.reason
    assert "consumer" not in refused.value.reason.replace("consumer_secret", "")  # a field name, never a value


def test_both_headers_without_a_client_secret_fall_to_the_legacy_one_and_say_so():
    got = verify_delivery(headers(oauth2="client", legacy="consumer"), BODY, [], ["consumer"])
    assert got == Verified("legacy", unchecked=OAUTH2_HEADER)
    with pytest.raises(SignatureRefused):
        verify_delivery(headers(oauth2="client", legacy="wrong"), BODY, [], ["consumer"])


def test_every_signature_comparison_goes_through_compare_digest(monkeypatch):
    """Each configured secret of the deciding scheme is compared, always with hmac.compare_digest."""
    import hmac

    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((type(a), type(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    verify_delivery(headers(oauth2="client"), BODY, ["client", "client-old"], ["consumer", "consumer-old"])
    assert len(calls) == 2  # current and previous: a match does not stop the loop (timing says nothing)
    calls.clear()
    with pytest.raises(SignatureRefused):
        verify_delivery(headers(legacy="wrong"), BODY, ["client"], ["consumer", "consumer-old"])
    assert len(calls) == 2 and all(kinds == (bytes, bytes) for kinds in calls)


def test_no_digest_is_compared_with_equality_in_the_signature_module():
    """AST check: in signature.py, ``==``/``!=``/``in`` only ever compare with a constant, a length or a
    name of the token/choice checks, never two computed values (a digest compared with == leaks timing)."""
    import ast
    import inspect

    from xrelay.receiving import signature

    tree = ast.parse(inspect.getsource(signature))
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn)
                                                 for op in node.ops):
            sides = [node.left, *node.comparators]
            harmless = [isinstance(side, ast.Constant) or (isinstance(side, ast.Call) and getattr(
                side.func, "id", None) == "len") or (isinstance(side, ast.Attribute) and side.attr == "digest_size")
                for side in sides]
            if not any(harmless):
                offenders.append(ast.unparse(node))
    assert offenders == []
    assert "compare_digest" in inspect.getsource(signature.verify)

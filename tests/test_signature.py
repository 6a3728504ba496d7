import pytest

from xrelay.signature import SignatureRefused, TokenRefused, check_crc_token, crc_response, sign, verify


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

"""X's webhook signatures: the CRC answer and the ``x-twitter-webhooks-signature`` check.

Both are ``sha256=`` + base64(HMAC-SHA256(consumer secret, message)); the CRC signs the
``crc_token``, deliveries sign the raw request body. Standard library only: this module sits on
the CRC path, whose budget (about 3 s at X) includes the cold start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

SIGNATURE_HEADER = "x-twitter-webhooks-signature"
PREFIX = "sha256="

# A CRC answer is a valid signature of the token, so a token that could be a delivery body would
# turn the CRC into a signing oracle. X's tokens seen so far are UUIDs, base64-ish strings and
# words as short as "foo": allow that alphabet, refuse everything else (braces, quotes, spaces...).
_TOKEN_RE = re.compile(r"[A-Za-z0-9+/=_.~-]{1,256}")
MAX_TOKEN_LENGTH = 256


class TokenRefused(ValueError):
    """The crc_token is missing or not token-shaped; ``reason`` is safe to return to the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SignatureRefused(Exception):
    """A delivery's signature is missing/malformed (``status`` 401) or wrong (403)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(secret: str | bytes, message: bytes) -> str:
    """The value X puts in ``x-twitter-webhooks-signature`` for ``message``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return PREFIX + base64.b64encode(digest).decode("ascii")


def check_crc_token(token: str | None) -> str:
    """Return the token if it is safe to sign, else raise :class:`TokenRefused`."""
    if token is None or token == "":
        raise TokenRefused("crc_token query parameter is missing or empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRefused(f"crc_token is longer than {MAX_TOKEN_LENGTH} characters")
    if not _TOKEN_RE.fullmatch(token):
        raise TokenRefused("crc_token contains characters a CRC token never has")
    return token


def crc_response(secret: str, token: str | None) -> dict[str, str]:
    """The JSON body answering X's CRC for ``token`` (checked first, see :func:`check_crc_token`)."""
    return {"response_token": sign(secret, check_crc_token(token).encode("utf-8"))}


def verify(header_value: str | None, body: bytes, secrets: list[str]) -> int:
    """Check a delivery's signature against each secret (current first, then previous).

    Returns the index of the secret that matched; raises :class:`SignatureRefused` otherwise.
    Every comparison is constant-time and every secret is tried, so timing says nothing about
    which one (if any) was close.
    """
    if not header_value:
        raise SignatureRefused(401, f"missing {SIGNATURE_HEADER} header")
    value = header_value.strip()
    if not value.startswith(PREFIX):
        raise SignatureRefused(401, f"malformed {SIGNATURE_HEADER} header: expected sha256=<base64>")
    try:
        raw = base64.b64decode(value[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused(401, f"malformed {SIGNATURE_HEADER} header: not base64") from None
    if len(raw) != hashlib.sha256().digest_size:
        raise SignatureRefused(401, f"malformed {SIGNATURE_HEADER} header: not a SHA-256 digest")
    matched = -1
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, raw) and matched < 0:
            matched = index
    if matched < 0:
        raise SignatureRefused(403, "signature does not match")
    return matched

"""X's webhook signatures: the CRC answer and the check of a delivery's signature headers.

Every value is ``sha256=`` + base64(HMAC-SHA256(secret, message)); the CRC signs the
``crc_token``, deliveries sign the raw request body. X has two schemes (docs.x.com/x-api/webhooks):

* OAuth 2.0: ``x-twitter-webhooks-signature-oauth2``, keyed by the app's OAuth 2.0 client secret;
  X also keys the CRC with that secret when the app has one.
* legacy: ``x-twitter-webhooks-signature``, keyed by the OAuth 1.0a consumer secret (and the CRC
  of an app without OAuth 2.0).

Standard library only: this module sits on the CRC path, whose budget (about 3 s at X) includes
the cold start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

OAUTH2_HEADER = "x-twitter-webhooks-signature-oauth2"
LEGACY_HEADER = "x-twitter-webhooks-signature"
SIGNATURE_HEADER = LEGACY_HEADER  # the name the tools and tests have always used for the legacy header
PREFIX = "sha256="

# The schemes, as `xrelay status` and the intake's signing record name them.
OAUTH2 = "oauth2"
LEGACY = "legacy"
SCHEME_HEADERS = {OAUTH2: OAUTH2_HEADER, LEGACY: LEGACY_HEADER}
# What keys each scheme, as the app secret's fields name it: what a refusal says is missing.
SCHEME_SECRETS = {OAUTH2: "client_secret", LEGACY: "consumer_secret"}

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
    """The value X puts in either signature header for ``message`` (the scheme is in the key)."""
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


@dataclass(frozen=True)
class Verified:
    """How a delivery was signed: its scheme, and whether with that scheme's previous secret."""

    scheme: str  # OAUTH2 or LEGACY
    previous: bool = False  # signed with the previous secret of a rotation
    unchecked: str | None = None  # a header present but not checkable (its secret is not configured)

    @property
    def secret(self) -> str:
        """The app secret's field that matched, e.g. ``previous_client_secret``."""
        return ("previous_" if self.previous else "") + SCHEME_SECRETS[self.scheme]


def verify_delivery(headers: Mapping[str, str], body: bytes, client_secrets: Sequence[str],
                    consumer_secrets: Sequence[str]) -> Verified:
    """Check a delivery's signature headers (``headers`` lower-cased) against the configured secrets.

    * The OAuth 2.0 header, when present and a client secret is configured, decides alone: a
      wrong OAuth 2.0 signature is refused even if a legacy one on the same request is right (no
      downgrade to the weaker-held secret).
    * Otherwise the legacy header decides, against the consumer secret(s). This includes a request
      carrying both headers to an app secret without ``client_secret``: the OAuth 2.0 header cannot
      be checked there, and the legacy one is exactly what xrelay has always relied on (``unchecked``
      says so, for the operator).
    * A delivery signed only in a scheme whose secret is not configured is refused (401), naming
      the missing field (never a value).

    Secrets are tried current first, then previous. Raises :class:`SignatureRefused`.
    """
    oauth2, legacy = headers.get(OAUTH2_HEADER), headers.get(LEGACY_HEADER)
    if oauth2 is not None and client_secrets:
        return Verified(OAUTH2, previous=verify(oauth2, body, client_secrets, OAUTH2_HEADER) > 0)
    if legacy is not None:
        if not consumer_secrets:
            raise SignatureRefused(401, _unconfigured(LEGACY))
        return Verified(LEGACY, previous=verify(legacy, body, consumer_secrets, LEGACY_HEADER) > 0,
                        unchecked=OAUTH2_HEADER if oauth2 is not None else None)
    if oauth2 is not None:
        raise SignatureRefused(401, _unconfigured(OAUTH2))
    raise SignatureRefused(401, f"missing {OAUTH2_HEADER} or {LEGACY_HEADER} header")


def _unconfigured(scheme: str) -> str:
    return (f"signed only with {SCHEME_HEADERS[scheme]}, but the X app secret holds no "
            f"{SCHEME_SECRETS[scheme]} to check it with")


def verify(header_value: str | None, body: bytes, secrets: Sequence[str], header: str = LEGACY_HEADER) -> int:
    """Check one signature header's value against each secret (current first, then previous).

    Returns the index of the secret that matched; raises :class:`SignatureRefused` otherwise.
    Every comparison is constant-time and every secret is tried, so timing says nothing about
    which one (if any) was close.
    """
    if not header_value:
        raise SignatureRefused(401, f"missing {header} header")
    value = header_value.strip()
    if not value.startswith(PREFIX):
        raise SignatureRefused(401, f"malformed {header} header: expected sha256=<base64>")
    try:
        raw = base64.b64decode(value[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused(401, f"malformed {header} header: not base64") from None
    if len(raw) != hashlib.sha256().digest_size:
        raise SignatureRefused(401, f"malformed {header} header: not a SHA-256 digest")
    matched = -1
    for index, secret in enumerate(secrets):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        if hmac.compare_digest(expected, raw) and matched < 0:
            matched = index
    if matched < 0:
        raise SignatureRefused(403, f"{header} signature does not match")
    return matched

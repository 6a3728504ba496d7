"""The CRC challenge (GET), kept apart from intake so the CRC function imports almost nothing."""

from __future__ import annotations

from collections.abc import Callable

from .apigw import Response
from .credentials import ConsumerSecrets, SecretUnavailable
from .signature import TokenRefused, crc_response


def answer_crc(token: str | None, load_secrets: Callable[[], ConsumerSecrets], log) -> Response:
    """200 ``{"response_token": ...}`` for a token-shaped ``token``; 400 with a reason otherwise.

    A refused token is logged (its length only: it may be an attacker's forged body), because a
    genuine X token refused here would get the webhook marked invalid.
    """
    try:
        secrets = load_secrets()
        return Response(200, crc_response(secrets.current, token))
    except TokenRefused as exc:
        log.warning("CRC token refused", extra={"reason": exc.reason, "token_length": len(token or "")})
        return Response(400, {"error": exc.reason})
    except SecretUnavailable as exc:
        log.error("CRC could not read the consumer secret", extra={"reason": str(exc)})
        return Response(503, {"error": "temporarily unavailable"})

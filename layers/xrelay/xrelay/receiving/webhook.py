"""The CRC challenge (GET), kept apart from intake so the CRC function imports almost nothing."""

from __future__ import annotations

from collections.abc import Callable

from xrelay.credentials import CRC_AUTO, SecretUnavailable, SigningSecrets
from xrelay.observability import M, count
from xrelay.receiving.apigw import Response, query
from xrelay.receiving.signature import TokenRefused, crc_response


def answer_crc(token: str | None, load_secrets: Callable[[], SigningSecrets], log,
               choice: str = CRC_AUTO) -> Response:
    """200 ``{"response_token": ...}`` for a token-shaped ``token``; 400 with a reason otherwise.

    ``choice`` is the CrcSigningSecret Parameter: ``auto`` answers with the client secret when the
    app secret holds one (as X computes it for an app with OAuth 2.0), else the consumer secret.
    A refused token is logged (its length only: it may be an attacker's forged body), because a
    genuine X token refused here would get the webhook marked invalid.
    """
    try:
        secrets = load_secrets()
        name, secret = secrets.crc_secret(choice)
        response = Response(200, crc_response(secret, token))
        log.info("CRC answered", extra={"crc_secret": name, "crc_signing_secret": choice})
        return response
    except TokenRefused as exc:
        log.warning("CRC token refused", extra={"reason": exc.reason, "token_length": len(token or "")})
        return Response(400, {"error": exc.reason})
    except SecretUnavailable as exc:
        log.error("CRC could not read its signing secret", extra={"reason": str(exc)})
        return Response(503, {"error": "temporarily unavailable"})


def answer_crc_event(event: dict, load_secrets: Callable[[], SigningSecrets], log, metrics,
                     choice: str = CRC_AUTO) -> dict:
    """The CRC's whole answer to an API Gateway or function URL event (CrcFunction, WebhookFunction's
    GET), counted: 4xx is a token we would not sign, 5xx a secret we could not read (X's CRC fails)."""
    response = answer_crc(query(event, "crc_token"), load_secrets, log, choice)
    count(metrics, M.CRC_ANSWERED if response.status == 200 else M.CRC_REFUSED if response.status < 500
          else M.SECRET_FAILURES)
    return response.to_proxy()


def crc_lambda_handler(choice: str, load_secrets: Callable[[], SigningSecrets], log, metrics):
    """The Lambda handler of X's CRC, for CrcFunction and WebhookFunction's GET."""

    @metrics.log_metrics
    @log.inject_lambda_context(clear_state=True)
    def handle(event, context):
        return answer_crc_event(event, load_secrets, log, metrics, choice)

    return handle

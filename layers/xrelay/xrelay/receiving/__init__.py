"""Receiving: X -> us, the request path of the webhook and intake functions.

The API Gateway and Function URL event shapes (apigw, function_url), the CRC answer (webhook),
the signature check and its record of which scheme signed (signature, signing_log), and intake
itself: verify, normalise, store, note an outage's end (intake).

May import: the top-level shared modules (config, aws, observability, credentials), events,
storage and recovery.outages (intake ends an outage when deliveries resume). Never tools. The
CRC path (webhook, signature, apigw) stays free of boto3, pydantic and httpx at import time:
its cold start depends on it.
"""

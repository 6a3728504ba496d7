"""The app's consumer secret, from Secrets Manager, cached across warm invocations.

The secret's value is either the bare consumer secret or a JSON object::

    {"consumer_secret": "...", "previous_consumer_secret": "..."}

``previous_consumer_secret`` is optional and exists for rotation: while X may still sign with
the old secret, signatures made with either are accepted; the CRC always answers with the
current one. Remove the previous value once X has validated the new one. Values are never
logged or put in exception messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


class SecretUnavailable(Exception):
    """Secrets Manager could not give us the secret (AWS failure or misconfiguration)."""


@dataclass(frozen=True)
class ConsumerSecrets:
    current: str
    previous: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never print secret material, even in a traceback
        return f"ConsumerSecrets(current=<redacted>, previous={'<redacted>' if self.previous else None})"

    @property
    def for_verification(self) -> list[str]:
        return [self.current] + ([self.previous] if self.previous else [])

    @classmethod
    def parse(cls, value: str) -> ConsumerSecrets:
        text = value.strip()
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except ValueError:
                raise SecretUnavailable("consumer secret looks like JSON but does not parse") from None
            current = doc.get("consumer_secret")
            if not isinstance(current, str) or not current:
                raise SecretUnavailable("consumer secret JSON has no 'consumer_secret' string")
            previous = doc.get("previous_consumer_secret") or None
            return cls(current=current, previous=previous if isinstance(previous, str) else None)
        if not text:
            raise SecretUnavailable("consumer secret is empty")
        return cls(current=text)


def load_consumer_secrets(secret_arn: str, max_age: int = 300) -> ConsumerSecrets:
    """Fetch (or reuse, for ``max_age`` seconds) the consumer secret named by ``secret_arn``.

    Powertools' parameters utility keeps the value in memory between invocations, so a warm
    CRC answers without calling Secrets Manager, and a rotation is picked up within ``max_age``.
    """
    if not secret_arn:
        raise SecretUnavailable("CONSUMER_SECRET_ARN is not configured")
    try:
        value = _secrets_provider().get(secret_arn, max_age=max_age)
    except Exception as exc:  # GetParameterError, botocore errors, network: all mean "not now"
        raise SecretUnavailable(f"could not read the consumer secret ({type(exc).__name__})") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return ConsumerSecrets.parse(str(value))


def _secrets_provider():
    """Powertools' secrets provider, on our client: short timeouts, few retries (see ``aws``).

    Powertools' own default client waits up to 60 s per attempt, so a slow Secrets Manager would
    hang the CRC past X's deadline instead of failing fast with a 503. Registered as the default
    provider, so ``parameters.clear_caches()`` still forgets it (and its cached value).
    """
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS

    from .aws import client

    if "secrets" not in DEFAULT_PROVIDERS:
        DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=client("secretsmanager"))
    return DEFAULT_PROVIDERS["secrets"]

"""The X app's credentials, from one Secrets Manager secret, cached across warm invocations.

The secret (the ``XAppSecretArn`` Parameter, ``X_APP_SECRET_ARN`` in the functions) holds every
credential of the X app as a JSON object::

    {"consumer_key": "...", "consumer_secret": "...", "previous_consumer_secret": "...",
     "bearer_token": "...", "client_id": "...", "client_secret": "..."}

* The CRC and intake read only ``consumer_secret`` (:func:`load_consumer_secrets`), plus the
  optional ``previous_consumer_secret`` for rotation: while X may still sign with the old
  secret, signatures made with either are accepted; the CRC always answers with the current
  one. Remove the previous value once X has validated the new one. For them a bare-string
  secret (the consumer secret alone) is accepted too.
* The reconcile calls the X API and needs ``consumer_key``, ``consumer_secret`` and
  ``bearer_token`` (:func:`load_app_credentials`); ``client_id``/``client_secret`` (OAuth 2.0)
  are optional.

Values are never logged or put in exception messages: errors name the missing fields only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # xapi imports httpx: the CRC must not, so it is imported where it is used
    from .xapi import AppCredentials, XApiClient

# What load_app_credentials requires, and the optional OAuth 2.0 client credentials it passes on.
APP_REQUIRED_FIELDS = ("consumer_key", "consumer_secret", "bearer_token")
APP_OPTIONAL_FIELDS = ("client_id", "client_secret")


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
    """Fetch (or reuse, for ``max_age`` seconds) the consumer secret(s) in the secret ``secret_arn``.

    Powertools' parameters utility keeps the value in memory between invocations, so a warm
    CRC answers without calling Secrets Manager, and a rotation is picked up within ``max_age``.
    """
    return ConsumerSecrets.parse(_read_secret(secret_arn, max_age))


def load_app_credentials(secret_arn: str, max_age: int = 300) -> AppCredentials:
    """The X app's credentials from the JSON secret ``secret_arn`` (cached like the consumer secret).

    Raises :class:`SecretUnavailable` when the secret cannot be read, is not a JSON object (a
    bare-string secret holds the consumer secret only), or lacks one of ``consumer_key``,
    ``consumer_secret`` and ``bearer_token``; the message names the fields, never a value.
    """
    doc = parse_app_secret(_read_secret(secret_arn, max_age))
    from .xapi import AppCredentials  # lazily: httpx stays out of the CRC and intake

    extra = {name: doc[name] for name in APP_OPTIONAL_FIELDS if doc.get(name)}
    return AppCredentials(doc["consumer_key"], doc["consumer_secret"], doc["bearer_token"], **extra)


def stack_x_client(settings: Any, transport: Any = None) -> XApiClient:
    """An X API client with the stack's app credentials and base URL.

    ``settings`` is a ``config.Settings``; raises :class:`SecretUnavailable` like
    :func:`load_app_credentials`. The reconcile, the replay and the teardown all start here.
    """
    app = load_app_credentials(settings.app_secret_arn, settings.secret_cache_seconds)
    from .xapi import XApiClient

    return XApiClient(app, base_url=settings.x_api_base_url, transport=transport)


def parse_app_secret(value: str) -> dict[str, str]:
    """The app secret's JSON object, checked: every required field a non-empty string."""
    text = value.strip()
    if not text.startswith("{"):
        raise SecretUnavailable(
            "X app secret is a bare string (the consumer secret alone); calling the X API needs a JSON "
            "object with " + ", ".join(APP_REQUIRED_FIELDS))
    try:
        doc: Any = json.loads(text)
    except ValueError:
        raise SecretUnavailable("X app secret looks like JSON but does not parse") from None
    if not isinstance(doc, dict):
        raise SecretUnavailable("X app secret is not a JSON object")
    missing = [name for name in APP_REQUIRED_FIELDS if not isinstance(doc.get(name), str) or not doc[name]]
    if missing:
        raise SecretUnavailable("X app secret JSON lacks " + ", ".join(repr(name) for name in missing)
                                + " (each a non-empty string)")
    wrong = [name for name in APP_OPTIONAL_FIELDS if doc.get(name) and not isinstance(doc[name], str)]
    if wrong:
        raise SecretUnavailable("X app secret JSON has non-string " + ", ".join(repr(name) for name in wrong))
    return doc


def _read_secret(secret_arn: str, max_age: int) -> str:
    if not secret_arn:
        raise SecretUnavailable("X_APP_SECRET_ARN is not configured")
    try:
        value = _secrets_provider().get(secret_arn, max_age=max_age)
    except Exception as exc:  # GetParameterError, botocore errors, network: all mean "not now"
        raise SecretUnavailable(f"could not read the X app secret ({type(exc).__name__})") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return str(value)


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

"""The X app's credentials, from one Secrets Manager secret, cached across warm invocations.

The secret (the ``XAppSecretArn`` Parameter, ``X_APP_SECRET_ARN`` in the functions) holds every
credential of the X app as a JSON object::

    {"consumer_key": "...", "consumer_secret": "...", "previous_consumer_secret": "...",
     "bearer_token": "...", "client_id": "...", "client_secret": "...", "previous_client_secret": "..."}

* The CRC and intake read only the signing secrets (:func:`load_signing_secrets`):
  ``consumer_secret`` (X's legacy ``x-twitter-webhooks-signature``) and ``client_secret`` (the
  OAuth 2.0 ``x-twitter-webhooks-signature-oauth2``; X keys the CRC with it when the app has
  one), each with an optional ``previous_*`` for rotation: while X may still sign with the old
  secret, signatures made with either are accepted; the CRC always answers with a current one.
  Remove the previous value once X has validated the new one. For them a bare-string secret
  (the consumer secret alone) is accepted too.
* The reconcile calls the X API and needs ``consumer_key``, ``consumer_secret`` and
  ``bearer_token`` (:func:`load_app_credentials`); ``client_id``/``client_secret`` (OAuth 2.0)
  are optional.

Values are never logged or put in exception messages: errors name the missing fields only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xrelay.config import CRC_SIGNING_SECRETS

if TYPE_CHECKING:  # xapi imports httpx: the CRC must not, so it is imported where it is used
    from xrelay.subscriptions.xapi import AppCredentials, XApiClient

# What load_app_credentials requires, and the optional OAuth 2.0 client credentials it passes on.
APP_REQUIRED_FIELDS = ("consumer_key", "consumer_secret", "bearer_token")
APP_OPTIONAL_FIELDS = ("client_id", "client_secret")


class SecretUnavailable(Exception):
    """Secrets Manager could not give us the secret (AWS failure or misconfiguration)."""


# The app secret's fields the CRC and intake read: the signing secrets of X's two schemes.
SIGNING_FIELDS = ("consumer_secret", "previous_consumer_secret", "client_secret", "previous_client_secret")
# CrcSigningSecret / CRC_SIGNING_SECRET: which secret answers X's CRC.
CRC_SECRET_CHOICES = CRC_SIGNING_SECRETS
CRC_AUTO, CRC_CLIENT_SECRET, CRC_CONSUMER_SECRET = CRC_SECRET_CHOICES


@dataclass(frozen=True)
class SigningSecrets:
    """The secrets X signs with: the OAuth 1.0a consumer secret(s) and the OAuth 2.0 client secret(s).

    A ``previous_*`` value counts only beside its current one (rotation: X may still sign with it).
    """

    consumer: str | None = field(default=None, repr=False)
    previous_consumer: str | None = field(default=None, repr=False)
    client: str | None = field(default=None, repr=False)
    previous_client: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never print secret material, even in a traceback
        return "SigningSecrets(" + ", ".join(
            f"{name}={'<redacted>' if value else None}" for name, value in zip(SIGNING_FIELDS, (
                self.consumer, self.previous_consumer, self.client, self.previous_client), strict=True)) + ")"

    @property
    def consumer_secrets(self) -> list[str]:
        """The legacy scheme's keys, current first."""
        return [self.consumer] + ([self.previous_consumer] if self.previous_consumer else []) if self.consumer else []

    @property
    def client_secrets(self) -> list[str]:
        """The OAuth 2.0 scheme's keys, current first."""
        return [self.client] + ([self.previous_client] if self.previous_client else []) if self.client else []

    def crc_secret(self, choice: str = CRC_AUTO) -> tuple[str, str]:
        """(field name, value) of the secret that answers X's CRC.

        ``auto``: the client secret when the app secret holds one (X keys the CRC with it when the
        app has OAuth 2.0), else the consumer secret. A forced choice whose secret is absent raises
        :class:`SecretUnavailable` naming it: answering with the other one would fail X's CRC anyway.
        """
        if choice not in CRC_SECRET_CHOICES:
            raise SecretUnavailable(f"CRC_SIGNING_SECRET={choice!r} is not one of {', '.join(CRC_SECRET_CHOICES)}")
        choice = crc_answering_field(choice, bool(self.client))
        value = self.client if choice == CRC_CLIENT_SECRET else self.consumer
        if not value:
            raise SecretUnavailable(f"the CRC is set to answer with {choice} (CrcSigningSecret), but the X app "
                                    f"secret holds no {choice}")
        return choice, value

    @classmethod
    def parse(cls, value: str) -> SigningSecrets:
        """From the app secret's JSON object, or a bare string (the consumer secret alone)."""
        text = value.strip()
        if not text.startswith("{"):
            if not text:
                raise SecretUnavailable("X app secret is empty")
            return cls(consumer=text)
        try:
            doc = json.loads(text)
        except ValueError:
            raise SecretUnavailable("X app secret looks like JSON but does not parse") from None
        if not isinstance(doc, dict):
            raise SecretUnavailable("X app secret is not a JSON object")
        found = [doc.get(name) if isinstance(doc.get(name), str) and doc.get(name) else None
                 for name in SIGNING_FIELDS]
        secrets = cls(*found)
        if not secrets.consumer and not secrets.client:
            raise SecretUnavailable("X app secret JSON has neither a 'consumer_secret' nor a 'client_secret' string")
        return secrets


def crc_answering_field(choice: str, has_client_secret: bool) -> str:
    """The app secret's field that answers the CRC for ``choice``: ``auto`` is the client secret when there is one."""
    if choice != CRC_AUTO:
        return choice
    return CRC_CLIENT_SECRET if has_client_secret else CRC_CONSUMER_SECRET


def crc_secret_advice(choice: str, has_client_secret: bool) -> str:
    """What to tell the operator when X's CRC failed: which secret answered it, and how to switch."""
    if choice not in CRC_SECRET_CHOICES:
        return f"CrcSigningSecret={choice!r} is not one of {', '.join(CRC_SECRET_CHOICES)}"
    used = crc_answering_field(choice, has_client_secret)
    how = f"CrcSigningSecret={choice}" + ("" if choice != CRC_AUTO else
                                          ": the app secret holds a client_secret" if has_client_secret else
                                          ": the app secret holds no client_secret")
    if used == CRC_CLIENT_SECRET:
        switch = ("check that client_secret is the app's current OAuth 2.0 Client Secret; if the app has no "
                  "OAuth 2.0, X keys the CRC with the consumer secret: set CrcSigningSecret=consumer_secret")
    else:
        switch = ("X keys the CRC with the OAuth 2.0 client secret when the app has one: add client_secret to "
                  "the app secret" + (" (CrcSigningSecret=auto then uses it)" if choice == CRC_AUTO else
                                      " and set CrcSigningSecret=auto or client_secret")
                  + "; otherwise check that consumer_secret is the app's current API Key Secret")
    return f"the CRC answers with {used} ({how}); {switch}"


def load_signing_secrets(secret_arn: str, max_age: int = 300) -> SigningSecrets:
    """Fetch (or reuse, for ``max_age`` seconds) the signing secrets in the secret ``secret_arn``.

    Powertools' parameters utility keeps the value in memory between invocations, so a warm
    CRC answers without calling Secrets Manager, and a rotation is picked up within ``max_age``.
    """
    return SigningSecrets.parse(_read_secret(secret_arn, max_age))


def load_app_credentials(secret_arn: str, max_age: int = 300) -> AppCredentials:
    """The X app's credentials from the JSON secret ``secret_arn`` (cached like the signing secrets).

    Raises :class:`SecretUnavailable` when the secret cannot be read, is not a JSON object (a
    bare-string secret holds the consumer secret only), or lacks one of ``consumer_key``,
    ``consumer_secret`` and ``bearer_token``; the message names the fields, never a value.
    """
    doc = parse_app_secret(_read_secret(secret_arn, max_age))
    from xrelay.subscriptions.xapi import AppCredentials  # lazily: httpx stays out of the CRC and intake

    extra = {name: doc[name] for name in APP_OPTIONAL_FIELDS if doc.get(name)}
    return AppCredentials(doc["consumer_key"], doc["consumer_secret"], doc["bearer_token"], **extra)


def stack_x_client(settings: Any, transport: Any = None) -> XApiClient:
    """An X API client with the stack's app credentials and base URL.

    ``settings`` is a ``config.Settings``; raises :class:`SecretUnavailable` like
    :func:`load_app_credentials`. The reconcile, the replay and the teardown all start here.
    """
    app = load_app_credentials(settings.app_secret_arn, settings.secret_cache_seconds)
    from xrelay.subscriptions.xapi import XApiClient

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

    from xrelay.aws import client

    if "secrets" not in DEFAULT_PROVIDERS:
        DEFAULT_PROVIDERS["secrets"] = SecretsProvider(boto3_client=client("secretsmanager"))
    return DEFAULT_PROVIDERS["secrets"]

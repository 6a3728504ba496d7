"""Users' authorisations of the app, in Secrets Manager (never in DynamoDB, never in logs).

One secret per user, named ``xrelay/<stack>/users/<user_id>`` so that IAM can grant the
reconcile exactly this stack's users. Its value is JSON:

* OAuth 1.0a: ``{"kind": "oauth1", "access_token", "access_token_secret"}``
* OAuth 2.0:  ``{"kind": "oauth2", "access_token", "refresh_token", "expires_at"}`` (ISO 8601 UTC)

Whether a user is authorised or revoked lives in the state table (``StateStore.users``): a
revocation received by intake must win over credentials that are still stored.

:meth:`UserCredentialStore.credentials_for` hands out usable credentials, refreshing an OAuth 2.0
token that is about to expire. X rotates refresh tokens (the spent one dies at once), so the new
pair is written back before it is used; a refresh X refuses means the user must authorise again
(:class:`NeedsAuthorization`), while an outage or a rate limit is only a failure for now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from xrelay.aws import client, error_code
from xrelay.events.event_types import is_x_id
from xrelay.subscriptions.xapi import UserCredentials, XApiClient, XApiError

# X answers a refresh it refuses with 400 (invalid_request/invalid_grant: a used, revoked or unknown
# refresh token). 401 unauthorized_client is the *app's* client id/secret being wrong: every user
# would fail alike and re-authorising none of them would help, so it propagates as the app's error,
# like anything temporary (5xx, 429, no answer).
REFUSED_REFRESH_STATUSES = (400,)


def secret_prefix(stack_name: str) -> str:
    return f"xrelay/{stack_name}/users/"


class NeedsAuthorization(Exception):
    """The user has to authorise the app again: nothing stored, or nothing X will still honour.

    ``reason`` is for people ("no stored credentials", "refresh refused by X (invalid_request)");
    it never holds a token.
    """

    def __init__(self, user_id: str, reason: str) -> None:
        super().__init__(f"user {user_id} needs authorization: {reason}")
        self.user_id = user_id
        self.reason = reason

    def __repr__(self) -> str:
        return f"NeedsAuthorization(user_id={self.user_id!r}, reason={self.reason!r})"


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    credentials: UserCredentials
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None


class UserCredentialStore:
    def __init__(self, stack_name: str, secretsmanager: Any = None):
        self.prefix = secret_prefix(stack_name)
        self.sm = secretsmanager or client("secretsmanager")

    def _name(self, user_id: str) -> str:
        if not is_x_id(user_id):
            raise ValueError(f"user id must be 1-19 digits, got {user_id!r}")
        return self.prefix + user_id

    def put(self, user: StoredUser) -> None:
        creds = user.credentials
        value: dict[str, Any] = {"kind": creds.kind, "access_token": creds.access_token}
        if creds.kind == "oauth1":
            value["access_token_secret"] = creds.access_token_secret
        else:
            value["refresh_token"] = user.refresh_token
            value["expires_at"] = user.expires_at.isoformat() if user.expires_at else None
        name, text = self._name(user.user_id), json.dumps(value)
        try:
            self.sm.put_secret_value(SecretId=name, SecretString=text)
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            self.sm.create_secret(Name=name, SecretString=text,
                                  Description=f"X user {user.user_id}'s authorisation of the app (xrelay)")

    def get(self, user_id: str) -> StoredUser | None:
        """The user's stored authorisation, or None when there is none (needs authorisation)."""
        try:
            value = json.loads(self.sm.get_secret_value(SecretId=self._name(user_id))["SecretString"])
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise
        if value.get("kind") == "oauth1":
            creds = UserCredentials.oauth1(value["access_token"], value["access_token_secret"], user_id=user_id)
            return StoredUser(user_id, creds)
        expires = value.get("expires_at")
        return StoredUser(user_id, UserCredentials.oauth2(value["access_token"], user_id=user_id),
                          value.get("refresh_token"), datetime.fromisoformat(expires) if expires else None)

    def credentials_for(
        self,
        user_id: str,
        client: XApiClient,
        *,
        now: datetime | None = None,
        margin: timedelta = timedelta(minutes=5),
        stored: StoredUser | None = None,
    ) -> UserCredentials:
        """Credentials X will accept for ``user_id`` for at least ``margin``, refreshing them if need be.

        OAuth 1.0a tokens do not expire. An OAuth 2.0 token expiring within ``margin`` (or of unknown
        expiry) is refreshed with the stored refresh token and the rotated tokens are stored before
        they are returned: the old refresh token is already dead. Raises :class:`NeedsAuthorization`
        when nothing is stored, when there is no refresh token, or when X refuses the refresh token (400);
        any other :class:`XApiError` (5xx, 429, no answer) propagates: the authorisation is not lost.
        If storing the new tokens fails, that error propagates too, and the user will need to
        authorise again (X has already spent the old refresh token).
        """
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        stored = stored or self.get(user_id)  # a caller that just read it passes it: one read per user
        if stored is None:
            raise NeedsAuthorization(user_id, "no stored credentials")
        if stored.credentials.kind == "oauth1" or _fresh(stored, now + margin):
            return stored.credentials
        if not stored.refresh_token:
            raise NeedsAuthorization(user_id, "OAuth 2.0 token expired (or about to) and no refresh token stored")
        try:
            token = client.refresh_oauth2_token(stored.refresh_token, now=now)
        except XApiError as exc:
            if exc.status not in REFUSED_REFRESH_STATUSES:
                raise
            # Another reconcile may have spent the same refresh token a moment ago and stored its pair.
            current = self.get(user_id)
            if (current is not None and current.credentials != stored.credentials
                    and (current.credentials.kind == "oauth1" or _fresh(current, now + margin))):
                return current.credentials
            raise NeedsAuthorization(user_id, f"refresh refused by X ({exc.code})") from exc
        credentials = UserCredentials.oauth2(token.access_token, user_id=user_id)
        # X sends a new refresh token with every refresh; should one ever be missing, the old may live on.
        self.put(StoredUser(user_id, credentials, token.refresh_token or stored.refresh_token, token.expires_at))
        return credentials


def _fresh(user: StoredUser, until: datetime) -> bool:
    """Whether the stored OAuth 2.0 token is still valid at ``until`` (an unknown expiry is not)."""
    expires_at = user.expires_at
    if expires_at is None:
        return False
    if expires_at.tzinfo is None:  # stored without an offset: this module writes UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at > until

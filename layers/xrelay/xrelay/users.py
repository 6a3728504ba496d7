"""Users' authorisations of the app, in Secrets Manager (never in DynamoDB, never in logs).

One secret per user, named ``xrelay/<stack>/users/<user_id>`` so that IAM can grant the
reconcile exactly this stack's users. Its value is JSON:

* OAuth 1.0a: ``{"kind": "oauth1", "access_token", "access_token_secret"}``
* OAuth 2.0:  ``{"kind": "oauth2", "access_token", "refresh_token", "expires_at"}`` (ISO 8601 UTC)

Whether a user is authorised or revoked lives in the state table (``StateStore.users``): a
revocation received by intake must win over credentials that are still stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .aws import client, error_code
from .event_types import is_x_id
from .xapi import UserCredentials


def secret_prefix(stack_name: str) -> str:
    return f"xrelay/{stack_name}/users/"


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

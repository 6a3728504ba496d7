"""A small client for the X API v2 endpoints that manage webhooks and subscriptions.

It covers the V2 Webhooks API (``/2/webhooks``), Account Activity API subscriptions
(``/2/account_activity``, AAA) and X Activity API subscriptions (``/2/activity/subscriptions``,
XAA): what a reconcile needs to make X match a declared state. The receiver Lambdas never import
it, so httpx and oauthlib stay off the event path.

Auth, per endpoint, as X documents it:

* app-only bearer token: everything except the calls below;
* the subscribed user's context (OAuth 1.0a, or an OAuth 2.0 user token) to subscribe a user to
  AAA; to create an XAA subscription to a private event type, the caller passes that user's
  credentials (public event types work with the app's bearer token);
* the app's OAuth 2.0 client (HTTP Basic ``client_id:client_secret`` for a confidential client,
  ``client_id`` in the form body for a public one) to refresh a user's OAuth 2.0 token at
  ``POST /2/oauth2/token``, whose answers and errors are OAuth's (RFC 6749 §5), not v2 problems.

OAuth 1.0a requests are signed with oauthlib over the exact URL httpx sends (query included).
JSON bodies are not part of the OAuth 1.0a signature base string (RFC 5849 §3.4.1.3.1 takes only
form-encoded bodies), so the body goes on the wire exactly as serialised here.

Nothing is retried: a write that timed out may have happened, and only the caller (which can
list first) knows whether repeating it is safe. Secrets never appear in a ``repr`` or in an
exception message.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER
from oauthlib.oauth1 import Client as OAuth1Signer

from xrelay.events.event_types import is_x_id

DEFAULT_BASE_URL = "https://api.x.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
# X's own maximum page size for GET /2/activity/subscriptions: fewest calls against its 500/15 min budget.
MAX_XAA_PAGE_SIZE = 1000

_REPLAY_DATE = re.compile(r"^[0-9]{12}$")  # YYYYMMDDHHMM, UTC
_REDACTED = "<redacted>"
_SECONDS = re.compile(r"^[0-9]{1,10}$")
_OAUTH_ERROR = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # snake_case in practice (invalid_grant)


class Endpoint(StrEnum):
    """The endpoints this client calls; the value is also the key of :meth:`XApiClient.rate_limit`."""

    WEBHOOKS_LIST = "GET /2/webhooks"
    WEBHOOK_CREATE = "POST /2/webhooks"
    WEBHOOK_VALIDATE = "PUT /2/webhooks/:webhook_id"
    WEBHOOK_DELETE = "DELETE /2/webhooks/:webhook_id"
    WEBHOOK_REPLAY = "POST /2/webhooks/replay"
    AAA_LIST = "GET /2/account_activity/webhooks/:webhook_id/subscriptions/all/list"
    AAA_SUBSCRIBE = "POST /2/account_activity/webhooks/:webhook_id/subscriptions/all"
    AAA_UNSUBSCRIBE = "DELETE /2/account_activity/webhooks/:webhook_id/subscriptions/:user_id/all"
    XAA_LIST = "GET /2/activity/subscriptions"
    XAA_CREATE = "POST /2/activity/subscriptions"
    XAA_UPDATE = "PUT /2/activity/subscriptions/:subscription_id"
    XAA_DELETE = "DELETE /2/activity/subscriptions/:subscription_id"
    OAUTH2_TOKEN = "POST /2/oauth2/token"
    USERS_ME = "GET /2/users/me"

    @property
    def method(self) -> str:
        return self.value.split(" ", 1)[0]

    def path(self, **ids: str) -> str:
        path = self.value.split(" ", 1)[1]
        for name, value in ids.items():
            path = path.replace(f":{name}", _numeric_id(value, name))
        return path


# --- credentials ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppCredentials:
    """The X app's keys. The consumer key/secret sign OAuth 1.0a requests; the bearer token is app-only auth.

    ``client_id``/``client_secret`` are the app's OAuth 2.0 client, needed only to refresh users'
    OAuth 2.0 tokens: a confidential client has both, a public client only the id.
    """

    consumer_key: str
    consumer_secret: str
    bearer_token: str
    client_id: str = ""
    client_secret: str = ""

    def __repr__(self) -> str:  # never print secret material, even in a traceback
        return ("AppCredentials(consumer_key=<redacted>, consumer_secret=<redacted>, bearer_token=<redacted>, "
                "client_id=<redacted>, client_secret=<redacted>)")

    def secrets(self) -> tuple[str, ...]:
        values = (self.consumer_key, self.consumer_secret, self.bearer_token, self.client_id, self.client_secret)
        return tuple(secret for secret in values if secret)


@dataclass(frozen=True)
class UserCredentials:
    """One user's authorisation of the app: an OAuth 1.0a token pair, or an OAuth 2.0 user access token.

    Build with :meth:`oauth1` or :meth:`oauth2`. ``user_id`` is optional and only labels the user.
    """

    kind: Literal["oauth1", "oauth2"]
    access_token: str
    access_token_secret: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("oauth1", "oauth2"):
            raise ValueError(f"unknown user credential kind {self.kind!r}")
        if not self.access_token:
            raise ValueError("access_token is empty")
        if self.kind == "oauth1" and not self.access_token_secret:
            raise ValueError("OAuth 1.0a user credentials need access_token_secret")
        if self.kind == "oauth2" and self.access_token_secret is not None:
            raise ValueError("OAuth 2.0 user credentials have no access_token_secret")

    @classmethod
    def oauth1(cls, access_token: str, access_token_secret: str, *, user_id: str | None = None) -> UserCredentials:
        return cls("oauth1", access_token, access_token_secret, user_id)

    @classmethod
    def oauth2(cls, access_token: str, *, user_id: str | None = None) -> UserCredentials:
        return cls("oauth2", access_token, None, user_id)

    def __repr__(self) -> str:
        return f"UserCredentials(kind={self.kind!r}, user_id={self.user_id!r}, access_token=<redacted>)"

    def secrets(self) -> tuple[str, ...]:
        return tuple(secret for secret in (self.access_token, self.access_token_secret) if secret)


@dataclass(frozen=True)
class OAuth2Token:
    """What X's token endpoint hands back for a refresh. ``refresh_token`` is None without ``offline.access``.

    X rotates refresh tokens: the one that was spent to get this is dead, so persist this one at once.
    """

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    scope: str | None = None

    def __repr__(self) -> str:
        refresh = "<redacted>" if self.refresh_token else None
        return (f"OAuth2Token(access_token=<redacted>, refresh_token={refresh}, expires_at={self.expires_at!r}, "
                f"scope={self.scope!r})")

    def secrets(self) -> tuple[str, ...]:
        return tuple(secret for secret in (self.access_token, self.refresh_token) if secret)


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    valid: bool | None = None
    created_at: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Webhook:
        valid = data.get("valid")
        return cls(
            id=str(data["id"]),
            url=str(data.get("url", "")),
            valid=valid if isinstance(valid, bool) else None,
            created_at=_optional_str(data.get("created_at")),
        )


@dataclass(frozen=True)
class XaaSubscription:
    subscription_id: str
    event_type: str
    filter: dict[str, str]
    tag: str | None = None
    webhook_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> XaaSubscription:
        # X's docs show ``subscription_id``; accept a bare ``id`` too rather than lose the object.
        subscription_id = data.get("subscription_id", data.get("id"))
        if subscription_id is None:
            raise KeyError("subscription_id")
        raw_filter = data.get("filter")
        return cls(
            subscription_id=str(subscription_id),
            event_type=str(data.get("event_type", "")),
            filter={str(k): str(v) for k, v in raw_filter.items()} if isinstance(raw_filter, Mapping) else {},
            tag=_optional_str(data.get("tag")),
            webhook_id=_optional_str(data.get("webhook_id")),
            created_at=_optional_str(data.get("created_at")),
            updated_at=_optional_str(data.get("updated_at")),
        )


@dataclass(frozen=True)
class RateLimit:
    """The latest ``x-rate-limit-*`` headers X sent for one endpoint."""

    limit: int | None
    remaining: int | None
    reset_at: datetime | None

    def exhausted(self, now: datetime | None = None) -> bool:
        """True while X has said there is nothing left in the current window."""
        if self.remaining is None or self.remaining > 0:
            return False
        return self.reset_at is None or self.reset_at > (now or datetime.now(UTC))


# --- errors --------------------------------------------------------------------------------------

# X's error names, as its docs list them per endpoint. Found anywhere in an error body (any case or
# spelling separator), one of these is the ``code``. X's spec puts them first in the ``message`` of its
# ``Error`` body (``{"code": 400, "message": "CrcValidationFailed: ..."}``); in the field they have also
# come in errors[].message, in a title, or in a problem ``type`` URL, depending on the endpoint and the day.
KNOWN_ERROR_CODES = (
    "DuplicateSubscriptionFailed",
    "SubscriptionLimitExceeded",
    "SubscriptionNotFound",
    "CrcValidationFailed",
    "WebhookIdInvalid",
    "WebhookLimitExceeded",
    "UrlValidationFailed",
    "DuplicateUrlFailed",
    "ReplayConflictError",
    "QueryParamInvalid",
)


class XApiError(Exception):
    """X answered with an error (or not at all: see :class:`XApiTransportError`).

    X's spec declares three failure shapes for every endpoint this client calls, and X's pages show
    more; all are read: an ``Error`` ``{code, message}`` with X's named reason first in ``message``;
    a ``Problem`` (``type``/``title``/``detail``, as ``application/problem+json``); and a ``200``
    that carries ``errors`` and no ``data`` (then ``status`` is 200: X applied nothing).

    ``code`` is a short CamelCase name (one of :data:`KNOWN_ERROR_CODES` when X used one, else the
    ``Name:`` that starts a message, else derived from the problem type or title, else
    ``HTTP<status>``), or, from the OAuth 2.0 token endpoint, OAuth's own snake_case ``error``
    (``invalid_request``, ``unauthorized_client``); ``x_code`` is the integer ``code`` of X's
    ``Error`` body; ``title``/``type``/``detail`` are X's own problem fields when present (``detail``
    falls back to the ``Error``'s message and to OAuth's ``error_description``), ``messages`` the
    messages X gave (``Error.message`` and ``errors[].message``: where X says what was wrong).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        code: str,
        endpoint: str | None = None,
        title: str | None = None,
        type: str | None = None,
        detail: str | None = None,
        messages: tuple[str, ...] = (),
        x_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.x_code = x_code
        self.endpoint = endpoint
        self.title = title
        self.type = type
        self.detail = detail
        self.messages = messages

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, endpoint={self.endpoint!r})"


class RateLimited(XApiError):
    """HTTP 429: the endpoint's budget is spent until ``reset_at``."""

    def __init__(self, message: str, *, reset_at: datetime | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reset_at = reset_at


class XApiTransportError(XApiError):
    """No HTTP answer (connect/read timeout, network). For a write, X may or may not have applied it."""


# --- the client ----------------------------------------------------------------------------------


class XApiClient:
    """Synchronous X API v2 client for webhooks, AAA and XAA subscriptions. Use as a context manager."""

    def __init__(
        self,
        app: AppCredentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not app.bearer_token:
            raise ValueError("AppCredentials.bearer_token is empty")
        self._app = app
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,  # a redirect would re-send our Authorization header somewhere else
            headers={"User-Agent": "xrelay"},
        )
        self._rate_limits: dict[str, RateLimit] = {}

    def __repr__(self) -> str:
        return f"XApiClient(base_url={str(self._http.base_url)!r})"

    def __enter__(self) -> XApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # rate limits ---------------------------------------------------------------------------------

    def rate_limit(self, endpoint: Endpoint | str) -> RateLimit | None:
        """The latest rate-limit headers seen for ``endpoint`` (None before the first call)."""
        return self._rate_limits.get(str(endpoint))

    @property
    def rate_limits(self) -> dict[str, RateLimit]:
        return dict(self._rate_limits)

    # webhooks ------------------------------------------------------------------------------------

    def list_webhooks(self) -> list[Webhook]:
        # Ask for every field: without webhook_config.fields X may leave out ``valid``.
        body = self._call(Endpoint.WEBHOOKS_LIST, params={"webhook_config.fields": "created_at,id,url,valid"},
                          listing=True)
        return [Webhook.from_json(item) for item in _as_list(body.get("data")) if isinstance(item, Mapping)]

    def create_webhook(self, url: str) -> Webhook:
        """Register ``url``; X runs a CRC against it first and refuses (``CrcValidationFailed``) if it fails."""
        body = self._call(Endpoint.WEBHOOK_CREATE, json_body={"url": url})
        data = body.get("data")
        if not isinstance(data, Mapping) or "id" not in data:
            raise _unexpected(Endpoint.WEBHOOK_CREATE, "no data.id in the response")
        return Webhook.from_json({"url": url, **data})

    def validate_webhook(self, webhook_id: str) -> bool:
        """Ask X to re-run the CRC now (PUT); True if the webhook is valid afterwards.

        X documents both ``{"data":{"valid":false}}`` and a ``CrcValidationFailed`` error (in any of
        the shapes :class:`XApiError` reads) for a failed check; both mean "not valid" and return False.
        """
        try:
            body = self._call(Endpoint.WEBHOOK_VALIDATE, path_ids={"webhook_id": webhook_id})
        except XApiError as exc:
            if exc.code == "CrcValidationFailed":
                return False
            raise
        data = body.get("data")
        return bool(isinstance(data, Mapping) and data.get("valid") is True)

    def delete_webhook(self, webhook_id: str) -> None:
        body = self._call(Endpoint.WEBHOOK_DELETE, path_ids={"webhook_id": webhook_id})
        _require_flag(Endpoint.WEBHOOK_DELETE, body, "deleted", True)

    def create_replay_job(self, webhook_id: str, from_time: datetime | str, to_time: datetime | str) -> str:
        """Ask X to re-deliver the webhook's events between two minutes (UTC, within the last 24 h); the job id."""
        payload = {
            "webhook_id": _numeric_id(webhook_id, "webhook_id"),
            "from_date": replay_date(from_time),
            "to_date": replay_date(to_time),
        }
        body = self._call(Endpoint.WEBHOOK_REPLAY, json_body=payload)
        data = body.get("data")
        # OAS nests the job under ``data``; the older AAA replay answered with a top-level job_id.
        job_id = data.get("job_id") if isinstance(data, Mapping) else body.get("job_id")
        if job_id is None:
            raise _unexpected(Endpoint.WEBHOOK_REPLAY, "no job_id in the response")
        return str(job_id)

    # Account Activity API ------------------------------------------------------------------------

    def list_aaa_subscriptions(self, webhook_id: str) -> list[str]:
        """The user ids subscribed to the webhook."""
        body = self._call(Endpoint.AAA_LIST, path_ids={"webhook_id": webhook_id}, listing=True)
        data = body.get("data")
        subscriptions = data.get("subscriptions") if isinstance(data, Mapping) else None
        return [
            str(item["user_id"])
            for item in _as_list(subscriptions)
            if isinstance(item, Mapping) and item.get("user_id") is not None
        ]

    def subscribe_aaa(self, webhook_id: str, user: UserCredentials) -> None:
        """Subscribe ``user`` (whose credentials authorise the call) to the webhook's account activity."""
        # OAS marks a JSON body required, with the empty schema {}.
        body = self._call(Endpoint.AAA_SUBSCRIBE, path_ids={"webhook_id": webhook_id}, json_body={}, user=user)
        _require_flag(Endpoint.AAA_SUBSCRIBE, body, "subscribed", True)

    def unsubscribe_aaa(self, webhook_id: str, user_id: str) -> None:
        body = self._call(Endpoint.AAA_UNSUBSCRIBE, path_ids={"webhook_id": webhook_id, "user_id": user_id})
        _require_flag(Endpoint.AAA_UNSUBSCRIBE, body, "subscribed", False)

    # X Activity API ------------------------------------------------------------------------------

    def list_xaa_subscriptions(
        self, *, page_size: int = MAX_XAA_PAGE_SIZE, user: UserCredentials | None = None
    ) -> list[XaaSubscription]:
        """Every XAA subscription of the app, following ``meta.next_token`` to the last page."""
        if not 1 <= page_size <= MAX_XAA_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_XAA_PAGE_SIZE}")
        subscriptions: list[XaaSubscription] = []
        seen_tokens: set[str] = set()
        params: dict[str, str] = {"max_results": str(page_size)}
        while True:
            body = self._call(Endpoint.XAA_LIST, params=params, user=user, listing=True)
            subscriptions.extend(_parse_subscriptions(Endpoint.XAA_LIST, body.get("data")))
            meta = body.get("meta")
            next_token = meta.get("next_token") if isinstance(meta, Mapping) else None
            if not next_token:
                return subscriptions
            if next_token in seen_tokens:  # X handing back a token twice would loop forever
                raise _unexpected(Endpoint.XAA_LIST, "pagination returned a token it had already returned")
            seen_tokens.add(next_token)
            params = {"max_results": str(page_size), "pagination_token": str(next_token)}

    def create_xaa_subscription(
        self,
        event_type: str,
        filter: Mapping[str, str],
        *,
        tag: str | None = None,
        webhook_id: str | None = None,
        user: UserCredentials | None = None,
    ) -> XaaSubscription:
        """Create a subscription. Pass ``user`` (the filtered user's credentials) for private event types."""
        payload: dict[str, Any] = {"event_type": event_type, "filter": dict(filter)}
        if tag is not None:
            payload["tag"] = tag
        if webhook_id is not None:
            payload["webhook_id"] = _numeric_id(webhook_id, "webhook_id")
        body = self._call(Endpoint.XAA_CREATE, json_body=payload, user=user)
        created = _parse_subscriptions(Endpoint.XAA_CREATE, body.get("data"))
        if not created:
            raise _unexpected(Endpoint.XAA_CREATE, "no subscription in the response")
        return created[0]

    def update_xaa_subscription(
        self, subscription_id: str, *, tag: str | None = None, webhook_id: str | None = None
    ) -> XaaSubscription | None:
        """Change a subscription's tag and/or webhook (X allows nothing else); the updated one if X echoes it."""
        payload: dict[str, Any] = {}
        if tag is not None:
            payload["tag"] = tag
        if webhook_id is not None:
            payload["webhook_id"] = _numeric_id(webhook_id, "webhook_id")
        if not payload:
            raise ValueError("nothing to update: give tag and/or webhook_id")
        body = self._call(Endpoint.XAA_UPDATE, path_ids={"subscription_id": subscription_id}, json_body=payload)
        updated = _parse_subscriptions(Endpoint.XAA_UPDATE, body.get("data"))
        return updated[0] if updated else None

    def delete_xaa_subscription(self, subscription_id: str) -> None:
        body = self._call(Endpoint.XAA_DELETE, path_ids={"subscription_id": subscription_id})
        _require_flag(Endpoint.XAA_DELETE, body, "deleted", True)

    # OAuth 2.0 user tokens ------------------------------------------------------------------------

    def refresh_oauth2_token(self, refresh_token: str, *, now: datetime | None = None) -> OAuth2Token:
        """Trade a user's refresh token for a new access token (and, X rotating them, a new refresh token).

        The refresh token passed in is spent once X has answered: store the returned one before doing
        anything else. X refuses a used, revoked or unknown refresh token with 400 ``invalid_request``
        and bad client credentials with 401 ``unauthorized_client``; either comes back as an
        :class:`XApiError` whose ``code`` is X's OAuth ``error``. ``expires_at`` counts ``expires_in``
        from ``now`` (default: the time of the request, so it errs early).
        """
        if not refresh_token:
            raise ValueError("refresh_token is empty")
        if not self._app.client_id:
            raise ValueError("refreshing an OAuth 2.0 token needs AppCredentials.client_id")
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime")
        now = now or datetime.now(UTC)
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if not self._app.client_secret:  # a public client names itself in the body; a confidential one in Basic
            form["client_id"] = self._app.client_id
        body = self._call(Endpoint.OAUTH2_TOKEN, form_body=form, client_auth=True, redact=(refresh_token,))
        return _oauth2_token(body, now)

    def exchange_oauth2_code(self, code: str, redirect_uri: str, code_verifier: str, *,
                             now: datetime | None = None) -> OAuth2Token:
        """Trade an authorization code (OAuth 2.0 authorization code flow with PKCE) for a user's tokens.

        ``redirect_uri`` and ``code_verifier`` must be those of the authorize request. Client auth as
        for :meth:`refresh_oauth2_token`; errors are X's OAuth ``error`` codes in :class:`XApiError`.
        """
        if not code or not code_verifier:
            raise ValueError("an authorization code and its PKCE code_verifier are needed")
        if not self._app.client_id:
            raise ValueError("the authorization code flow needs AppCredentials.client_id")
        now = now or datetime.now(UTC)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier}
        if not self._app.client_secret:
            form["client_id"] = self._app.client_id
        body = self._call(Endpoint.OAUTH2_TOKEN, form_body=form, client_auth=True, redact=(code, code_verifier))
        return _oauth2_token(body, now)

    def me(self, user: UserCredentials) -> str:
        """The id of the user ``user``'s token belongs to (GET /2/users/me)."""
        data = self._call(Endpoint.USERS_ME, user=user).get("data")
        if not isinstance(data, Mapping) or not str(data.get("id", "")).isdigit():
            raise _unexpected(Endpoint.USERS_ME, "no data.id in the response")
        return str(data["id"])

    # plumbing ------------------------------------------------------------------------------------

    def _call(
        self,
        endpoint: Endpoint,
        *,
        path_ids: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: Mapping[str, Any] | None = None,
        form_body: Mapping[str, str] | None = None,
        user: UserCredentials | None = None,
        client_auth: bool = False,
        redact: tuple[str, ...] = (),
        listing: bool = False,
    ) -> dict[str, Any]:
        """One request, no retries. The parsed JSON body of a 2xx answer ({} for 204/empty).

        Auth is the user's context when ``user`` is given, the app's OAuth 2.0 client with
        ``client_auth`` (the token endpoint), else the app's bearer token. ``redact``: more secret
        values (beyond the credentials in use) to keep out of an error.

        A 2xx that carries ``errors`` and no ``data`` is X's failure inside a 200: an :class:`XApiError`.
        With ``listing`` (a list call) a failure must never pass for an empty list: any ``errors``
        (the list may be partial) and an answer with no JSON body at all are errors too.
        """
        if json_body is not None and form_body is not None:
            raise ValueError("a request has one body: JSON or form")
        if form_body is not None and not client_auth:
            # OAuth 1.0a would have to sign form parameters; only the token endpoint takes a form.
            raise ValueError("form bodies are only sent to the OAuth 2.0 token endpoint")
        headers: dict[str, str] = {"Accept": "application/json"}
        content: bytes | None = None
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif form_body is not None:
            content = urlencode(form_body).encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = self._http.build_request(
            endpoint.method, endpoint.path(**(path_ids or {})), params=params, content=content, headers=headers
        )
        authorization = self._client_authorization() if client_auth else self._authorization(request, user)
        if authorization is not None:
            request.headers["Authorization"] = authorization
            if client_auth:  # the Basic credential is the client secret, merely base64-encoded
                redact += (authorization.split(" ", 1)[1],)
        secrets = self._app.secrets() + (user.secrets() if user else ()) + redact

        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise XApiTransportError(
                f"X API {endpoint.value}: no response ({type(exc).__name__})",
                status=None,
                code="TransportError",
                endpoint=endpoint.value,
            ) from None
        self._record_rate_limit(endpoint, response)

        if response.is_success:
            if response.status_code == 204 or not response.content.strip():
                if listing:
                    raise _unexpected(endpoint, f"HTTP {response.status_code} with no body for a list")
                return {}
            try:
                body = response.json()
            except ValueError:
                raise _unexpected(endpoint, f"HTTP {response.status_code} with a body that is not JSON") from None
            if not isinstance(body, dict):
                raise _unexpected(endpoint, "the JSON body is not an object")
            if _failed_in_success(body, listing):
                raise _error_from_response(endpoint, response, secrets, self.rate_limit(endpoint), body=body)
            return body
        raise _error_from_response(endpoint, response, secrets, self.rate_limit(endpoint))

    def _authorization(self, request: httpx.Request, user: UserCredentials | None) -> str:
        if user is None:
            return f"Bearer {self._app.bearer_token}"
        if user.kind == "oauth2":
            return f"Bearer {user.access_token}"
        if not self._app.consumer_key or not self._app.consumer_secret:
            raise ValueError("OAuth 1.0a signing needs AppCredentials.consumer_key and consumer_secret")
        signer = OAuth1Signer(
            self._app.consumer_key,
            client_secret=self._app.consumer_secret,
            resource_owner_key=user.access_token,
            resource_owner_secret=user.access_token_secret,
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )
        # Sign the URL httpx will send (so the query parameters are in the base string) and not the
        # JSON body, which OAuth 1.0a leaves out; the request keeps its body untouched.
        _, signed_headers, _ = signer.sign(str(request.url), http_method=request.method, body=None, headers={})
        return signed_headers["Authorization"]

    def _client_authorization(self) -> str | None:
        """HTTP Basic ``client_id:client_secret`` for a confidential client (as X documents it); None if public."""
        if not self._app.client_secret:
            return None
        pair = f"{self._app.client_id}:{self._app.client_secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _record_rate_limit(self, endpoint: Endpoint, response: httpx.Response) -> None:
        limit = _int_header(response, "x-rate-limit-limit")
        remaining = _int_header(response, "x-rate-limit-remaining")
        reset = _int_header(response, "x-rate-limit-reset")
        if limit is None and remaining is None and reset is None:
            return
        reset_at = datetime.fromtimestamp(reset, UTC) if reset is not None else None
        self._rate_limits[endpoint.value] = RateLimit(limit=limit, remaining=remaining, reset_at=reset_at)


# --- helpers -------------------------------------------------------------------------------------


def same_url(a: str, b: str) -> bool:
    """Whether two webhook URLs are one: X echoes the URL it was given, and schemes and hosts are
    case-insensitive, so compare ignoring their case only. The reconcile and the replay both find
    our webhook among X's this way."""
    def norm(url: str) -> tuple[str, str]:
        scheme, _, rest = url.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}", slash + path
    return norm(a) == norm(b)


def replay_date(value: datetime | str) -> str:
    """``YYYYMMDDHHMM`` in UTC, as the replay endpoint wants it. Naive datetimes are refused (whose time?)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("replay times must be timezone-aware datetimes")
        return value.astimezone(UTC).strftime("%Y%m%d%H%M")
    if not _REPLAY_DATE.match(value):
        raise ValueError("replay dates are YYYYMMDDHHMM (UTC)")
    return value


def _numeric_id(value: str, name: str) -> str:
    # X's ids are digits; checking here also keeps anything else from being spliced into a URL path.
    if not is_x_id(value):
        raise ValueError(f"{name} must be 1-19 digits")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _parse_subscriptions(endpoint: Endpoint, data: Any) -> list[XaaSubscription]:
    """XAA subscriptions from ``data`` in any of the shapes X documents.

    Create is shown as a ``data`` list, as a flat ``data`` object and as ``data.subscription``;
    update as flat ``data`` and ``data.subscription``; list as a ``data`` list.
    """
    items = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
    subscriptions = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("subscription"), Mapping):
            item = item["subscription"]
        if not isinstance(item, Mapping) or ("subscription_id" not in item and "id" not in item):
            continue
        subscriptions.append(XaaSubscription.from_json(item))
    return subscriptions


def _oauth2_token(body: Mapping[str, Any], now: datetime) -> OAuth2Token:
    """The token endpoint's answer (RFC 6749 §5.1). Messages name fields, never values: they are tokens."""
    endpoint = Endpoint.OAUTH2_TOKEN
    access_token, refresh_token = body.get("access_token"), body.get("refresh_token")
    if not isinstance(access_token, str) or not access_token:
        raise _unexpected(endpoint, "no access_token in the response")
    if str(body.get("token_type", "bearer")).lower() != "bearer":
        raise _unexpected(endpoint, "token_type is not bearer")
    if refresh_token is not None and (not isinstance(refresh_token, str) or not refresh_token):
        raise _unexpected(endpoint, "refresh_token is not a token")
    expires_in = body.get("expires_in")
    if expires_in is None:
        expires_at = None
    elif isinstance(expires_in, int | str) and not isinstance(expires_in, bool) and _SECONDS.match(str(expires_in)):
        expires_at = now + timedelta(seconds=int(expires_in))
    else:
        raise _unexpected(endpoint, "expires_in is not a number of seconds")
    return OAuth2Token(access_token, refresh_token, expires_at, _optional_str(body.get("scope")))


def _failed_in_success(body: Mapping[str, Any], listing: bool) -> bool:
    """X's failure inside a 2xx: ``errors`` and no ``data`` (for a list: any ``errors`` at all)."""
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors:
        return False
    return listing or body.get("data") is None


def _require_flag(endpoint: Endpoint, body: Mapping[str, Any], name: str, expected: bool) -> None:
    """Accept 204/empty and ``{"data":{name: expected}}``; an explicit other value is an error."""
    data = body.get("data")
    if isinstance(data, Mapping) and name in data and data[name] is not expected:
        raise _unexpected(endpoint, f"X answered data.{name}={data[name]!r}")


def _unexpected(endpoint: Endpoint, what: str) -> XApiError:
    return XApiError(
        f"X API {endpoint.value}: unexpected response: {what}", status=None, code="UnexpectedResponse",
        endpoint=endpoint.value,
    )


def _int_header(response: httpx.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _camel(text: str) -> str:
    return "".join(word[:1].upper() + word[1:] for word in re.split(r"[^A-Za-z0-9]+", text) if word)


def error_code(status: int, body: Any) -> str:
    """A short name for X's error, found tolerantly in the shapes X uses.

    Order: OAuth's ``error`` as is (the token endpoint: ``invalid_request``, ``unauthorized_client``…);
    a known X error name anywhere in the body; a ``Name: text`` prefix in the ``Error``'s ``message``
    or in errors[].message;
    the problem ``type`` URL's last segment (``…/problems/invalid-request`` → ``InvalidRequest``);
    the title (``Too Many Requests`` → ``TooManyRequests``); else ``HTTP<status>``.
    """
    if not isinstance(body, Mapping):
        return f"HTTP{status}"
    oauth_error = body.get("error")  # RFC 6749 §5.2; v2 endpoints say ``errors`` (plural), never this
    if isinstance(oauth_error, str) and _OAUTH_ERROR.match(oauth_error):
        return oauth_error
    problems = [p for p in _as_list(body.get("errors")) if isinstance(p, Mapping)]
    texts = [str(p[key]) for p in problems for key in ("message", "title", "type", "detail") if p.get(key)]
    texts += [str(body[key]) for key in ("message", "title", "type", "detail") if body.get(key)]
    squashed = [_squash(text) for text in texts]
    for known in KNOWN_ERROR_CODES:
        if any(_squash(known) in text for text in squashed):
            return known
    for source in (body, *problems):  # the spec's Error puts X's reason first in its message
        prefix = re.match(r"^([A-Z][A-Za-z0-9]+):", str(source.get("message", "")))
        if prefix:
            return prefix.group(1)
    for source in (body, *problems):
        problem_type = source.get("type")
        if isinstance(problem_type, str) and problem_type and problem_type != "about:blank":
            return _camel(problem_type.rstrip("/").rsplit("/", 1)[-1])
    for source in (body, *problems):
        title = source.get("title")
        if isinstance(title, str) and _camel(title):
            return _camel(title)
    return f"HTTP{status}"


def _error_from_response(
    endpoint: Endpoint,
    response: httpx.Response,
    secrets: tuple[str, ...],
    rate_limit: RateLimit | None,
    *,
    body: Any = None,
) -> XApiError:
    """The error X answered: any status, or a 2xx whose parsed ``body`` carried only ``errors``."""
    if body is None:
        try:
            body = response.json()
        except ValueError:
            body = None
    code = error_code(response.status_code, body)
    title = type_ = detail = None
    x_code = None
    messages: list[str] = []
    if isinstance(body, Mapping):
        title, type_, detail = (_optional_str(body.get(key)) for key in ("title", "type", "detail"))
        problems = [p for p in _as_list(body.get("errors")) if isinstance(p, Mapping)]
        messages = [str(source["message"]) for source in (body, *problems)
                    if isinstance(source.get("message"), str) and source["message"]]
        if isinstance(body.get("code"), int) and not isinstance(body.get("code"), bool):
            x_code = body["code"]
        if problems:
            title = title or _optional_str(problems[0].get("title"))
            type_ = type_ or _optional_str(problems[0].get("type"))
            detail = detail or _optional_str(problems[0].get("detail"))
        detail = detail or _optional_str(body.get("message"))  # the spec's Error: its message is all it says
        detail = detail or _optional_str(body.get("error_description"))  # the token endpoint's OAuth error
    elif response.content:
        detail = response.text[:200]  # not JSON (a proxy's HTML page, say): a little context
    title, type_, detail = (_redact(value, secrets) for value in (title, type_, detail))
    messages = [_redact(m, secrets) or "" for m in messages]
    # The most specific text X gave: errors[].message names the bad parameter, detail is often generic.
    # A problem inside a 200 says more in its detail than anywhere else.
    explanation = "; ".join(messages[:3]) or detail
    message = f"X API {endpoint.value}: HTTP {response.status_code} {code}"
    if response.is_success:
        message = f"X API {endpoint.value}: HTTP {response.status_code} with errors and no data: {code}"
    if explanation:
        message += f": {explanation[:300]}"
    fields: dict[str, Any] = dict(
        status=response.status_code,
        code=code,
        endpoint=endpoint.value,
        title=title,
        type=type_,
        detail=detail,
        messages=tuple(messages),
        x_code=x_code,
    )
    if response.status_code == 429:
        return RateLimited(message, reset_at=rate_limit.reset_at if rate_limit else None, **fields)
    return XApiError(message, **fields)


def _redact(text: str | None, secrets: tuple[str, ...]) -> str | None:
    # X has no reason to echo credentials, but an error message ends up in logs: make sure.
    if text is None:
        return None
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    return text


__all__ = [
    "DEFAULT_BASE_URL",
    "KNOWN_ERROR_CODES",
    "AppCredentials",
    "Endpoint",
    "OAuth2Token",
    "RateLimit",
    "RateLimited",
    "UserCredentials",
    "Webhook",
    "XApiClient",
    "XApiError",
    "XApiTransportError",
    "XaaSubscription",
    "error_code",
    "replay_date",
]

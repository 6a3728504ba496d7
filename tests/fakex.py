"""An in-process fake of X's webhook and subscription API, strict the way X is.

``FakeX`` is an ``httpx.MockTransport`` handler holding X's state for one app: webhooks, AAA
subscriptions per webhook, XAA subscriptions and replay jobs. It checks requests as X would:

* auth per endpoint: the app's bearer token, or a user's context. OAuth 1.0a signatures are
  verified independently of any client, with oauthlib's RFC 5849 signature functions
  (collect_parameters, normalize_parameters, signature_base_string, HMAC-SHA1), against the
  app's consumer secret and the user's token secret (plus timestamp window and nonce reuse);
* request shapes: unknown query parameters and body keys are refused, ids, tags, filters and
  event types are validated as X's OpenAPI describes them;
* conflicts and limits: duplicates, subscription/webhook limits, one replay job at a time per
  webhook (409 ``ReplayConflictError``), and per-endpoint rate-limit budgets answered with 429 and
  ``x-rate-limit-*`` headers;
* replay windows: ``YYYYMMDDHHMM``, ``from_date`` within 24 hours of ``clock``, ``to_date`` after it,
  neither in the future (``QueryParamInvalid``); :meth:`FakeX.complete_replay` ends a job
  ``Complete`` or ``Incomplete`` and hands back the ``replay_job_status`` delivery X would POST;
  what a job re-delivers is what X *attempted* to deliver in its window (:meth:`FakeX.attempted`,
  :meth:`FakeX.replay_deliveries`): "a recovery tool and not a backfill tool" (L11), XAA copies
  marked ``meta.replay`` (BOOK), AAA copies unmarked;
* OAuth 2.0 user tokens: they expire (``expires_in`` seconds of ``clock``), and
  ``POST /2/oauth2/token`` refreshes them (refresh grant only) as X does: a strict form body,
  client auth (HTTP Basic for a confidential client, ``client_id`` in the body for a public one,
  i.e. when ``client_secret`` is ""), rotation (a spent refresh token is refused, the access token
  it replaced stops working), and OAuth error bodies (``error``/``error_description``).

Every answer is one X's OpenAPI spec (tests/spec/x-openapi.json) declares for the operation: an
``Error`` ``{"code", "message"}`` (``application/json``) whose ``message`` starts with X's named reason
(``"CrcValidationFailed: ..."``) for X's named errors, auth and rate limits; a ``Problem`` subtype
(``application/problem+json``, ``type`` ``https://api.x.com/2/problems/...``, ``title``, ``detail``)
for invalid requests and unknown resources; success bodies with exactly the spec's fields. The
spec's ``Error.code`` is an integer it does not explain: the fake puts the HTTP status there.

Each exchange is checked against the spec as it happens (:mod:`xspec`, openapi-core): the request,
when the X client sent it (User-Agent ``xrelay``; tests that poke the fake with raw requests are
checking the fake's own refusals), and every answer the fake gives to an operation the spec has.
A mismatch is recorded in ``spec_violations`` and in :data:`SPEC_VIOLATIONS`, which
``tests/conftest.py`` turns into a failure of the running test.

Where X's pages show other shapes than the spec, knobs let a test pick them (AAA 200 vs 204, the
three XAA create shapes, D-XQ's ``meta.total_subscriptions``, the field's error shapes with
``about:blank`` and ``api.twitter.com`` problems). An answer a knob made off-spec on purpose is marked
(:func:`prose`) and is not held to the spec; everything else still is. PUT webhook answering
``valid:false`` vs ``CrcValidationFailed`` are both spec shapes. ``errors_in_200`` makes an endpoint
fail the way the spec allows on every endpoint: a 200 carrying ``errors`` and no ``data``.
Everything received is logged in ``requests``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from oauthlib.oauth1.rfc5849 import signature as oauth1_signature
from oauthlib.oauth1.rfc5849 import utils as oauth1_utils

from xrelay.events.event_types import XAA_ALIASES, XAA_EVENT_TYPES, canonical_xaa_type
from xrelay.subscriptions.xapi import AppCredentials, UserCredentials, XApiClient
from xspec import declares, request_errors, response_errors

BASE_URL = "https://api.x.com"
RATE_LIMIT_WINDOW_SECONDS = 15 * 60
OAUTH1_TIMESTAMP_TOLERANCE_SECONDS = 300
TOKEN_PATH = "/2/oauth2/token"
TOKEN_ENDPOINT = "POST /2/oauth2/token"
OAUTH2_TOKEN_SECONDS = 7200  # X: an OAuth 2.0 user access token lasts two hours
OAUTH2_SCOPE = "tweet.read users.read offline.access"  # offline.access: X issues a refresh token
USERS_ME_SCOPES = frozenset({"tweet.read", "users.read"})  # what GET /2/users/me's security asks of an OAuth 2.0 token

# How a replay job ends, and the description X sends with it (D-AAQ "Replay").
REPLAY_JOB_STATES = {
    "Complete": "Job completed successfully",
    "Incomplete": "Job failed to deliver all events, please retry your replay job",
}

# Subscribable event types: the OpenAPI enum, i.e. event_types.py without ``oauth.revoke`` (X
# documents and delivers it but leaves it out of the enum the endpoint validates against).
SUBSCRIBABLE_EVENT_TYPES = (XAA_EVENT_TYPES - {"oauth.revoke"}) | set(XAA_ALIASES)
# Event types the app's bearer token may subscribe to. X lists profile updates, post.create,
# post.delete and broadcast.start/end as public; follows, spaces and news carry no private data
# either. Everything else (DMs, chat, likes, mutes, blocks, mentions/replies/quotes/reposts,
# broadcast chat) needs the user's own context.
PUBLIC_EVENT_PREFIXES = ("profile.update.", "follow.", "spaces.")
PUBLIC_EVENT_TYPES = {"post.create", "post.delete", "broadcast.start", "broadcast.end", "news.new"}

# The spec's Problem subtypes (its discriminator's ``type`` URIs end in these).
PROBLEM_TYPES = ("resource-not-found", "invalid-request", "not-authorized-for-resource", "not-authorized-for-field",
                 "field-unauthorized", "field-hydration-failure", "resource-unavailable", "disallowed-resource",
                 "internal-error")
SPEC_PROBLEM_BASE = "https://api.x.com/2/problems/"
FIELD_PROBLEM_BASE = "https://api.twitter.com/2/problems/"  # what X's servers put in ``type`` in the field

# Every spec mismatch any FakeX saw, until tests/conftest.py collects them after each test.
SPEC_VIOLATIONS: list[SpecViolation] = []

_NUMERIC_ID = re.compile(r"^[0-9]{1,19}$")
_BASE32HEX = re.compile(r"^[0-9A-Va-v]{16,}$")

APP = "app"  # principal kinds
OAUTH1 = "oauth1"
OAUTH2 = "oauth2"
CLIENT = "client"  # the app's OAuth 2.0 client, at the token endpoint only

# The documented budgets per 15 minutes (per app for the bearer token, per user for user context).
# X does not document AAA v2 limits; these are the v1.1 enterprise ones. Nor does it document one for
# POST /2/oauth2/token: none by default, a test may set one (TOKEN_ENDPOINT).
DEFAULT_RATE_LIMITS = {
    "GET /2/webhooks": 450,
    "POST /2/webhooks": 450,
    "PUT /2/webhooks/:webhook_id": 450,
    "DELETE /2/webhooks/:webhook_id": 450,
    "POST /2/webhooks/replay": 100,
    "GET /2/account_activity/webhooks/:webhook_id/subscriptions/all/list": 50,
    "POST /2/account_activity/webhooks/:webhook_id/subscriptions/all": 500,
    "DELETE /2/account_activity/webhooks/:webhook_id/subscriptions/:user_id/all": 500,
    "GET /2/activity/subscriptions": 500,
    "POST /2/activity/subscriptions": 500,
    "PUT /2/activity/subscriptions/:subscription_id": 500,
    "DELETE /2/activity/subscriptions/:subscription_id": 500,
}


class _Refused(Exception):
    """Raised inside a handler to answer with ``response`` (an X error) at once."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


@dataclass(frozen=True)
class SpecViolation:
    side: str  # "request" (the client's) or "response" (the fake's)
    method: str
    path: str
    status: int
    errors: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.side} {self.method} {self.path} -> {self.status}:\n" + "\n".join(self.errors)


def prose(response: httpx.Response, variant: str) -> httpx.Response:
    """Mark an answer a knob made in a shape X's pages show but its spec does not declare."""
    response.extensions["prose_variant"] = variant
    return response


@dataclass
class FakeUser:
    user_id: str
    credentials: UserCredentials
    revoked: bool = False
    expires_at: float | None = None  # OAuth 2.0: in ``clock`` seconds; OAuth 1.0a tokens do not expire
    scope: frozenset[str] = frozenset()  # OAuth 2.0: the scopes the token was issued with


@dataclass
class RefreshGrant:
    """One refresh token: single use, and spending it retires ``user``'s access token (issued with it)."""

    user: FakeUser
    scope: str
    expires_in: int
    used: bool = False


@dataclass(frozen=True)
class Principal:
    kind: str  # APP, OAUTH1 or OAUTH2
    user_id: str | None = None


@dataclass
class ReceivedRequest:
    method: str
    path: str
    endpoint: str | None  # the route's key, e.g. "POST /2/activity/subscriptions"; None if unrouted
    auth: str  # "app", "oauth1", "oauth2", "none" or "invalid"
    user_id: str | None
    body: bytes
    query: dict[str, str]
    status: int = 0

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass
class FakeWebhook:
    id: str
    url: str
    valid: bool
    created_at: str


@dataclass
class ReplayJob:
    job_id: str
    webhook_id: str
    from_date: str
    to_date: str
    created_at: str
    state: str = "Running"


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    key: str
    handler: Callable[..., httpx.Response]
    auth: frozenset[str]
    query: frozenset[str] = frozenset()


@dataclass
class _Budget:
    window_start: float
    used: int = 0


@dataclass
class FakeX:
    """The fake. Build one per test, register users, point an ``XApiClient`` at :meth:`transport`."""

    consumer_key: str = "fake-consumer-key-0001"
    consumer_secret: str = field(default_factory=lambda: "cs-" + secrets.token_urlsafe(24))
    bearer_token: str = field(default_factory=lambda: "AAAA-app-bearer-" + secrets.token_urlsafe(24))
    # The app's OAuth 2.0 client; an empty client_secret makes it a public client.
    client_id: str = field(default_factory=lambda: "fake-client-" + secrets.token_urlsafe(12))
    client_secret: str = field(default_factory=lambda: "ocs-" + secrets.token_urlsafe(32))
    application_id: str = "29820954"
    clock: Callable[[], float] = time.time

    # knobs a test sets --------------------------------------------------------------------------
    crc_passes: bool = True  # whether X's CRC against the webhook URL succeeds (create and PUT)
    crc_failure_answer: str = "error"  # PUT when the CRC fails: "error" (CrcValidationFailed) or "valid_false"
    aaa_success_status: int = 200  # 200 with JSON (docs, OAS) or 204 (official sample code)
    xaa_create_shape: str = "nested"  # "nested" (data.subscription, OAS), "flat" or "list" (D-XQ examples)
    xaa_update_shape: str = "nested"  # "nested" (OAS) or "flat" (D-XQ)
    xaa_meta: bool = False  # D-XQ's meta.total_subscriptions on XAA create/update/delete (not in the spec)
    # "spec": Error/Problem as the spec declares them; "field": what X's servers are seen sending
    # (about:blank problems, api.twitter.com problem types, errors[].message, all as application/json).
    error_shapes: str = "spec"
    # Route keys (e.g. "GET /2/webhooks") answered with a 200 carrying ``errors`` and no ``data``.
    errors_in_200: set[str] = field(default_factory=set)
    check_spec: bool = True  # hold every exchange to the spec (the bench turns it off to time xrelay alone)
    page_size: int = 100  # the most a GET /2/activity/subscriptions page holds, whatever max_results says
    webhook_limit: int = 1  # Pay Per Use
    aaa_subscription_limit: int = 3  # Pay Per Use: unique subscribed users, account-wide
    xaa_subscription_limit: int = 1500  # self-serve
    rate_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    # X documents no minimum age of to_date for /2/webhooks/replay; the AAA route wanted 10 minutes.
    replay_min_age_seconds: int = 0

    # state --------------------------------------------------------------------------------------
    webhooks: dict[str, FakeWebhook] = field(default_factory=dict)
    aaa_subscriptions: dict[str, list[str]] = field(default_factory=dict)  # webhook id -> user ids
    xaa_subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> X's JSON object
    replay_jobs: dict[str, ReplayJob] = field(default_factory=dict)
    # (webhook id, attempted at [epoch seconds], body): every delivery X tried, whatever the answer
    attempts: list[tuple[str, float, bytes]] = field(default_factory=list)
    users: dict[str, FakeUser] = field(default_factory=dict)  # access token -> user
    refresh_grants: dict[str, RefreshGrant] = field(default_factory=dict)  # refresh token -> grant
    requests: list[ReceivedRequest] = field(default_factory=list)
    spec_violations: list[SpecViolation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1_900_000_000_000_000_001)
        self._seen_nonces: set[tuple[str, str]] = set()
        self._budgets: dict[tuple[str, Principal], _Budget] = {}
        self._routes = self._route_table()

    # --- test-side API ----------------------------------------------------------------------------

    @property
    def app(self) -> AppCredentials:
        return AppCredentials(self.consumer_key, self.consumer_secret, self.bearer_token, self.client_id,
                              self.client_secret)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def client(self, app: AppCredentials | None = None) -> XApiClient:
        return XApiClient(app or self.app, base_url=BASE_URL, transport=self.transport())

    def register_oauth1_user(self, user_id: str) -> UserCredentials:
        # X's OAuth 1.0a access tokens start with the user id.
        credentials = UserCredentials.oauth1(
            f"{user_id}-{secrets.token_urlsafe(18)}", secrets.token_urlsafe(24), user_id=user_id
        )
        self.users[credentials.access_token] = FakeUser(user_id, credentials)
        return credentials

    def register_oauth2_user(
        self, user_id: str, *, expires_in: int = OAUTH2_TOKEN_SECONDS, offline: bool = True
    ) -> UserCredentials:
        """A user's OAuth 2.0 access token, valid for ``expires_in`` seconds of ``clock``.

        With ``offline`` (the ``offline.access`` scope) X also issues a refresh token: :meth:`refresh_token_of`.
        """
        scope = OAUTH2_SCOPE if offline else OAUTH2_SCOPE.replace(" offline.access", "")
        return self._issue_oauth2(user_id, expires_in, scope)[0]

    def refresh_token_of(self, user_id: str) -> str | None:
        """The user's live refresh token (the latest issued, not yet spent), if any."""
        live = [token for token, grant in self.refresh_grants.items()
                if grant.user.user_id == user_id and not grant.used]
        return live[-1] if live else None

    def revoke(self, user_id: str) -> None:
        """The user revoked the app: every token of theirs stops working."""
        for user in self.users.values():
            if user.user_id == user_id:
                user.revoked = True

    def add_webhook(self, url: str, *, valid: bool = True) -> str:
        webhook = FakeWebhook(self._new_id(), url, valid, self._iso_now())
        self.webhooks[webhook.id] = webhook
        self.aaa_subscriptions[webhook.id] = []
        return webhook.id

    def add_xaa_subscription(
        self, event_type: str, filter: dict[str, str], *, tag: str | None = None, webhook_id: str | None = None
    ) -> str:
        subscription = {"subscription_id": self._new_id(), "event_type": canonical_xaa_type(event_type),
                        "filter": dict(filter), "created_at": self._iso_now(), "updated_at": self._iso_now()}
        if tag is not None:
            subscription["tag"] = tag
        if webhook_id is not None:
            subscription["webhook_id"] = webhook_id
        self.xaa_subscriptions[subscription["subscription_id"]] = subscription
        return subscription["subscription_id"]

    def complete_replay(self, job_id: str, state: str = "Complete") -> bytes:
        """X finishes a replay job as ``Complete`` or ``Incomplete``: it stops blocking the webhook.

        Returns the ``replay_job_status`` delivery X then POSTs to the webhook (sign it and feed it
        to intake, e.g. ``helpers.post``); a test that drops it plays a report that never arrived.
        """
        if state not in REPLAY_JOB_STATES:
            raise ValueError(f"a replay job ends {' or '.join(REPLAY_JOB_STATES)}, not {state!r}")
        job = self.replay_jobs[job_id]
        if job.state != "Running":
            raise ValueError(f"replay job {job_id} already ended {job.state}")
        job.state = state
        return self.replay_job_status_body(job_id)

    def replay_job_status_body(self, job_id: str) -> bytes:
        """The delivery X POSTs to the webhook when the job ended (D-AAQ's shape), as raw bytes."""
        job = self.replay_jobs[job_id]
        if job.state not in REPLAY_JOB_STATES:
            raise ValueError(f"replay job {job_id} is still {job.state}: X reports only when it ends")
        return json.dumps({"replay_job_status": {
            "webhook_id": job.webhook_id, "job_state": job.state,
            "job_state_description": REPLAY_JOB_STATES[job.state], "job_id": job.job_id,
        }}).encode()

    def attempted(self, webhook_id: str, body: bytes, at: float | None = None) -> bytes:
        """X tried to deliver ``body`` to the webhook at ``at`` (``clock`` if None): replays may resend it."""
        self.attempts.append((webhook_id, self.clock() if at is None else at, body))
        return body

    def replay_deliveries(self, job_id: str) -> list[bytes]:
        """What X re-delivers for a job: each delivery attempted in ``[from_date, to_date)``, oldest first.

        X re-sends the events themselves (XAA: with ``meta.replay``), not its earlier request bodies'
        bytes, so the copies are re-serialised, as X's would be.
        """
        job = self.replay_jobs[job_id]
        start, end = (datetime.strptime(d, "%Y%m%d%H%M").replace(tzinfo=UTC).timestamp()
                      for d in (job.from_date, job.to_date))
        out = []
        for webhook_id, at, body in sorted(self.attempts, key=lambda a: a[1]):
            if webhook_id == job.webhook_id and start <= at < end:
                doc = json.loads(body)
                if "data" in doc:  # XAA: the replayed copy says so
                    doc["meta"] = {**(doc.get("meta") or {}), "replay": True}
                out.append(json.dumps(doc, separators=(",", ":")).encode())
        return out

    def running_replay(self, webhook_id: str) -> ReplayJob | None:
        """The webhook's job X is still running, if any (one at a time)."""
        return next((j for j in self.replay_jobs.values() if j.webhook_id == webhook_id and j.state == "Running"),
                    None)

    def take_spec_violations(self) -> list[SpecViolation]:
        """The spec mismatches seen so far, then forgotten: for a test that sends an off-spec request on purpose."""
        taken, self.spec_violations[:] = list(self.spec_violations), []
        for violation in taken:
            SPEC_VIOLATIONS.remove(violation)
        return taken

    @property
    def write_requests(self) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.is_write]

    def _issue_oauth2(self, user_id: str, expires_in: int, scope: str) -> tuple[UserCredentials, str | None]:
        """A new access token, and a refresh token with ``offline.access``."""
        credentials = UserCredentials.oauth2(secrets.token_urlsafe(32), user_id=user_id)
        user = FakeUser(user_id, credentials, expires_at=self.clock() + expires_in, scope=frozenset(scope.split()))
        self.users[credentials.access_token] = user
        if "offline.access" not in scope.split():
            return credentials, None
        refresh_token = secrets.token_urlsafe(40)
        self.refresh_grants[refresh_token] = RefreshGrant(user, scope, expires_in)
        return credentials, refresh_token

    # --- the transport ----------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        query = dict(request.url.params)
        logged = ReceivedRequest(request.method, path, None, "none", None, request.content, query)
        self.requests.append(logged)
        response = self._handle(request, logged)
        field_shape = response.extensions.get("field_shape")
        if self.error_shapes == "field" and field_shape is not None:
            kept = {k: v for k, v in response.headers.items() if k.startswith("x-rate-limit-")}
            response = prose(_json(response.status_code, field_shape), "field error shape")
            response.headers.update(kept)
        logged.status = response.status_code
        if self.check_spec:
            self._check_against_spec(request, response, logged)
        return response

    def _check_against_spec(self, request: httpx.Request, response: httpx.Response, logged: ReceivedRequest) -> None:
        if logged.endpoint == TOKEN_ENDPOINT:  # OAuth's endpoint: not in X's v2 spec
            return
        found = []
        if request.headers.get("user-agent", "").startswith("xrelay"):  # the client's own requests
            found.append(("request", request_errors(request)))
        # Asked of the spec, not of the route table: an answer given outside it is held to the spec too.
        if declares(request.method, request.url.path) and "prose_variant" not in response.extensions:
            found.append(("response", response_errors(request, response)))
        for side, errors in found:
            if errors:
                violation = SpecViolation(side, request.method, request.url.path, response.status_code,
                                          tuple(errors))
                self.spec_violations.append(violation)
                SPEC_VIOLATIONS.append(violation)

    def _handle(self, request: httpx.Request, logged: ReceivedRequest) -> httpx.Response:
        if request.method == "POST" and request.url.path == TOKEN_PATH:  # OAuth's own auth and error shapes
            return self._token(request, logged)
        try:
            principal = self._authenticate(request)
        except _Refused as refused:
            logged.auth = "invalid" if "authorization" in request.headers else "none"
            return refused.response
        logged.auth, logged.user_id = principal.kind, principal.user_id

        route, match = self._route(request.method, request.url.path)
        if route is None:
            return _problem(404, "resource-not-found", "Not Found Error",
                            f"The requested resource {request.url.path} was not found.", resource_type="route")
        logged.endpoint = route.key
        if principal.kind not in route.auth:
            return _unsupported_authentication(principal, route.auth)

        headers, exhausted = self._spend_budget(route.key, principal)
        if exhausted:
            response = _too_many_requests()
        else:
            try:
                unknown = sorted(set(logged.query) - route.query)
                if unknown:
                    raise _Refused(_invalid_request(
                        f"The query parameter [{unknown[0]}] is not one of [{','.join(sorted(route.query))}]"))
                if route.key in self.errors_in_200:  # X applied nothing, and says so inside a 200
                    response = _errors_in_200(route.key)
                else:
                    response = route.handler(request, principal, **match.groupdict())
            except _Refused as refused:
                response = refused.response
        response.headers.update(headers)
        return response

    # --- auth -------------------------------------------------------------------------------------

    def _authenticate(self, request: httpx.Request) -> Principal:
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            token = header[len("Bearer "):]
            if secrets.compare_digest(token, self.bearer_token):
                return Principal(APP)
            user = self.users.get(token)
            if user is None or user.credentials.kind != OAUTH2 or user.revoked or self._expired(user):
                raise _Refused(_unauthorized())
            return Principal(OAUTH2, user.user_id)
        if header.startswith("OAuth "):
            return self._verify_oauth1(request, header)
        raise _Refused(_unauthorized())

    def _verify_oauth1(self, request: httpx.Request, header: str) -> Principal:
        try:
            oauth_params = {k: oauth1_utils.unescape(v) for k, v in oauth1_utils.parse_authorization_header(header)}
        except ValueError:
            raise _Refused(_unauthorized()) from None
        required = {"oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_signature",
                    "oauth_timestamp", "oauth_nonce"}
        if not required <= oauth_params.keys() or oauth_params.get("oauth_version", "1.0") != "1.0":
            raise _Refused(_unauthorized())
        if oauth_params["oauth_consumer_key"] != self.consumer_key:
            raise _Refused(_unauthorized())
        if oauth_params["oauth_signature_method"] != "HMAC-SHA1":
            raise _Refused(_unauthorized())
        user = self.users.get(oauth_params["oauth_token"])
        if user is None or user.credentials.kind != OAUTH1:
            raise _Refused(_unauthorized())
        try:
            skew = abs(int(oauth_params["oauth_timestamp"]) - self.clock())
        except ValueError:
            raise _Refused(_unauthorized()) from None
        nonce = (oauth_params["oauth_token"], oauth_params["oauth_nonce"])
        if skew > OAUTH1_TIMESTAMP_TOLERANCE_SECONDS or nonce in self._seen_nonces:
            raise _Refused(_unauthorized())

        # The base string: method, URL without query, and the normalised query + oauth_* (+ form body)
        # parameters. A JSON body is not part of it (RFC 5849 §3.4.1.3.1).
        content_type = request.headers.get("content-type", "")
        form_body = request.content.decode() if content_type.startswith("application/x-www-form-urlencoded") else None
        collected = oauth1_signature.collect_parameters(
            uri_query=request.url.query.decode(), body=form_body, headers={"Authorization": header},
            exclude_oauth_signature=True,
        )
        base_string = oauth1_signature.signature_base_string(
            request.method.upper(),
            oauth1_signature.base_string_uri(str(request.url)),
            oauth1_signature.normalize_parameters(collected),
        )
        secrets_holder = SimpleNamespace(
            client_secret=self.consumer_secret, resource_owner_secret=user.credentials.access_token_secret
        )
        expected = oauth1_signature.sign_hmac_sha1_with_client(base_string, secrets_holder)
        if not oauth1_signature.safe_string_equals(expected, oauth_params["oauth_signature"]):
            raise _Refused(_unauthorized())
        self._seen_nonces.add(nonce)
        if user.revoked:
            raise _Refused(_unauthorized())
        return Principal(OAUTH1, user.user_id)

    def _expired(self, user: FakeUser) -> bool:
        return user.expires_at is not None and self.clock() >= user.expires_at

    # --- OAuth 2.0 token endpoint (refresh grant) --------------------------------------------------

    def _token(self, request: httpx.Request, logged: ReceivedRequest) -> httpx.Response:
        logged.endpoint = TOKEN_ENDPOINT
        try:
            form = _token_form(request)
            try:
                self._authenticate_client(request, form)
            except _Refused:
                logged.auth = "invalid" if "authorization" in request.headers or "client_id" in form else "none"
                raise
            logged.auth = CLIENT
            headers, exhausted = self._spend_budget(TOKEN_ENDPOINT, Principal(CLIENT))
            if exhausted:
                response = _too_many_requests()
            else:
                try:
                    response = self._refresh(form, logged)
                except _Refused as refused:
                    response = refused.response
            response.headers.update(headers)
            return response
        except _Refused as refused:
            return refused.response

    def _authenticate_client(self, request: httpx.Request, form: dict[str, str]) -> None:
        """HTTP Basic for a confidential client; a public client (no secret) names itself with client_id."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, credential = header.partition(" ")
            try:
                client_id, colon, client_secret = base64.b64decode(credential, validate=True).decode().partition(":")
            except ValueError:  # not base64, or not UTF-8
                raise _Refused(_missing_client_auth()) from None
            valid = (scheme.lower() == "basic" and colon and self.client_secret
                     and secrets.compare_digest(client_id.encode(), self.client_id.encode())
                     and secrets.compare_digest(client_secret.encode(), self.client_secret.encode()))
            if not valid or form.get("client_id", client_id) != client_id:
                raise _Refused(_missing_client_auth())
            return
        if self.client_secret:  # a confidential client must authenticate
            raise _Refused(_missing_client_auth())
        if "client_id" not in form:
            raise _Refused(_oauth_error(400, "invalid_request", "Missing required parameter [client_id]."))
        if form["client_id"] != self.client_id:
            raise _Refused(_missing_client_auth())

    def _refresh(self, form: dict[str, str], logged: ReceivedRequest) -> httpx.Response:
        unknown = sorted(form.keys() - {"grant_type", "refresh_token", "client_id"})
        if unknown:
            raise _Refused(_oauth_error(400, "invalid_request", f"Unexpected parameter [{unknown[0]}]."))
        for name in ("grant_type", "refresh_token"):
            if not form.get(name):
                raise _Refused(_oauth_error(400, "invalid_request", f"Missing required parameter [{name}]."))
        if form["grant_type"] != "refresh_token":  # the only grant this fake implements
            raise _Refused(_oauth_error(400, "unsupported_grant_type", "Only grant_type=refresh_token is supported."))
        grant = self.refresh_grants.get(form["refresh_token"])
        if grant is None or grant.used or grant.user.revoked:
            raise _Refused(_oauth_error(400, "invalid_request", "Value passed for the token was invalid."))
        # Rotation: the refresh token is spent and the access token it was issued with stops working.
        grant.used = True
        self.users.pop(grant.user.credentials.access_token, None)
        credentials, refresh_token = self._issue_oauth2(grant.user.user_id, grant.expires_in, grant.scope)
        logged.user_id = grant.user.user_id
        body = {"token_type": "bearer", "expires_in": grant.expires_in, "access_token": credentials.access_token,
                "scope": grant.scope}
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return httpx.Response(200, json=body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # --- rate limits ------------------------------------------------------------------------------

    def _spend_budget(self, key: str, principal: Principal) -> tuple[dict[str, str], bool]:
        limit = self.rate_limits.get(key)
        if limit is None:
            return {}, False
        now = self.clock()
        # Bearer calls share the app's budget; user-context calls have one per user.
        budget = self._budgets.get((key, principal))
        if budget is None or now >= budget.window_start + RATE_LIMIT_WINDOW_SECONDS:
            budget = self._budgets[(key, principal)] = _Budget(window_start=now)
        exhausted = budget.used >= limit
        if not exhausted:
            budget.used += 1
        headers = {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(max(limit - budget.used, 0)),
            "x-rate-limit-reset": str(int(budget.window_start + RATE_LIMIT_WINDOW_SECONDS)),
        }
        return headers, exhausted

    def rate_limit_reset(self, key: str, principal_kind: str = APP, user_id: str | None = None) -> int:
        """The ``x-rate-limit-reset`` X would send now for ``key`` (Unix seconds)."""
        budget = self._budgets[(key, Principal(principal_kind, user_id))]
        return int(budget.window_start + RATE_LIMIT_WINDOW_SECONDS)

    # --- routing ----------------------------------------------------------------------------------

    def _route_table(self) -> list[_Route]:
        user = frozenset({OAUTH1, OAUTH2})
        app = frozenset({APP})
        any_auth = app | user
        wid, uid, sid = r"(?P<webhook_id>[^/]+)", r"(?P<user_id>[^/]+)", r"(?P<subscription_id>[^/]+)"
        table = [
            # Docs: "All endpoints require OAuth2 App Only Bearer Token" (OAS would also take a user
            # token for POST/PUT/DELETE; we hold the client to the docs).
            ("GET", "/2/webhooks", "GET /2/webhooks", self._list_webhooks, app, {"webhook_config.fields"}),
            ("POST", "/2/webhooks", "POST /2/webhooks", self._create_webhook, app, set()),
            ("POST", "/2/webhooks/replay", "POST /2/webhooks/replay", self._create_replay, app, set()),
            ("PUT", f"/2/webhooks/{wid}", "PUT /2/webhooks/:webhook_id", self._validate_webhook, app, set()),
            ("DELETE", f"/2/webhooks/{wid}", "DELETE /2/webhooks/:webhook_id", self._delete_webhook, app, set()),
            ("GET", f"/2/account_activity/webhooks/{wid}/subscriptions/all/list",
             "GET /2/account_activity/webhooks/:webhook_id/subscriptions/all/list", self._aaa_list, app, set()),
            ("POST", f"/2/account_activity/webhooks/{wid}/subscriptions/all",
             "POST /2/account_activity/webhooks/:webhook_id/subscriptions/all", self._aaa_subscribe, user, set()),
            ("DELETE", f"/2/account_activity/webhooks/{wid}/subscriptions/{uid}/all",
             "DELETE /2/account_activity/webhooks/:webhook_id/subscriptions/:user_id/all",
             self._aaa_unsubscribe, app, set()),
            ("GET", "/2/activity/subscriptions", "GET /2/activity/subscriptions", self._xaa_list, any_auth,
             {"max_results", "pagination_token"}),
            ("POST", "/2/activity/subscriptions", "POST /2/activity/subscriptions", self._xaa_create, any_auth, set()),
            ("PUT", f"/2/activity/subscriptions/{sid}", "PUT /2/activity/subscriptions/:subscription_id",
             self._xaa_update, app, set()),
            ("DELETE", f"/2/activity/subscriptions/{sid}", "DELETE /2/activity/subscriptions/:subscription_id",
             self._xaa_delete, app, set()),
            # The spec: OAuth 2.0 (tweet.read, users.read) or OAuth 1.0a user context.
            ("GET", "/2/users/me", "GET /2/users/me", self._users_me, user, {"user.fields", "expansions", "tweet.fields"}),
        ]
        return [
            _Route(method, re.compile(f"^{pattern}$"), key, handler, frozenset(auth), frozenset(query))
            for method, pattern, key, handler, auth, query in table
        ]

    def _route(self, method: str, path: str) -> tuple[_Route | None, re.Match[str] | None]:
        for route in self._routes:
            match = route.pattern.match(path)
            if match and route.method == method:
                return route, match
        return None, None

    # --- users ------------------------------------------------------------------------------------

    def _users_me(self, request: httpx.Request, principal: Principal) -> httpx.Response:
        user_id = principal.user_id
        if principal.kind == OAUTH2:  # the spec's security: OAuth2UserToken with tweet.read and users.read
            token = request.headers["authorization"][len("Bearer "):]
            missing = sorted(USERS_ME_SCOPES - self.users[token].scope)
            if missing:
                return _error(403, "Forbidden", f"The token lacks the scopes [{', '.join(missing)}].")
        return _json(200, {"data": {"id": user_id, "name": f"User {user_id}", "username": f"u{user_id}"}})

    # --- webhooks ---------------------------------------------------------------------------------

    def _list_webhooks(self, request: httpx.Request, principal: Principal) -> httpx.Response:
        fields = request.url.params.get("webhook_config.fields")
        wanted = {"id", "url"}  # what an id-only request gets back (inference: v2 default fields)
        if fields is not None:
            asked = set(fields.split(","))
            allowed = {"created_at", "id", "url", "valid"}
            if not asked <= allowed:
                raise _Refused(_invalid_request(f"The `webhook_config.fields` query parameter value "
                                                f"[{sorted(asked - allowed)[0]}] is not one of {sorted(allowed)}"))
            wanted |= asked
        data = [{k: v for k, v in vars(w).items() if k in wanted} for w in self.webhooks.values()]
        return _json(200, {"data": data, "meta": {"result_count": len(data)}})

    def _create_webhook(self, request: httpx.Request, principal: Principal) -> httpx.Response:
        body = _json_object(request, required={"url"}, optional=set())
        url = body["url"]
        if not isinstance(url, str) or not 1 <= len(url) <= 200:
            raise _Refused(_invalid_request("url must be a string of 1 to 200 characters"))
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.port is not None:
            raise _Refused(_named_error(400, "UrlValidationFailed", "The URL must be https, with no port"))
        if any(w.url == url for w in self.webhooks.values()):
            raise _Refused(_named_error(400, "DuplicateUrlFailed", "A webhook with this URL already exists"))
        if len(self.webhooks) >= self.webhook_limit:
            raise _Refused(_named_error(403, "WebhookLimitExceeded", "The account has reached its webhook limit"))
        if not self.crc_passes:  # X runs the CRC before creating anything
            raise _Refused(_named_error(400, "CrcValidationFailed", "The webhook did not answer the CRC correctly"))
        webhook_id = self.add_webhook(url)
        return _json(200, {"data": vars(self.webhooks[webhook_id])})

    def _validate_webhook(self, request: httpx.Request, principal: Principal, webhook_id: str) -> httpx.Response:
        _no_body(request)
        webhook = self._existing_webhook(webhook_id)
        webhook.valid = self.crc_passes
        if not webhook.valid and self.crc_failure_answer == "error":
            raise _Refused(_named_error(400, "CrcValidationFailed", "The webhook did not answer the CRC correctly"))
        return _json(200, {"data": {"valid": webhook.valid}})

    def _delete_webhook(self, request: httpx.Request, principal: Principal, webhook_id: str) -> httpx.Response:
        _no_body(request)
        self._existing_webhook(webhook_id)
        del self.webhooks[webhook_id]
        self.aaa_subscriptions.pop(webhook_id, None)
        return _json(200, {"data": {"deleted": True}})

    def _create_replay(self, request: httpx.Request, principal: Principal) -> httpx.Response:
        body = _json_object(request, required={"webhook_id", "from_date", "to_date"}, optional=set())
        for name in ("from_date", "to_date"):
            if not isinstance(body[name], str) or not re.fullmatch(r"[0-9]{12}", body[name]):
                raise _Refused(_invalid_request(f"{name} must match ^[0-9]{{12}}$"))
        webhook = self._existing_webhook(body["webhook_id"])
        try:
            start, end = (
                datetime.strptime(body[name], "%Y%m%d%H%M").replace(tzinfo=UTC) for name in ("from_date", "to_date")
            )
        except ValueError:
            raise _Refused(_invalid_request("from_date/to_date are not valid dates")) from None
        now = datetime.fromtimestamp(self.clock(), UTC)
        if end > now or start > now or (now - start).total_seconds() > 24 * 3600 or end <= start:
            raise _Refused(_named_error(400, "QueryParamInvalid",
                                        "from_date must be within the last 24 hours and before to_date; "
                                        "neither may be in the future"))
        if (now - end).total_seconds() < self.replay_min_age_seconds:
            raise _Refused(_named_error(400, "QueryParamInvalid",
                                        f"to_date must be at least {self.replay_min_age_seconds // 60} minutes "
                                        "before the current time"))
        if self.running_replay(webhook.id) is not None:
            raise _Refused(_named_error(409, "ReplayConflictError",
                                        "A replay job is already in progress for the specified webhook"))
        job = ReplayJob(self._new_id(), webhook.id, body["from_date"], body["to_date"], self._iso_now())
        self.replay_jobs[job.job_id] = job
        return _json(200, {"data": {"job_id": job.job_id, "created_at": job.created_at}})

    def _existing_webhook(self, webhook_id: Any) -> FakeWebhook:
        if not isinstance(webhook_id, str) or not _NUMERIC_ID.match(webhook_id):
            raise _Refused(_invalid_request("webhook_id must match ^[0-9]{1,19}$"))
        webhook = self.webhooks.get(webhook_id)
        if webhook is None:
            raise _Refused(_aaa_error(400, "WebhookIdInvalid", "The webhook id is not valid for this application"))
        return webhook

    # --- Account Activity -------------------------------------------------------------------------

    def _aaa_list(self, request: httpx.Request, principal: Principal, webhook_id: str) -> httpx.Response:
        webhook = self._existing_webhook(webhook_id)
        return _json(200, {"data": {
            "application_id": self.application_id, "webhook_id": webhook.id, "webhook_url": webhook.url,
            "subscriptions": [{"user_id": u} for u in self.aaa_subscriptions[webhook.id]],
        }})

    def _aaa_subscribe(self, request: httpx.Request, principal: Principal, webhook_id: str) -> httpx.Response:
        # OAS: a JSON body is required, and its schema is the empty object.
        _json_object(request, required=set(), optional=set())
        webhook = self._existing_webhook(webhook_id)
        subscribed = self.aaa_subscriptions[webhook.id]
        if principal.user_id in subscribed:
            raise _Refused(_aaa_error(409, "DuplicateSubscriptionFailed", "Subscription already exists"))
        everyone = {u for users in self.aaa_subscriptions.values() for u in users}
        if principal.user_id not in everyone and len(everyone) >= self.aaa_subscription_limit:
            raise _Refused(_aaa_error(403, "SubscriptionLimitExceeded", "The subscription limit has been reached"))
        subscribed.append(principal.user_id)
        return self._aaa_success(subscribed=True)

    def _aaa_unsubscribe(
        self, request: httpx.Request, principal: Principal, webhook_id: str, user_id: str
    ) -> httpx.Response:
        webhook = self._existing_webhook(webhook_id)
        if not _NUMERIC_ID.match(user_id):
            raise _Refused(_invalid_request("user_id must match ^[0-9]{1,19}$"))
        subscribed = self.aaa_subscriptions[webhook.id]
        if user_id not in subscribed:
            raise _Refused(_aaa_error(404, "SubscriptionNotFound", "The user is not subscribed to this webhook"))
        subscribed.remove(user_id)
        return self._aaa_success(subscribed=False)

    def _aaa_success(self, *, subscribed: bool) -> httpx.Response:
        if self.aaa_success_status == 204:
            return prose(httpx.Response(204), "AAA 204 (official sample code)")
        return _json(200, {"data": {"subscribed": subscribed}})

    # --- X Activity API ---------------------------------------------------------------------------

    def _xaa_list(self, request: httpx.Request, principal: Principal) -> httpx.Response:
        params = request.url.params
        max_results = params.get("max_results", "100")
        if not max_results.isdigit() or not 1 <= int(max_results) <= 1000:
            raise _Refused(_invalid_request("max_results must be between 1 and 1000"))
        offset = 0
        if "pagination_token" in params:
            offset = _decode_page_token(params["pagination_token"])
        everything = list(self.xaa_subscriptions.values())
        page_size = min(int(max_results), self.page_size)
        page = everything[offset:offset + page_size]
        meta: dict[str, Any] = {"total_subscriptions": len(everything), "result_count": len(page)}
        if offset + page_size < len(everything):
            meta["next_token"] = _encode_page_token(offset + page_size)
        return _json(200, {"data": page, "meta": meta})

    def _xaa_create(self, request: httpx.Request, principal: Principal) -> httpx.Response:
        body = _json_object(request, required={"event_type", "filter"}, optional={"tag", "webhook_id"})
        event_type = body["event_type"]
        if not isinstance(event_type, str) or event_type not in SUBSCRIBABLE_EVENT_TYPES:
            raise _Refused(_invalid_request(f"event_type [{event_type}] is not one of the supported event types"))
        event_type = canonical_xaa_type(event_type)
        event_filter = _valid_filter(event_type, body["filter"])
        if "tag" in body:
            _valid_tag(body["tag"])
        if "webhook_id" in body:
            self._existing_webhook(body["webhook_id"])

        if not _is_public(event_type):
            if principal.kind == APP:
                raise _Refused(_unsupported_authentication(principal, frozenset({OAUTH1, OAUTH2}),
                                                           f"event_type {event_type}"))
            # X says it of mute.*/block.*; we hold every private event to it: a user authorises their own.
            if event_filter.get("user_id") != principal.user_id:
                raise _Refused(_problem(403, "not-authorized-for-resource", "Forbidden",
                                        "filter.user_id must identify the authenticated user", resource_type="user",
                                        parameter="filter.user_id", value=str(event_filter.get("user_id", ""))))

        identity = (event_type, json.dumps(event_filter, sort_keys=True), body.get("webhook_id"))
        for existing in self.xaa_subscriptions.values():
            if (existing["event_type"], json.dumps(existing["filter"], sort_keys=True),
                    existing.get("webhook_id")) == identity:
                raise _Refused(_named_error(
                    409, "DuplicateSubscriptionFailed",
                    "A subscription with this event_type, filter and webhook_id already exists"))
        if len(self.xaa_subscriptions) >= self.xaa_subscription_limit:
            raise _Refused(_named_error(403, "SubscriptionLimitExceeded",
                                        "The application has reached its subscription limit"))

        subscription_id = self.add_xaa_subscription(event_type, event_filter, tag=body.get("tag"),
                                                    webhook_id=body.get("webhook_id"))
        subscription = self.xaa_subscriptions[subscription_id]
        meta = {"meta": {"total_subscriptions": len(self.xaa_subscriptions)}} if self.xaa_meta else {}
        if self.xaa_create_shape == "list":
            return prose(_json(200, {"data": [subscription], **meta}), "XAA create, list-shaped data (D-XQ)")
        if self.xaa_create_shape == "flat":
            return prose(_json(200, {"data": subscription, **meta}), "XAA create, flat data (D-XQ)")
        return self._xaa_meta(_json(200, {"data": {"subscription": subscription}, **meta}))

    def _xaa_update(self, request: httpx.Request, principal: Principal, subscription_id: str) -> httpx.Response:
        body = _json_object(request, required=set(), optional={"tag", "webhook_id"})
        if not body:
            raise _Refused(_invalid_request("At least one of tag, webhook_id is required"))
        subscription = self._existing_subscription(subscription_id)
        if "tag" in body:
            _valid_tag(body["tag"])
        if "webhook_id" in body:
            self._existing_webhook(body["webhook_id"])
        subscription.update(body)
        subscription["updated_at"] = self._iso_now()
        total = len(self.xaa_subscriptions)
        if self.xaa_update_shape == "flat":
            return prose(_json(200, {"data": subscription, "meta": {"total_subscriptions": total}}),
                         "XAA update, flat data (D-XQ)")
        return _json(200, {"data": {"subscription": subscription, "total_subscriptions": total}})

    def _xaa_delete(self, request: httpx.Request, principal: Principal, subscription_id: str) -> httpx.Response:
        _no_body(request)
        self._existing_subscription(subscription_id)
        del self.xaa_subscriptions[subscription_id]
        meta = {"meta": {"total_subscriptions": len(self.xaa_subscriptions)}} if self.xaa_meta else {}
        return self._xaa_meta(_json(200, {"data": {"deleted": True}, **meta}))

    def _xaa_meta(self, response: httpx.Response) -> httpx.Response:
        return prose(response, "XAA meta.total_subscriptions (D-XQ)") if self.xaa_meta else response

    def _existing_subscription(self, subscription_id: str) -> dict[str, Any]:
        if not _NUMERIC_ID.match(subscription_id):
            raise _Refused(_invalid_request("subscription_id must match ^[0-9]{1,19}$"))
        subscription = self.xaa_subscriptions.get(subscription_id)
        if subscription is None:
            raise _Refused(_problem(
                404, "resource-not-found", "Not Found Error", f"Could not find subscription with id: [{subscription_id}].",
                resource_type="subscription", parameter="subscription_id", value=subscription_id,
                resource_id=subscription_id))
        return subscription

    # --- misc -------------------------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(next(self._ids))

    def _iso_now(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- request checks --------------------------------------------------------------------------------


def _json_object(request: httpx.Request, *, required: set[str], optional: set[str]) -> dict[str, Any]:
    """The JSON object body, refused as X's validator would (``additionalProperties: false``)."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise _Refused(_invalid_request("The request body must be JSON (Content-Type: application/json)"))
    try:
        body = json.loads(request.content)
    except ValueError:
        raise _Refused(_invalid_request("The request body is not valid JSON")) from None
    if not isinstance(body, dict):
        raise _Refused(_invalid_request("The request body must be a JSON object"))
    unknown = sorted(body.keys() - required - optional)
    if unknown:
        raise _Refused(_invalid_request(f"[{unknown[0]}] is not a valid field in the request body"))
    missing = sorted(required - body.keys())
    if missing:
        raise _Refused(_invalid_request(f"[{missing[0]}] is required in the request body"))
    return body


def _token_form(request: httpx.Request) -> dict[str, str]:
    """The token endpoint's form body: form-encoded, no query, no parameter twice (RFC 6749 §3.2)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise _Refused(_oauth_error(400, "invalid_request",
                                    "The request body must be application/x-www-form-urlencoded."))
    if request.url.query:
        raise _Refused(_oauth_error(400, "invalid_request", "Parameters must be sent in the request body."))
    try:
        pairs = parse_qsl(request.content.decode("ascii"), keep_blank_values=True, strict_parsing=bool(request.content))
    except ValueError:  # not ASCII, or not key=value pairs
        raise _Refused(_oauth_error(400, "invalid_request", "The request body is not a valid form.")) from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise _Refused(_oauth_error(400, "invalid_request", "A parameter was sent more than once."))
    return form


def _no_body(request: httpx.Request) -> None:
    if request.content:
        raise _Refused(_invalid_request("This endpoint takes no request body"))


def _valid_filter(event_type: str, event_filter: Any) -> dict[str, str]:
    if not isinstance(event_filter, dict):
        raise _Refused(_invalid_request("filter must be an object"))
    unknown = sorted(event_filter.keys() - {"user_id", "keyword", "direction"})
    if unknown:
        raise _Refused(_invalid_request(f"[{unknown[0]}] is not a valid filter field"))
    if not all(isinstance(v, str) for v in event_filter.values()):
        raise _Refused(_invalid_request("filter values must be strings"))
    if "user_id" in event_filter and not _NUMERIC_ID.match(event_filter["user_id"]):
        raise _Refused(_invalid_request("filter.user_id must match ^[0-9]{1,19}$"))
    if "keyword" in event_filter and not 1 <= len(event_filter["keyword"]) <= 150:
        raise _Refused(_invalid_request("filter.keyword must be 1 to 150 characters"))
    if "direction" in event_filter:
        if event_filter["direction"] not in ("inbound", "outbound"):
            raise _Refused(_invalid_request("filter.direction must be one of [inbound, outbound]"))
        if event_type.startswith(("mute.", "block.")):
            raise _Refused(_invalid_request(f"filter.direction is not supported for {event_type}"))
    # news.new filters on a keyword; every other event type on the user it concerns.
    needed, refused = ("keyword", "user_id") if event_type == "news.new" else ("user_id", "keyword")
    if needed not in event_filter:
        raise _Refused(_invalid_request(f"filter.{needed} is required for {event_type}"))
    if refused in event_filter:
        raise _Refused(_invalid_request(f"filter.{refused} is not supported for {event_type}"))
    return dict(event_filter)


def _valid_tag(tag: Any) -> None:
    if not isinstance(tag, str) or not 1 <= len(tag) <= 200:
        raise _Refused(_invalid_request("tag must be a string of 1 to 200 characters"))


def _is_public(event_type: str) -> bool:
    return event_type in PUBLIC_EVENT_TYPES or event_type.startswith(PUBLIC_EVENT_PREFIXES)


def _encode_page_token(offset: int) -> str:
    # 15 bytes → 24 base32hex characters, no padding: satisfies X's "≥16 chars, base32hex".
    return base64.b32hexencode(f"{offset:015d}".encode()).decode()


def _decode_page_token(token: str) -> int:
    try:
        if not _BASE32HEX.match(token):
            raise ValueError
        return int(base64.b32hexdecode(token.upper()).decode())
    except ValueError:
        raise _Refused(_invalid_request("pagination_token is not valid")) from None


# --- X-shaped answers -------------------------------------------------------------------------------


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def _error(status: int, name: str, text: str, *, field_shape: dict[str, Any] | None = None) -> httpx.Response:
    """The spec's ``Error``: X's named reason first in ``message``; ``code`` (an integer) holds the status.

    ``field_shape`` is the body X's servers are seen sending instead (``error_shapes="field"``); by
    default an ``about:blank`` problem titled with the name.
    """
    response = httpx.Response(status, json={"code": status, "message": f"{name}: {text}"})
    response.extensions["field_shape"] = field_shape or {"title": name, "detail": text, "type": "about:blank",
                                                         "status": status}
    return response


def _problem(status: int, kind: str, title: str, detail: str, **fields: str) -> httpx.Response:
    """One of the spec's ``Problem`` subtypes (``kind`` names it), as ``application/problem+json``."""
    if kind not in PROBLEM_TYPES:
        raise ValueError(f"the spec has no {kind} problem")
    body = {"type": SPEC_PROBLEM_BASE + kind, "title": title, "detail": detail, "status": status, **fields}
    response = httpx.Response(status, content=json.dumps(body).encode(),
                              headers={"content-type": "application/problem+json"})
    response.extensions["field_shape"] = {**body, "type": FIELD_PROBLEM_BASE + kind}
    return response


def _errors_in_200(route_key: str) -> httpx.Response:
    # The spec's other failure shape, on every endpoint the client calls: 200, ``errors``, no ``data``.
    return _json(200, {"errors": [{
        "type": SPEC_PROBLEM_BASE + "resource-unavailable", "title": "Service Unavailable",
        "detail": f"{route_key} could not be served; try again later.", "status": 503,
        "resource_type": route_key.split(" /2/", 1)[1].split("/")[0],
    }]})


def _unauthorized() -> httpx.Response:
    return _error(401, "Unauthorized", "Unauthorized")


def _too_many_requests() -> httpx.Response:
    return _error(429, "TooManyRequests", "Too Many Requests",
                  field_shape={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                               "status": 429})


def _unsupported_authentication(principal: Principal, allowed: frozenset[str], what: str = "this endpoint",
                                ) -> httpx.Response:
    names = {APP: "OAuth 2.0 Application-Only", OAUTH1: "OAuth 1.0a User Context", OAUTH2: "OAuth 2.0 User Context"}
    supported = ", ".join(names[kind] for kind in (OAUTH1, OAUTH2, APP) if kind in allowed)
    detail = (f"Authenticating with {names[principal.kind]} is forbidden for {what}.  "
              f"Supported authentication types are [{supported}].")
    return _error(403, "UnsupportedAuthentication", detail, field_shape={
        "title": "Unsupported Authentication", "detail": detail, "status": 403,
        "type": FIELD_PROBLEM_BASE + "unsupported-authentication"})


def _oauth_error(status: int, error: str, description: str) -> httpx.Response:
    # The token endpoint answers as OAuth does (RFC 6749 §5.2), not with v2 problems.
    return _json(status, {"error": error, "error_description": description})


def _missing_client_auth() -> httpx.Response:
    # What X answers a token request without valid client credentials.
    return _oauth_error(401, "unauthorized_client", "Missing valid authorization header")


def _invalid_request(message: str) -> httpx.Response:
    response = _problem(400, "invalid-request", "Invalid Request", message)
    response.extensions["field_shape"] = {
        "errors": [{"parameters": {}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": FIELD_PROBLEM_BASE + "invalid-request",
    }
    return response


def _named_error(status: int, name: str, text: str) -> httpx.Response:
    return _error(status, name, text)


def _aaa_error(status: int, name: str, text: str) -> httpx.Response:
    # In the field, AAA's named errors reach clients only as errors[].message, "Code: text".
    return _error(status, name, text, field_shape={"errors": [{"message": f"{name}: {text}"}]})


# ==== BEGIN users login (issue 15): OAuth 2.0 authorization code + PKCE, and OAuth 1.0a three-legged ==
# Kept in one block on purpose (other work reshapes the error bodies above): these handlers run
# before FakeX._handle's own routing and leave everything else to it.
#
# * ``GET /i/oauth2/authorize`` (x.com's consent page): the person signed in at X is
#   ``fake.signed_in_user`` (a test sets it; None: nobody, X would show its login page), who
#   consents at once, or refuses when ``fake.consent`` is False. Checked as X does: response_type
#   code, the app's client_id, a redirect_uri registered for the app (``fake.redirect_uris``; empty
#   means any http://127.0.0.1 callback), a state, scopes X knows, an S256 code_challenge. The
#   answer is the 302 back to redirect_uri with code and state (or error=access_denied).
# * ``POST /2/oauth2/token`` with grant_type=authorization_code: the code once, within 30 seconds,
#   with the same redirect_uri and the verifier whose S256 is the challenge; client auth as for
#   refreshes. Tokens as register_oauth2_user issues them, with the scopes consented to.
# (``GET /2/users/me``, which says whose token it is, is an ordinary route of FakeX: user context.)
# * OAuth 1.0a three-legged: ``POST /oauth/request_token`` (signed with the consumer secret alone,
#   oauth_callback in the header), ``GET /oauth/authorize?oauth_token=`` (the same signed-in person
#   and consent; back to the callback with oauth_token and oauth_verifier, or ``denied``),
#   ``POST /oauth/access_token`` (signed with the request token's secret, the verifier once): a
#   user token pair as register_oauth1_user issues it, form-encoded with user_id and screen_name.

AUTHORIZE_PATH = "/i/oauth2/authorize"
AUTHORIZATION_CODE_SECONDS = 30
X_OAUTH2_SCOPES = frozenset({
    "tweet.read", "tweet.write", "tweet.moderate.write", "users.email", "users.read", "follows.read",
    "follows.write", "offline.access", "space.read", "mute.read", "mute.write", "like.read", "like.write",
    "list.read", "list.write", "block.read", "block.write", "bookmark.read", "bookmark.write", "dm.read",
    "dm.write", "media.write", "broadcast.read"})


@dataclass
class AuthorizationCode:
    user_id: str
    scope: str
    redirect_uri: str
    challenge: str
    issued_at: float
    used: bool = False


def _login_state(fake: FakeX) -> SimpleNamespace:
    if "_login" not in fake.__dict__:
        fake.__dict__["_login"] = SimpleNamespace(codes={}, request_tokens={})
    for name, default in (("signed_in_user", None), ("consent", True), ("redirect_uris", [])):
        fake.__dict__.setdefault(name, default)
    return fake.__dict__["_login"]


def _s256(verifier: str) -> str:
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _redirect(uri: str, **params: str) -> httpx.Response:
    from urllib.parse import urlencode

    return httpx.Response(302, headers={"location": f"{uri}?{urlencode(params)}"})


def _authorize(fake: FakeX, request: httpx.Request) -> httpx.Response:
    login, q = _login_state(fake), dict(request.url.params)
    redirect_uri = q.get("redirect_uri", "")
    registered = fake.redirect_uris or []
    if (not redirect_uri or (registered and redirect_uri not in registered)
            or (not registered and not redirect_uri.startswith("http://127.0.0.1:"))):
        return _json(400, {"error": "invalid_request", "error_description": "redirect_uri is not registered"})
    if q.get("client_id") != fake.client_id:
        return _json(400, {"error": "invalid_request", "error_description": "unknown client_id"})
    problems = [name for name in ("response_type", "state", "scope", "code_challenge", "code_challenge_method")
                if not q.get(name)]
    scopes = q.get("scope", "").split()
    if problems or q["response_type"] != "code" or q["code_challenge_method"] != "S256" \
            or not set(scopes) <= X_OAUTH2_SCOPES:
        return _redirect(redirect_uri, error="invalid_request", state=q.get("state", ""))
    if fake.signed_in_user is None:
        return httpx.Response(200, text="<html>Sign in to X</html>")
    if not fake.consent:
        return _redirect(redirect_uri, error="access_denied", state=q["state"])
    code = secrets.token_urlsafe(32)
    login.codes[code] = AuthorizationCode(fake.signed_in_user, " ".join(scopes), redirect_uri,
                                          q["code_challenge"], fake.clock())
    return _redirect(redirect_uri, code=code, state=q["state"])


def _code_grant(fake: FakeX, request: httpx.Request, logged: ReceivedRequest) -> httpx.Response:
    logged.endpoint = TOKEN_ENDPOINT
    try:
        form = _token_form(request)
        fake._authenticate_client(request, form)
        logged.auth = CLIENT
        unknown = sorted(form.keys() - {"grant_type", "code", "redirect_uri", "code_verifier", "client_id"})
        if unknown:
            raise _Refused(_oauth_error(400, "invalid_request", f"Unexpected parameter [{unknown[0]}]."))
        for name in ("code", "redirect_uri", "code_verifier"):
            if not form.get(name):
                raise _Refused(_oauth_error(400, "invalid_request", f"Missing required parameter [{name}]."))
        grant = _login_state(fake).codes.get(form["code"])
        if (grant is None or grant.used or fake.clock() - grant.issued_at > AUTHORIZATION_CODE_SECONDS
                or grant.redirect_uri != form["redirect_uri"] or _s256(form["code_verifier"]) != grant.challenge):
            raise _Refused(_oauth_error(400, "invalid_request", "Value passed for the authorization code was invalid."))
    except _Refused as refused:
        return refused.response
    grant.used = True
    credentials, refresh_token = fake._issue_oauth2(grant.user_id, OAUTH2_TOKEN_SECONDS, grant.scope)
    logged.user_id = grant.user_id
    body = {"token_type": "bearer", "expires_in": OAUTH2_TOKEN_SECONDS, "access_token": credentials.access_token,
            "scope": grant.scope}
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return httpx.Response(200, json=body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


OAUTH1_REQUEST_TOKEN_PATH, OAUTH1_AUTHORIZE_PATH, OAUTH1_ACCESS_TOKEN_PATH = (
    "/oauth/request_token", "/oauth/authorize", "/oauth/access_token")


@dataclass
class RequestToken:
    secret: str
    callback: str
    verifier: str | None = None
    user_id: str | None = None
    used: bool = False


def _oauth1_signed(fake: FakeX, request: httpx.Request, token_secret: str) -> dict[str, str] | None:
    """The request's oauth_* parameters if its HMAC-SHA1 signature holds for ``token_secret``, else None."""
    header = request.headers.get("authorization", "")
    if not header.startswith("OAuth "):
        return None
    try:
        params = {k: oauth1_utils.unescape(v) for k, v in oauth1_utils.parse_authorization_header(header)}
    except ValueError:
        return None
    if params.get("oauth_consumer_key") != fake.consumer_key or params.get("oauth_signature_method") != "HMAC-SHA1":
        return None
    collected = oauth1_signature.collect_parameters(uri_query=request.url.query.decode(), headers={"Authorization": header},
                                                    exclude_oauth_signature=True)
    base_string = oauth1_signature.signature_base_string(
        "POST", oauth1_signature.base_string_uri(str(request.url)), oauth1_signature.normalize_parameters(collected))
    holder = SimpleNamespace(client_secret=fake.consumer_secret, resource_owner_secret=token_secret)
    expected = oauth1_signature.sign_hmac_sha1_with_client(base_string, holder)
    return params if oauth1_signature.safe_string_equals(expected, params.get("oauth_signature", "")) else None


def _form(status: int, **fields: str) -> httpx.Response:
    from urllib.parse import urlencode

    return httpx.Response(status, text=urlencode(fields), headers={"content-type": "text/html; charset=utf-8"})


def _oauth1_request_token(fake: FakeX, request: httpx.Request) -> httpx.Response:
    params = _oauth1_signed(fake, request, "")
    if params is None or "oauth_token" in params or not params.get("oauth_callback"):
        return _unauthorized()
    token = secrets.token_urlsafe(20)
    _login_state(fake).request_tokens[token] = RequestToken(secrets.token_urlsafe(30), params["oauth_callback"])
    return _form(200, oauth_token=token, oauth_token_secret=_login_state(fake).request_tokens[token].secret,
                 oauth_callback_confirmed="true")


def _oauth1_authorize(fake: FakeX, request: httpx.Request) -> httpx.Response:
    token = request.url.params.get("oauth_token", "")
    pending = _login_state(fake).request_tokens.get(token)
    if pending is None or pending.verifier is not None:
        return httpx.Response(400, text="<html>This page is no longer valid.</html>")
    if fake.signed_in_user is None:
        return httpx.Response(200, text="<html>Sign in to X</html>")
    if not fake.consent:
        return _redirect(pending.callback, denied=token)
    pending.verifier, pending.user_id = secrets.token_urlsafe(20), fake.signed_in_user
    return _redirect(pending.callback, oauth_token=token, oauth_verifier=pending.verifier)


def _oauth1_access_token(fake: FakeX, request: httpx.Request) -> httpx.Response:
    header = request.headers.get("authorization", "")
    try:
        token = dict(oauth1_utils.parse_authorization_header(header)).get("oauth_token", "") if header else ""
    except ValueError:
        token = ""
    pending = _login_state(fake).request_tokens.get(oauth1_utils.unescape(token) if token else "")
    params = _oauth1_signed(fake, request, pending.secret) if pending else None
    if (params is None or pending.used or pending.verifier is None
            or not secrets.compare_digest(params.get("oauth_verifier", ""), pending.verifier)):
        return _unauthorized()
    pending.used = True
    credentials = fake.register_oauth1_user(pending.user_id)
    return _form(200, oauth_token=credentials.access_token, oauth_token_secret=credentials.access_token_secret,
                 user_id=pending.user_id, screen_name=f"u{pending.user_id}")


_handle_without_login = FakeX._handle


def _handle_with_login(fake: FakeX, request: httpx.Request, logged: ReceivedRequest) -> httpx.Response:
    path = request.url.path
    if request.method == "GET" and path == AUTHORIZE_PATH:
        return _authorize(fake, request)
    if request.method == "POST" and path == TOKEN_PATH and b"grant_type=authorization_code" in request.content:
        return _code_grant(fake, request, logged)
    oauth1 = {("POST", OAUTH1_REQUEST_TOKEN_PATH): _oauth1_request_token, ("GET", OAUTH1_AUTHORIZE_PATH): _oauth1_authorize,
              ("POST", OAUTH1_ACCESS_TOKEN_PATH): _oauth1_access_token}.get((request.method, path))
    if oauth1 is not None:
        _login_state(fake)
        return oauth1(fake, request)
    return _handle_without_login(fake, request, logged)


FakeX._handle = _handle_with_login  # type: ignore[method-assign]
# ==== END users login ================================================================================

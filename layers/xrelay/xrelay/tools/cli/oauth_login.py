"""``xrelay users login``: a user authorises the app in a browser (OAuth 2.0 authorization code + PKCE).

The flow (X's "OAuth 2.0 Authorization Code Flow with PKCE"):

1. the scopes the desired state needs of this user are computed (:func:`scopes_for`): AAA
   subscriptions need ``dm.read dm.write tweet.read users.read``; each private XAA event type its
   own read scope (``dm.read`` for dm/chat, ``like.read``, ``mute.read``, ``block.read``,
   ``broadcast.read`` for broadcast.chat, ``tweet.read`` for the rest); ``users.read`` (who logged
   in) and ``offline.access`` (a refresh token, so the reconcile keeps the access going) always;
2. a one-shot HTTP server listens on ``http://127.0.0.1:PORT/callback``, which must be registered
   as a callback URI in the app's "User authentication settings" at X (exactly, port included);
3. the browser opens X's consent page with a random ``state`` and the S256 challenge of a random
   code verifier; X redirects back to the callback with a code;
4. the code and the verifier are traded at ``POST /2/oauth2/token`` (the app's ``client_id``, and
   ``client_secret`` for a confidential client, from the app secret), ``GET /2/users/me`` says who
   logged in, and the tokens are stored as ``xrelay users authorize`` stores them.

``--oauth1`` runs X's OAuth 1.0a three-legged flow the same way (``POST /oauth/request_token``
with the local callback, the user's consent at ``/oauth/authorize``, ``POST /oauth/access_token``
with the verifier): no scopes there, the app's permissions in X's portal decide (AAA needs "Read and
write and Direct Messages").

Nothing is printed but the consent URL and the outcome: never a code, a verifier or a token.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

DEFAULT_AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
DEFAULT_OAUTH1_AUTHORIZE_URL = "https://api.x.com/oauth/authorize"
DEFAULT_PORT = 8765
CALLBACK_PATH = "/callback"
ALWAYS = ("users.read", "tweet.read", "offline.access")
AAA_SCOPES = ("dm.read", "dm.write", "tweet.read", "users.read")  # X's OpenAPI, POST .../subscriptions/all
# Read scopes of private XAA event types, by prefix (X's OpenAPI, POST /2/activity/subscriptions).
XAA_SCOPES_BY_PREFIX = (("dm.", "dm.read"), ("chat.", "dm.read"), ("like.", "like.read"),
                        ("mute.", "mute.read"), ("block.", "block.read"), ("broadcast.chat", "broadcast.read"))


def scopes_for(desired: Any, user_id: str | None = None) -> list[str]:
    """The scopes ``user_id``'s token needs for the desired state (every declared user's when None)."""
    wanted = set(ALWAYS)

    def concerns(uid: str | None) -> bool:
        return user_id is None or uid == user_id

    for user in desired.account_activity:
        if concerns(user.user_id):
            wanted.update(AAA_SCOPES)
    for sub in desired.activity:
        if sub.needs_user_context and concerns(sub.filter.get("user_id")):
            wanted.add(next((scope for prefix, scope in XAA_SCOPES_BY_PREFIX if sub.event_type.startswith(prefix)),
                            "tweet.read"))
    return sorted(wanted)


def declared_users(desired: Any) -> set[str]:
    users = {u.user_id for u in desired.account_activity}
    users.update(s.filter["user_id"] for s in desired.activity if s.needs_user_context and "user_id" in s.filter)
    return users


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge): 43-128 characters of the unreserved set (RFC 7636 §4.1)."""
    verifier = secrets.token_urlsafe(64)  # 86 characters
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class Callback:
    """What X sent back to the local callback (one request)."""

    params: dict[str, str] = field(default_factory=dict)
    received: threading.Event = field(default_factory=threading.Event)


def callback_server(port: int, callback: Callback) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path != CALLBACK_PATH or callback.received.is_set():
                self.send_response(404)
                self.end_headers()
                return
            callback.params = {k: v[0] for k, v in parse_qs(url.query).items()}
            ok = "code" in callback.params
            page = ("xrelay: authorised. You can close this window." if ok else
                    "xrelay: not authorised (" + callback.params.get("error", "no code") + ").").encode()
            self.send_response(200 if ok else 400)
            self.send_header("content-type", "text/plain; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            callback.received.set()

        def log_message(self, *args: Any) -> None:  # the query holds the code: never log it
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


class LoginFailed(Exception):
    """The flow did not end with stored tokens. The message names what went wrong, never a secret."""


@dataclass
class LoginResult:
    user_id: str
    scopes: list[str]  # what X granted
    missing: list[str]  # asked for but not granted
    secret_name: str


def login(stack_name: str, settings: Any, desired: Any, user_id: str | None, *, port: int = DEFAULT_PORT,
          authorize_url: str = DEFAULT_AUTHORIZE_URL, open_browser: Callable[[str], Any] = webbrowser.open,
          timeout: float = 300.0, say: Callable[[str], None] = print, transport: Any = None) -> LoginResult:
    """Run the flow for ``user_id`` (None: whoever logs in, if the desired state declares them)."""
    from xrelay.credentials import SecretUnavailable, load_app_credentials
    from xrelay.subscriptions.xapi import UserCredentials, XApiClient, XApiError
    from xrelay.tools.cli.operator_cli import store_tokens

    try:
        app = load_app_credentials(settings.app_secret_arn, 0)
    except SecretUnavailable as exc:
        raise LoginFailed(f"the app secret: {exc}") from None
    if not app.client_id:
        raise LoginFailed("the app secret has no client_id (the app's OAuth 2.0 Client ID, at X: Keys and tokens)")
    scopes = scopes_for(desired, user_id)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    callback = Callback()
    try:
        server = callback_server(port, callback)
    except OSError as exc:
        raise LoginFailed(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): choose another --port "
                          "(and register its callback URI at X)") from None
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    url = authorize_url + "?" + urlencode({
        "response_type": "code", "client_id": app.client_id, "redirect_uri": redirect_uri,
        "scope": " ".join(scopes), "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = _consent(url, f"scopes: {' '.join(scopes)}", user_id, redirect_uri, callback, open_browser, say,
                       timeout)
    finally:
        server.shutdown()
        server.server_close()
    if not secrets.compare_digest(got.get("state", ""), state):
        raise LoginFailed("the callback's state does not match this login: ignored (another tab or a forgery)")
    if "code" not in got:
        raise LoginFailed(f"X did not authorise: {got.get('error', 'no code')}"
                          + (f" ({got['error_description']})" if got.get("error_description") else ""))
    with XApiClient(app, base_url=settings.x_api_base_url, transport=transport) as x:
        try:
            token = x.exchange_oauth2_code(got["code"], redirect_uri, verifier)
            who = x.me(UserCredentials.oauth2(token.access_token))
        except XApiError as exc:
            raise LoginFailed(f"X refused the code: {exc.code}") from None
    _check_who(who, user_id, desired)
    granted = (token.scope or " ".join(scopes)).split()
    tokens = {"kind": "oauth2", "access_token": token.access_token, "refresh_token": token.refresh_token,
              "expires_in": _seconds_left(token.expires_at)}
    name = store_tokens(stack_name, who, tokens)
    return LoginResult(who, sorted(granted), sorted(set(scopes) - set(granted)), name)


def login_oauth1(stack_name: str, settings: Any, desired: Any, user_id: str | None, *, port: int = DEFAULT_PORT,
                 authorize_url: str = DEFAULT_OAUTH1_AUTHORIZE_URL,
                 open_browser: Callable[[str], Any] = webbrowser.open, timeout: float = 300.0,
                 say: Callable[[str], None] = print, transport: Any = None) -> LoginResult:
    """OAuth 1.0a three-legged: request token with the local callback, consent, access token with the verifier."""
    import httpx

    from xrelay.credentials import SecretUnavailable, load_app_credentials
    from xrelay.tools.cli.operator_cli import store_tokens

    try:
        app = load_app_credentials(settings.app_secret_arn, 0)
    except SecretUnavailable as exc:
        raise LoginFailed(f"the app secret: {exc}") from None
    callback = Callback()
    try:
        server = callback_server(port, callback)
    except OSError as exc:
        raise LoginFailed(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): choose another --port") from None
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with httpx.Client(base_url=settings.x_api_base_url, transport=transport, timeout=10.0) as http:
            request = _oauth1_post(http, app, "/oauth/request_token", callback_uri=redirect_uri)
            if request.get("oauth_callback_confirmed") != "true" or not request.get("oauth_token"):
                raise LoginFailed("X did not confirm the callback (is it registered as a callback URI of the app?)")
            url = authorize_url + "?" + urlencode({"oauth_token": request["oauth_token"]})
            got = _consent(url, "OAuth 1.0a", user_id, redirect_uri, callback, open_browser, say, timeout)
            if "denied" in got:
                raise LoginFailed("X did not authorise: denied")
            if not secrets.compare_digest(got.get("oauth_token", ""), request["oauth_token"]) \
                    or not got.get("oauth_verifier"):
                raise LoginFailed("the callback's oauth_token does not match this login: ignored")
            access = _oauth1_post(http, app, "/oauth/access_token", resource_owner_key=request["oauth_token"],
                                  resource_owner_secret=request.get("oauth_token_secret", ""),
                                  verifier=got["oauth_verifier"])
    finally:
        server.shutdown()
        server.server_close()
    who = access.get("user_id", "")
    if not (access.get("oauth_token") and access.get("oauth_token_secret") and who.isdigit()):
        raise LoginFailed("X's access token answer lacks oauth_token, oauth_token_secret or user_id")
    _check_who(who, user_id, desired)
    name = store_tokens(stack_name, who, {"kind": "oauth1", "access_token": access["oauth_token"],
                                          "access_token_secret": access["oauth_token_secret"]})
    return LoginResult(who, [], [], name)


def _consent(url: str, what: str, user_id: str | None, redirect_uri: str, callback: Callback,
             open_browser: Callable[[str], Any], say: Callable[[str], None], timeout: float) -> dict[str, str]:
    """Send the user to X's consent page ``url`` and wait for X's redirect; its query parameters."""
    say(f"Open this URL and authorise the app as {'user ' + user_id if user_id else 'the user'} "
        f"({what}):\n\n  {url}\n\nwaiting for X to redirect to {redirect_uri} ...")
    open_browser(url)
    if not callback.received.wait(timeout):
        raise LoginFailed(f"no answer from X within {timeout:.0f} s (is {redirect_uri} registered as a "
                          "callback URI of the app at X?)")
    return callback.params


def _check_who(who: str, user_id: str | None, desired: Any) -> None:
    """The user who consented is the one asked for (or, none asked for, one the desired state declares)."""
    if user_id is not None and who != user_id:
        raise LoginFailed(f"logged in at X as user {who}, not {user_id}: nothing stored. Log in as {user_id} "
                          "(or log out of X in that browser first)")
    if user_id is None and who not in declared_users(desired):
        raise LoginFailed(f"user {who} is not in the desired state: nothing stored")


def _oauth1_post(http: Any, app: Any, path: str, **oauth: str) -> dict[str, str]:
    """A POST to one of X's OAuth 1.0a endpoints, signed with the app's consumer key and secret."""
    from urllib.parse import parse_qsl

    from oauthlib.oauth1 import Client as OAuth1Signer

    url = str(http.base_url).rstrip("/") + path
    _, headers, _ = OAuth1Signer(app.consumer_key, client_secret=app.consumer_secret, **oauth).sign(
        url, http_method="POST")
    try:
        response = http.post(url, headers=headers)
    except Exception as exc:
        raise LoginFailed(f"X did not answer {path} ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise LoginFailed(f"X refused {path}: HTTP {response.status_code} (are the app secret's consumer_key and "
                          "consumer_secret the app's?)")
    return dict(parse_qsl(response.text))


def _seconds_left(expires_at: Any) -> int:
    from datetime import UTC, datetime

    return 7200 if expires_at is None else max(0, int((expires_at - datetime.now(UTC)).total_seconds()))


# ---------------------------------------------------------------------------- the command


def add_login_parser(usub: Any) -> None:
    u = usub.add_parser("login", help="authorise a user in a browser: OAuth 2.0 authorization code + PKCE, "
                                      "scopes from the desired state, tokens stored as `users authorize` does")
    u.add_argument("user_id", nargs="?", help="the user who must log in (default: whoever does, if declared)")
    from xrelay.tools.cli.cli_errors import seconds, tcp_port

    u.add_argument("--port", type=tcp_port, default=DEFAULT_PORT,
                   help=f"local callback port (default {DEFAULT_PORT}); register http://127.0.0.1:PORT/callback "
                        "as a callback URI of the app at X")
    u.add_argument("--no-browser", action="store_true", help="print the URL only; open it yourself")
    u.add_argument("--oauth1", action="store_true", help="OAuth 1.0a three-legged flow instead (no scopes: the "
                                                         "app's permissions at X decide)")
    u.add_argument("--timeout", type=seconds, default=300.0, help="seconds to wait for X's redirect (default 300)")
    u.add_argument("--authorize-url", default=None, help=argparse.SUPPRESS)  # a test double of X's consent page
    u.set_defaults(func=cmd_users_login)


def cmd_users_login(args: argparse.Namespace, open_browser: Callable[[str], Any] | None = None) -> int:
    from xrelay.storage.store import StateStore
    from xrelay.subscriptions.reconcile import load_stack_desired
    from xrelay.tools.cli.cli import _stack_settings
    from xrelay.tools.cli.cli_errors import CliError
    from xrelay.tools.cli.operator_cli import check_user_id

    check_user_id(args.user_id)
    settings = _stack_settings(args.stack_name)
    desired = load_stack_desired(StateStore(settings.state_table))
    if desired is None:
        raise CliError("no desired state stored: run `xrelay subscriptions apply FILE` first (the scopes come "
                       "from it)")
    browser = open_browser or ((lambda url: None) if args.no_browser else webbrowser.open)
    flow, variable, default = ((login_oauth1, "X_OAUTH1_AUTHORIZE_URL", DEFAULT_OAUTH1_AUTHORIZE_URL) if args.oauth1
                               else (login, "X_OAUTH2_AUTHORIZE_URL", DEFAULT_AUTHORIZE_URL))
    try:
        result = flow(args.stack_name, settings, desired, args.user_id, port=args.port,
                      authorize_url=args.authorize_url or os.environ.get(variable) or default, open_browser=browser,
                      timeout=args.timeout, say=lambda text: print(text, file=sys.stderr))
    except LoginFailed as exc:  # tried, and X or the browser said no: a failed result (exit 1)
        raise CliError(str(exc), 1) from None
    kind = "oauth1" if args.oauth1 else f"oauth2, scopes: {' '.join(result.scopes)}"
    print(f"user {result.user_id} authorised ({kind}); stored in Secrets Manager as {result.secret_name}")
    if result.missing:
        print(f"xrelay: warning: X did not grant {' '.join(result.missing)}: subscriptions needing them will "
              "fail", file=sys.stderr)
    return 0

"""`xrelay users login`: OAuth 2.0 authorization code + PKCE through a localhost callback, against the fake X.

The fake's consent page (GET /i/oauth2/authorize) stands for X's: the "browser" here is httpx,
following its redirect to the CLI's callback. The stored tokens are then used by the reconcile.
"""

from __future__ import annotations

import json

import httpx
import pytest

from conftest import ALICE, BOB, ROOT, apply_desired
from xrelay.aws import client
from xrelay.storage.store import StateStore
from xrelay.subscriptions.users import UserCredentialStore
from xrelay.tools.cli import oauth_login
from xrelay.tools.cli.cli import main
from xrelay.tools.local.local import app_secret_name

PRIVATE = f"""webhook:
  url: https://abc123.execute-api.us-east-1.amazonaws.com/webhook
account_activity:
  - user_id: "{ALICE}"
activity:
  - event_type: like.create
    filter: {{user_id: "{BOB}"}}
  - event_type: dm.received
    filter: {{user_id: "{BOB}"}}
  - event_type: post.create
    filter: {{user_id: "{BOB}"}}
"""


@pytest.fixture
def app_with_client(fake_x, stack, tmp_path, monkeypatch):
    """The local stack's app secret with the fake's OAuth 2.0 client; the private desired state applied."""
    sm = client("secretsmanager")
    secret = json.loads(sm.get_secret_value(SecretId=app_secret_name("xrelay"))["SecretString"])
    secret.update(client_id=fake_x.client_id, client_secret=fake_x.client_secret)
    sm.put_secret_value(SecretId=app_secret_name("xrelay"), SecretString=json.dumps(secret))
    apply_desired(tmp_path, PRIVATE)
    base = str(httpx.URL(__import__("os").environ["X_API_BASE_URL"]))
    monkeypatch.setenv("X_OAUTH2_AUTHORIZE_URL", base.rstrip("/") + "/i/oauth2/authorize")
    return fake_x


def browser(visited: list[str]):
    """Plays the person's browser: X's consent page, then X's redirect to the callback."""
    def open_url(url: str) -> None:
        visited.append(url)
        httpx.get(url, follow_redirects=True, timeout=10)
    return open_url


def desired(stack):
    from xrelay.subscriptions.reconcile import load_stack_desired
    return load_stack_desired(StateStore(stack.stack.physical("StateTable")))


def test_scopes_come_from_the_desired_state(wired):
    from xrelay.subscriptions.desired import DesiredState
    state = DesiredState.model_validate({
        "webhook": {"url": "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"},
        "account_activity": [{"user_id": ALICE}],
        "activity": [{"event_type": "like.create", "filter": {"user_id": BOB}},
                     {"event_type": "dm.received", "filter": {"user_id": BOB}},
                     {"event_type": "mute.mute", "filter": {"user_id": BOB}},
                     {"event_type": "post.create", "filter": {"user_id": ALICE}}]})
    base = ["offline.access", "tweet.read", "users.read"]
    assert oauth_login.scopes_for(state, ALICE) == sorted(base + ["dm.read", "dm.write"])  # AAA
    assert oauth_login.scopes_for(state, BOB) == sorted(base + ["like.read", "dm.read", "mute.read"])
    assert oauth_login.scopes_for(state, "42") == base  # post.create is public: nothing more


def test_login_stores_the_users_tokens_and_the_reconcile_uses_them(app_with_client, stack, capsys, monkeypatch):
    app_with_client.signed_in_user = BOB
    visited: list[str] = []
    monkeypatch.setattr("webbrowser.open", browser(visited))
    assert main(["users", "login", BOB, "--port", "0", "--timeout", "10"]) == 0
    (url,) = visited
    query = dict(httpx.URL(url).params)
    assert query["code_challenge_method"] == "S256" and query["scope"] == "dm.read like.read offline.access " \
                                                                          "tweet.read users.read"
    assert query["redirect_uri"].startswith("http://127.0.0.1:") and query["redirect_uri"].endswith("/callback")
    out, err = capsys.readouterr()
    assert f"user {BOB} authorised (oauth2" in out and "xrelay/xrelay/users/" + BOB in out
    stored = UserCredentialStore("xrelay").get(BOB)
    assert stored.credentials.kind == "oauth2" and stored.refresh_token == app_with_client.refresh_token_of(BOB)
    assert stored.credentials.access_token not in out + err and stored.refresh_token not in out + err
    assert StateStore(stack.stack.physical("StateTable")).users()[BOB]["status"] == "authorized"
    # The code went to the token endpoint once, with the verifier: X's fake checked S256(verifier) == challenge.
    grants = [r for r in app_with_client.requests if r.path == "/2/oauth2/token"]
    assert len(grants) == 1 and grants[0].status == 200

    event = json.loads((ROOT / "events" / "ReconcileFunction.json").read_text())
    result = stack.invoke("ReconcileFunction", event)  # creates Bob's private subscriptions with his token
    assert BOB not in result["needs_authorization"]
    assert {s["event_type"] for s in app_with_client.xaa_subscriptions.values()} >= {"like.create", "dm.received"}


def test_logging_in_as_someone_else_stores_nothing(app_with_client, stack, capsys):
    app_with_client.signed_in_user = ALICE
    with pytest.raises(oauth_login.LoginFailed, match=f"as user {ALICE}, not {BOB}"):
        oauth_login.login("xrelay", _settings(), desired(stack), BOB, port=0, timeout=10,
                          authorize_url=_authorize_url(), open_browser=browser([]), say=lambda _: None)
    assert UserCredentialStore("xrelay").get(BOB) is None and UserCredentialStore("xrelay").get(ALICE) is None


def test_without_a_user_id_whoever_logs_in_must_be_declared(app_with_client, stack):
    app_with_client.signed_in_user = ALICE
    result = oauth_login.login("xrelay", _settings(), desired(stack), None, port=0, timeout=10,
                               authorize_url=_authorize_url(), open_browser=browser([]), say=lambda _: None)
    assert result.user_id == ALICE and result.missing == []
    app_with_client.signed_in_user = "99"
    with pytest.raises(oauth_login.LoginFailed, match="user 99 is not in the desired state"):
        oauth_login.login("xrelay", _settings(), desired(stack), None, port=0, timeout=10,
                          authorize_url=_authorize_url(), open_browser=browser([]), say=lambda _: None)


def test_a_refusal_at_x_stores_nothing(app_with_client, stack, capsys, monkeypatch):
    app_with_client.signed_in_user, app_with_client.consent = BOB, False
    monkeypatch.setattr("webbrowser.open", browser([]))
    assert main(["users", "login", BOB, "--port", "0", "--timeout", "10"]) == 1
    assert "X did not authorise: access_denied" in capsys.readouterr().err
    assert UserCredentialStore("xrelay").get(BOB) is None


def test_a_forged_callback_is_ignored(app_with_client, stack):
    def forger(url: str) -> None:
        redirect = httpx.URL(dict(httpx.URL(url).params)["redirect_uri"])
        httpx.get(redirect.copy_merge_params({"code": "stolen", "state": "not-ours"}))

    with pytest.raises(oauth_login.LoginFailed, match="state does not match"):
        oauth_login.login("xrelay", _settings(), desired(stack), BOB, port=0, timeout=10,
                          authorize_url=_authorize_url(), open_browser=forger, say=lambda _: None)
    assert not [r for r in app_with_client.requests if r.path == "/2/oauth2/token"]


def test_no_answer_times_out_with_the_callback_to_register(app_with_client, stack):
    with pytest.raises(oauth_login.LoginFailed, match="registered as a callback URI"):
        oauth_login.login("xrelay", _settings(), desired(stack), BOB, port=0, timeout=0.2,
                          authorize_url=_authorize_url(), open_browser=lambda url: None, say=lambda _: None)


def test_an_app_secret_without_client_id_is_refused_before_the_browser(fake_x, stack, tmp_path):
    apply_desired(tmp_path, PRIVATE)
    with pytest.raises(oauth_login.LoginFailed, match="no client_id"):
        oauth_login.login("xrelay", _settings(), desired(stack), BOB, port=0, timeout=1,
                          open_browser=lambda url: pytest.fail("no browser"), say=lambda _: None)


def _settings():
    from aws_lambda_powertools.utilities import parameters

    from xrelay.tools.cli.cli import _stack_settings
    parameters.clear_caches()
    return _stack_settings("xrelay")


def _authorize_url() -> str:
    import os
    return os.environ["X_OAUTH2_AUTHORIZE_URL"]


def test_oauth1_three_legged_login_stores_a_token_pair_the_reconcile_signs_with(app_with_client, stack, capsys,
                                                                                 monkeypatch):
    base = str(httpx.URL(__import__("os").environ["X_API_BASE_URL"])).rstrip("/")
    monkeypatch.setenv("X_OAUTH1_AUTHORIZE_URL", base + "/oauth/authorize")
    app_with_client.signed_in_user = ALICE
    visited: list[str] = []
    monkeypatch.setattr("webbrowser.open", browser(visited))
    assert main(["users", "login", ALICE, "--oauth1", "--port", "0", "--timeout", "10"]) == 0
    (url,) = visited
    assert url.startswith(base + "/oauth/authorize?oauth_token=")
    out, err = capsys.readouterr()
    assert f"user {ALICE} authorised (oauth1)" in out
    stored = UserCredentialStore("xrelay").get(ALICE)
    assert stored.credentials.kind == "oauth1" and stored.credentials.access_token.startswith(ALICE + "-")
    assert stored.credentials.access_token_secret not in out + err

    event = json.loads((ROOT / "events" / "ReconcileFunction.json").read_text())
    result = stack.invoke("ReconcileFunction", event)  # subscribes Alice to AAA, signing with her pair
    assert ALICE not in result["needs_authorization"]
    (hook,) = app_with_client.webhooks
    assert app_with_client.aaa_subscriptions[hook] == [ALICE]


def test_oauth1_refusal_and_wrong_user_store_nothing(app_with_client, stack, monkeypatch):
    base = str(httpx.URL(__import__("os").environ["X_API_BASE_URL"])).rstrip("/")
    app_with_client.signed_in_user, app_with_client.consent = ALICE, False
    kwargs = dict(port=0, timeout=10, authorize_url=base + "/oauth/authorize", open_browser=browser([]),
                  say=lambda _: None)
    with pytest.raises(oauth_login.LoginFailed, match="X did not authorise: denied"):
        oauth_login.login_oauth1("xrelay", _settings(), desired(stack), ALICE, **kwargs)
    app_with_client.consent = True
    with pytest.raises(oauth_login.LoginFailed, match=f"as user {ALICE}, not {BOB}"):
        oauth_login.login_oauth1("xrelay", _settings(), desired(stack), BOB, **kwargs)
    assert UserCredentialStore("xrelay").get(ALICE) is None and UserCredentialStore("xrelay").get(BOB) is None


def test_oauth1_requests_signed_with_another_consumer_secret_are_refused(app_with_client, stack):
    from xrelay.tools.local.local import app_secret_name

    sm = client("secretsmanager")
    secret = json.loads(sm.get_secret_value(SecretId=app_secret_name("xrelay"))["SecretString"])
    sm.put_secret_value(SecretId=app_secret_name("xrelay"),
                        SecretString=json.dumps({**secret, "consumer_secret": "not-the-apps"}))
    with pytest.raises(oauth_login.LoginFailed, match="refused /oauth/request_token: HTTP 401"):
        oauth_login.login_oauth1("xrelay", _settings(), desired(stack), ALICE, port=0, timeout=1,
                                 open_browser=lambda url: pytest.fail("no browser"), say=lambda _: None)

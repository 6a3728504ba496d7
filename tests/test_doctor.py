"""`xrelay doctor` against the local stack: healthy, and broken the ways a first day breaks.

The stack's webhook API is served on a local port (as `xrelay local` serves it) and X is the fake
on another; the doctor sends the CRC and the signed delivery over HTTP like X would.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import httpx
import pytest

from conftest import ALICE, ROOT
from helpers import state_items
from test_command_schemas import validate
from xrelay.aws import client
from xrelay.storage.store import StateStore
from xrelay.subscriptions.users import StoredUser, UserCredentialStore
from xrelay.tools.cli.cli import main
from xrelay.tools.local.local import app_secret_name
from xrelay.tools.operate import doctor


@pytest.fixture
def url(stack):
    server = stack.http_server("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhook"
    server.shutdown()


@pytest.fixture
def healthy(wired, fake_x):
    """Alice authorised and one reconcile run: the webhook registered and valid, subscriptions in sync."""
    UserCredentialStore("xrelay").put(StoredUser(ALICE, fake_x.register_oauth1_user(ALICE)))
    StateStore(wired.stack.physical("StateTable")).mark_authorized(ALICE, datetime.now(UTC))
    event = json.loads((ROOT / "events" / "ReconcileFunction.json").read_text())
    assert wired.invoke("ReconcileFunction", event)["ok"]
    return wired


def by_name(report: doctor.DoctorReport) -> dict[str, doctor.Check]:
    return {check.name: check for check in report.checks}


def stored_events(stack) -> int:
    return client("dynamodb").scan(TableName=stack.stack.physical("EventsTable"), Select="COUNT")["Count"]


def test_a_healthy_local_stack_passes_with_the_https_warning_only(healthy, url):
    report = doctor.run("xrelay", url=url, http=httpx.Client())
    checks = by_name(report)
    assert report.ok
    assert checks["app secret"].status == "pass"
    assert "consumer_secret (checks X's legacy delivery signature" in checks["app secret"].detail
    assert "bearer_token" in checks["app secret"].detail and "previous_consumer_secret" not in checks["app secret"].detail
    assert checks["signing schemes"].status == "pass"
    assert checks["signing schemes"].detail == ("legacy (x-twitter-webhooks-signature, consumer_secret); the CRC "
                                                "answers with consumer_secret (CrcSigningSecret=auto)")
    for name in ("CRC", "signed delivery"):  # right answers, but X registers https:// URLs only
        assert checks[name].status == "warn" and "not over HTTPS" in checks[name].detail
    assert "signed with x-twitter-webhooks-signature (no events) was accepted, forged ones refused" \
        in checks["signed delivery"].detail
    assert [checks[n].status for n in ("desired state", "webhook at X", "subscriptions")] == ["pass"] * 3
    assert checks["alarm topic"].status == "skip" and checks["concurrency"].status == "skip"
    assert stored_events(healthy) == 0  # the test delivery reached no store and no consumer


def test_the_command_prints_each_check_with_its_next_step_and_exits_0(healthy, url, capsys):
    assert main(["doctor", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "WARN  CRC: answered with the consumer_secret's HMAC" in out and "next: X registers https:// URLs only" in out
    assert "PASS  webhook at X:" in out and "0 failed, 2 warning(s)" in out


def test_json_output_follows_the_report_model(healthy, url, capsys):
    assert main(["doctor", "--url", url, "--json"]) == 0
    out = capsys.readouterr().out  # the in-process functions' log lines come first
    validate("doctor", out[out.index("{\n"):])
    report = doctor.DoctorReport.model_validate_json(out[out.index("{\n"):])
    assert report.ok and report.url == url and len(report.checks) == 9


def test_a_missing_secret_fails_with_what_to_do(healthy, url, capsys):
    client("secretsmanager").delete_secret(SecretId=app_secret_name("xrelay"), ForceDeleteWithoutRecovery=True)
    assert main(["doctor", "--url", url]) == 1
    checks = by_name(doctor.run("xrelay", url=url, http=httpx.Client()))
    assert checks["app secret"].status == "fail" and "ResourceNotFoundException" in checks["app secret"].detail
    assert "README: Deploy, step 1" in checks["app secret"].next_step
    assert checks["CRC"].status == "skip"
    assert checks["webhook at X"].status == "fail" and "app secret" in checks["webhook at X"].next_step


def test_a_secret_that_is_not_the_apps_fails_at_x(healthy, url, fake_x):
    wrong = {"consumer_key": "k", "consumer_secret": "not-the-apps", "bearer_token": "not-the-apps-either"}
    client("secretsmanager").put_secret_value(SecretId=app_secret_name("xrelay"), SecretString=json.dumps(wrong))
    checks = by_name(doctor.run("xrelay", url=url, http=httpx.Client()))
    assert checks["app secret"].status == "pass"  # well formed...
    assert checks["webhook at X"].status == "fail"  # ...but X refuses it
    assert "401" in checks["webhook at X"].detail or "Unauthorized" in checks["webhook at X"].detail
    assert "not the app's" in checks["webhook at X"].next_step


def test_a_secret_missing_fields_fails(healthy, url):
    client("secretsmanager").put_secret_value(SecretId=app_secret_name("xrelay"),
                                              SecretString=json.dumps({"consumer_secret": "s"}))
    check, signing = doctor.app_secret_check(app_secret_name("xrelay"))
    assert check.status == "fail" and signing is not None and signing.consumer_secrets == ["s"]
    assert "lacks consumer_key, bearer_token" in check.detail and "s" not in check.detail.split(";")[0].split()


def test_no_desired_state_fails(fake_x, stack, url):
    report = doctor.run("xrelay", url=url, http=httpx.Client())
    checks = by_name(report)
    assert not report.ok
    assert checks["desired state"].status == "fail" and "subscriptions apply" in checks["desired state"].next_step
    assert checks["CRC"].status == "warn"  # the URL still answers; only X's side is unknown
    assert checks["webhook at X"].status == "skip"


def test_a_webhook_x_marked_invalid_fails(healthy, url, fake_x):
    (hook,) = fake_x.webhooks.values()
    hook.valid = False
    checks = by_name(doctor.run("xrelay", url=url, http=httpx.Client()))
    assert checks["webhook at X"].status == "fail" and "marked invalid" in checks["webhook at X"].detail
    assert "ReconcileFunction" in checks["webhook at X"].next_step


def test_an_unknown_stack_exits_2(fake_x, stack, capsys):
    assert main(["doctor", "--stack-name", "nope"]) == 2
    assert "no stack 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("quota,reserved,status", [
    (10, 0, "warn"),  # a new account: deploys, but replays would be throttled
    (10, 310, "fail"), (400, 310, "fail"),  # Lambda keeps 100 (or the whole quota of 10) unreserved
    (410, 310, "warn"), (1000, 0, "pass"), (1000, 310, "pass"), (1000, 950, "fail")])
def test_concurrency_quota_against_the_stacks_reservations(quota, reserved, status):
    check = doctor.concurrency_check(quota, reserved)
    assert check.status == status
    if status == "fail":
        assert f"at least {reserved + 100}" in check.next_step


def test_concurrency_reads_the_account_and_the_stacks_parameters():
    class Lambda:
        def get_account_settings(self):
            return {"AccountLimit": {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 990}}

    check = doctor.concurrency_check_for(Lambda(), {"IntakeReservedConcurrency": "300", "CrcReservedConcurrency": "10"})
    assert check.status == "pass" and "310 reserved" in check.detail
    # Endpoint=FunctionUrl: one function, under IntakeReservedConcurrency; CrcReservedConcurrency reserves nothing
    check = doctor.concurrency_check_for(Lambda(), {"IntakeReservedConcurrency": "300", "CrcReservedConcurrency": "10",
                                                    "Endpoint": "FunctionUrl"})
    assert check.status == "pass" and "300 reserved" in check.detail


def test_the_alarm_topic_needs_a_confirmed_subscriber(stack):
    sns = client("sns")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    assert doctor.alarm_topic_check(sns, topic).status == "warn"
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:123456789012:q")
    assert doctor.alarm_topic_check(sns, topic).status == "pass"


# --- X's two signing schemes (README: X's two signing schemes) ----------------------------------

CLIENT_SECRET, OLD_CLIENT_SECRET = "the-apps-oauth2-client-secret", "the-apps-previous-client-secret"


@pytest.fixture
def with_client_secret(monkeypatch):
    """The app secret holds an OAuth 2.0 client secret (and a rotation's previous one), seeded as `xrelay local` does.

    Listed before the stack's fixtures, so the stack is provisioned with it.
    """
    monkeypatch.setenv("X_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("X_PREVIOUS_CLIENT_SECRET", OLD_CLIENT_SECRET)


def test_with_a_client_secret_the_crc_and_the_delivery_follow_the_oauth2_scheme(with_client_secret, healthy, url):
    checks = by_name(doctor.run("xrelay", url=url, http=httpx.Client()))
    assert checks["signing schemes"].status == "pass"
    assert checks["signing schemes"].detail == (
        "OAuth 2.0 (x-twitter-webhooks-signature-oauth2, client_secret) and legacy (x-twitter-webhooks-signature, "
        "consumer_secret); rotation under way: previous_client_secret still accepted; the CRC answers with "
        "client_secret (CrcSigningSecret=auto)")
    assert checks["CRC"].status == "warn" and "the client_secret's HMAC" in checks["CRC"].detail  # warn: not https
    assert checks["signed delivery"].status == "warn"
    assert ("signed with x-twitter-webhooks-signature-oauth2 and x-twitter-webhooks-signature (no events) was "
            "accepted, forged ones refused") in checks["signed delivery"].detail
    assert CLIENT_SECRET not in doctor.render(doctor.DoctorReport(stack="xrelay", url=url, checks=list(checks.values())))
    assert stored_events(healthy) == 0
    assert state_items(healthy, "signing") == []  # the doctor's delivery is not taken for X's scheme (status)


def forced(local, monkeypatch, choice: str) -> str:
    """The local stack provisioned again, as `xrelay local` starts with CRC_SIGNING_SECRET=choice; its name."""
    # CRC_SIGNING_SECRET stands for the CrcSigningSecret Parameter locally: the stack's Parameter says so too.
    monkeypatch.setenv("CRC_SIGNING_SECRET", choice)
    local.stack.name = "xrelay-" + choice.replace("_", "-")
    local.provision()
    assert local.parameters()["CrcSigningSecret"] == choice
    local._envs.clear()  # the functions read the stack's Parameters again
    return local.stack.name


def test_a_forced_consumer_secret_is_what_the_crc_is_checked_against(monkeypatch, with_client_secret, healthy, url):
    checks = by_name(doctor.run(forced(healthy, monkeypatch, "consumer_secret"), url=url, http=httpx.Client()))
    assert "the CRC answers with consumer_secret (CrcSigningSecret=consumer_secret)" in checks["signing schemes"].detail
    assert checks["CRC"].status == "warn" and "the consumer_secret's HMAC" in checks["CRC"].detail


def test_a_crc_answered_with_the_other_secret_fails_naming_it(monkeypatch, with_client_secret, healthy, url):
    # The stack's Parameter says auto (client_secret here), but the URL answers with the consumer secret.
    monkeypatch.setenv("CRC_SIGNING_SECRET", "consumer_secret")
    healthy._envs.clear()
    checks = by_name(doctor.run("xrelay", url=url, http=httpx.Client()))
    assert checks["CRC"].status == "fail"
    assert checks["CRC"].detail == ("answered with the consumer_secret's HMAC, not the client_secret's "
                                    "(CrcSigningSecret=auto)")
    assert "CrcSigningSecret" in checks["CRC"].next_step


def test_a_forced_client_secret_the_app_secret_lacks_fails_the_signing_check(monkeypatch, healthy, url):
    checks = by_name(doctor.run(forced(healthy, monkeypatch, "client_secret"), url=url, http=httpx.Client()))
    check = checks["signing schemes"]
    assert check.status == "fail" and "holds no client_secret" in check.detail
    assert check.next_step == "add client_secret to the app secret, or deploy with CrcSigningSecret=auto"
    assert checks["CRC"].status == "skip"  # nothing to compare with; the signing check says why


class Accepting:
    """A webhook URL that answers every POST with ``status``, except those ``refuses`` picks."""

    def __init__(self, refuses):
        self.refuses, self.posts = refuses, []

    def post(self, url, content, headers):
        self.posts.append(headers)
        return httpx.Response(403 if self.refuses(headers) else 200)


def test_a_url_that_falls_back_to_the_legacy_signature_fails():
    from xrelay.credentials import SigningSecrets
    from xrelay.receiving.signature import LEGACY_HEADER, OAUTH2_HEADER, sign

    signing = SigningSecrets(consumer="consumer", client="client")
    body = json.dumps(doctor.EMPTY_DELIVERY).encode()
    legacy_only = Accepting(lambda headers: headers[LEGACY_HEADER] != sign("consumer", body))
    check = doctor.delivery_check(legacy_only, "https://example.com/webhook", signing)
    assert check.status == "fail"
    assert check.detail == "a forged OAuth 2.0 signature beside a right legacy one got 200 (not 401/403)"
    assert [sorted(h) for h in legacy_only.posts] == [["content-type", LEGACY_HEADER, OAUTH2_HEADER]] * 3
    both = Accepting(lambda headers: headers[OAUTH2_HEADER] != sign("client", body))
    assert doctor.delivery_check(both, "https://example.com/webhook", signing).status == "pass"

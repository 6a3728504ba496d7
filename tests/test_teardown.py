"""`xrelay teardown` against the strict fake X (served over HTTP) and the stack's real state table (moto).

Each test starts from what a reconcile built (webhook, AAA user, public and private XAA subscriptions)
next to things that are not ours (another environment's webhook and its subscription, a stream-only
subscription), tears down, and checks X's side (the fake's state), the calls made (its request log)
and the stack's state table.
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import httpx
import pytest

from conftest import ALICE, BOB, ROOT
from conftest import DESIRED as CORE_DESIRED
from conftest import WEBHOOK_URL as URL
from test_command_schemas import validate
from xrelay.storage.store import StateStore
from xrelay.subscriptions import reconcile
from xrelay.subscriptions.users import StoredUser, UserCredentialStore
from xrelay.tools.cli.cli import _stack_settings, main
from xrelay.tools.operate import teardown

OTHER_URL = "https://staging.example.com/webhook"
DESIRED = CORE_DESIRED + f"""  - event_type: like.create
    filter: {{user_id: "{ALICE}", direction: inbound}}
"""
XAA_DELETE = "DELETE /2/activity/subscriptions/:subscription_id"
AAA_DELETE = "DELETE /2/account_activity/webhooks/:webhook_id/subscriptions/:user_id/all"


class World:
    """The stack after a reconcile, with another environment's things at the same X app."""

    def __init__(self, fake, stack, desired_file):
        self.x, self.stack, self.desired_file = fake, stack, desired_file
        self.state = StateStore(stack.stack.physical("StateTable"))
        self.settings = _stack_settings("xrelay")
        self.clock = [time.time()]  # the fake's clock, moved by tests that wait out a rate limit
        fake.clock = lambda: self.clock[0]

        creds = fake.register_oauth1_user(ALICE)
        UserCredentialStore("xrelay").put(StoredUser(ALICE, creds))
        self.state.mark_authorized(ALICE, datetime.now(UTC))
        assert main(["subscriptions", "apply", str(desired_file)]) == 0
        run = reconcile.run_for_stack(self.settings)
        assert run.report.created == 3 and not run.report.failed
        (self.hook,) = fake.webhooks

        fake.webhook_limit = 2  # another environment holds the second slot (X's account-wide limit)
        self.other_hook = fake.add_webhook(OTHER_URL)
        self.other_sub = fake.add_xaa_subscription("post.create", {"user_id": BOB}, webhook_id=self.other_hook)
        self.stream_only = fake.add_xaa_subscription("follow.follow", {"user_id": BOB})
        fake.aaa_subscriptions[self.other_hook].append(BOB)
        fake.requests.clear()

    def ours_at_x(self) -> tuple[bool, list[str], int]:
        """(our webhook exists, AAA users on it, XAA subscriptions delivered to it)."""
        return (self.hook in self.x.webhooks, self.x.aaa_subscriptions.get(self.hook, []),
                sum(s.get("webhook_id") == self.hook for s in self.x.xaa_subscriptions.values()))

    def theirs_untouched(self) -> bool:
        return (self.other_hook in self.x.webhooks and self.x.aaa_subscriptions[self.other_hook] == [BOB]
                and {self.other_sub, self.stream_only} <= self.x.xaa_subscriptions.keys())

    def writes(self) -> list[str]:
        return [f"{r.endpoint} as {r.auth} -> {r.status}" for r in self.x.write_requests]

    def teardown(self, transport=None, **options) -> teardown.TeardownResult:
        """The core, through a wrapper of the fake when a test needs X to misbehave."""
        return teardown.run_for_stack(self.settings, transport=transport, **options)


@pytest.fixture
def world(fake_x, stack, tmp_path):
    (tmp_path / "x.yaml").write_text(DESIRED)
    return World(fake_x, stack, tmp_path / "x.yaml")


def json_output(capsys) -> dict:
    """The --json document on stdout, checked against the committed schema."""
    return validate("teardown", capsys.readouterr().out)


def test_teardown_removes_subscriptions_then_the_webhook_and_nothing_that_is_not_ours(world, capsys):
    assert main(["teardown", "--yes"]) == 0

    assert world.ours_at_x() == (False, [], 0)
    assert world.theirs_untouched()
    assert world.writes() == [  # XAA first, then AAA, the webhook last; all with the app's bearer token
        f"{XAA_DELETE} as app -> 200",
        f"{XAA_DELETE} as app -> 200",
        f"{AAA_DELETE} as app -> 200",
        "DELETE /2/webhooks/:webhook_id as app -> 200",
    ]
    out, err = capsys.readouterr()
    target, *progress = err.splitlines()  # first which stack and account it talks to
    assert target.startswith("xrelay: stack 'xrelay' in AWS account 123456789012, region us-east-1")
    assert [line.split(":")[0] for line in progress] == [f"[{n}/4] removed" for n in (1, 2, 3, 4)]
    assert f"AAA user {ALICE}" in out and f"XAA post.create {{user_id: {BOB}}} tag 'posts'" in out
    assert "not ours, left alone: 1 other webhook(s), 2 XAA subscription(s)" in out
    assert "removed 4, already gone 0" in out and "sam delete" in out
    assert world.state.torn_down_at() is not None
    assert world.state.webhook_health(URL) is None  # a later registration is a first one, not an outage's end


def test_a_second_run_finds_nothing_asks_nothing_and_exits_0(world, capsys, monkeypatch):
    assert main(["teardown", "--yes"]) == 0
    marked = world.state.torn_down_at()
    world.x.requests.clear()
    capsys.readouterr()

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, and no --yes: nothing to confirm
    assert main(["teardown", "--json"]) == 0
    document = json_output(capsys)
    assert (document["outcome"], document["items"], document["webhook_id"]) == ("nothing_to_do", [], None)
    assert document["not_ours"] == {"other_webhooks": 1, "xaa_elsewhere": None}  # not listed: no webhook of ours
    assert world.x.write_requests == [] and world.state.torn_down_at() == marked


def test_dry_run_lists_everything_and_changes_nothing(world, capsys):
    assert main(["teardown", "--dry-run", "--json"]) == 0
    document = json_output(capsys)

    assert world.x.write_requests == [] and all(r.method == "GET" for r in world.x.requests)
    assert world.ours_at_x() == (True, [ALICE], 2)
    assert world.state.torn_down_at() is None and world.state.webhook_health(URL) is not None
    assert document["outcome"] == "dry_run" and document["counts"]["found"] == 4
    assert [(i["kind"], i["status"]) for i in document["items"]] == [
        ("xaa_subscription", "planned"), ("xaa_subscription", "planned"), ("aaa_subscription", "planned"),
        ("webhook", "planned")]
    assert document["not_ours"] == {"other_webhooks": 1, "xaa_elsewhere": 2}


def test_without_yes_a_non_interactive_stdin_is_refused_with_exit_2(world, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))  # piped: never taken as a confirmation
    assert main(["teardown"]) == 2
    out, err = capsys.readouterr()
    assert "--yes" in err and "not confirmed: nothing changed" in out
    assert f"AAA user {ALICE}" in out  # what would have been removed was listed
    assert world.x.write_requests == [] and world.state.torn_down_at() is None


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "code", "removed"), [("n\n", 2, False), ("\n", 2, False), ("yes\n", 0, True)])
def test_an_interactive_run_asks_and_only_yes_tears_down(world, capsys, monkeypatch, answer, code, removed):
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    assert main(["teardown"]) == code
    assert "Remove these 4 item(s) at X" in capsys.readouterr().err
    assert world.ours_at_x() == ((False, [], 0) if removed else (True, [ALICE], 2))


def test_a_429_stops_cleanly_says_what_is_left_and_a_later_run_finishes(world, capsys):
    world.x.rate_limits[AAA_DELETE] = 0  # X answers the AAA unsubscribe with 429
    assert main(["teardown", "--yes", "--json"]) == 1
    document = json_output(capsys)

    reset = datetime.fromtimestamp(world.x.rate_limit_reset(AAA_DELETE), UTC)
    assert document["rate_limited"] is True
    assert datetime.fromisoformat(document["rate_limited_until"]) == reset
    assert [(i["kind"], i["status"]) for i in document["items"]] == [
        ("xaa_subscription", "removed"), ("xaa_subscription", "removed"), ("aaa_subscription", "left"),
        ("webhook", "left")]
    assert f"run again after {reset:%Y-%m-%dT%H:%M:%SZ}" in document["items"][-1]["reason"]
    assert [r.status for r in world.x.write_requests] == [200, 200, 429]  # nothing tried after the 429
    assert world.ours_at_x() == (True, [ALICE], 0)
    assert document["torn_down_at"] is not None  # paused already: the reconcile must not re-create them

    world.clock[0] += 15 * 60  # X's window resets
    world.x.rate_limits[AAA_DELETE] = 500
    assert main(["teardown", "--yes", "--json"]) == 0
    assert json_output(capsys)["counts"] == {"found": 2, "removed": 2, "already_gone": 0, "failed": 0, "left": 0}
    assert world.ours_at_x() == (False, [], 0) and world.theirs_untouched()


def test_a_spent_budget_stops_before_x_has_to_answer_429(world):
    world.x.rate_limits[XAA_DELETE] = 1  # the first delete's answer says "remaining 0"
    result = world.teardown()
    assert [i.status for i in result.items] == ["removed", "left", "left", "left"]
    assert result.rate_limited and result.outcome == "incomplete"
    assert all(r.status != 429 for r in world.x.requests)


def test_a_refused_subscription_keeps_the_webhook_and_the_others_still_go(world):
    victim = next(s for s, body in world.x.xaa_subscriptions.items() if body["event_type"] == "like.create")

    def refuse_one_delete(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and request.url.path.endswith(victim):
            return httpx.Response(503, json={"title": "Service Unavailable", "detail": "try later", "status": 503})
        return world.x(request)

    result = world.teardown(httpx.MockTransport(refuse_one_delete))
    by_kind = {(i.kind, i.id): (i.status, i.reason) for i in result.items}
    assert by_kind[("xaa_subscription", victim)] == ("failed", "ServiceUnavailable")
    assert by_kind[("aaa_subscription", ALICE)] == ("removed", None)
    assert by_kind[("webhook", world.hook)][0] == "left" and "1 subscription(s)" in by_kind[("webhook", world.hook)][1]
    assert result.outcome == "incomplete" and world.ours_at_x() == (True, [], 1)
    assert world.state.webhook_health(URL) is not None  # the webhook is still there: still known

    again = world.teardown()  # X recovered
    assert again.outcome == "done" and world.ours_at_x() == (False, [], 0) and world.theirs_untouched()


def test_a_section_x_will_not_list_keeps_the_webhook(world):
    def refuse_aaa_list(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/subscriptions/all/list"):
            return httpx.Response(403, json={"title": "Forbidden", "detail": "no", "status": 403})
        return world.x(request)

    result = world.teardown(httpx.MockTransport(refuse_aaa_list))
    assert result.unreadable == ["AAA list: Forbidden"]
    assert [(i.kind, i.status) for i in result.items] == [("xaa_subscription", "removed")] * 2 + [("webhook", "left")]
    assert "would not list" in result.items[-1].reason and result.outcome == "incomplete"
    assert world.ours_at_x() == (True, [ALICE], 0)


def test_what_is_gone_by_the_time_it_is_deleted_counts_as_removed(world):
    def someone_else_was_faster(result: teardown.TeardownResult) -> bool:
        xaa = next(i.id for i in result.items if i.kind == "xaa_subscription")
        del world.x.xaa_subscriptions[xaa]  # X: 404
        world.x.aaa_subscriptions[world.hook].remove(ALICE)  # X: SubscriptionNotFound
        return True

    result = world.teardown(confirm=someone_else_was_faster)
    assert [(i.status, i.reason) for i in result.items] == [
        ("already_gone", "ResourceNotFound"), ("removed", None), ("already_gone", "SubscriptionNotFound"),
        ("removed", None)]
    assert result.outcome == "done"


def test_keep_webhook_removes_only_the_subscriptions(world, capsys):
    assert main(["teardown", "--yes", "--keep-webhook", "--json"]) == 0
    document = json_output(capsys)
    assert [i["kind"] for i in document["items"]] == ["xaa_subscription", "xaa_subscription", "aaa_subscription"]
    assert world.ours_at_x() == (True, [], 0) and world.theirs_untouched()
    assert document["keep_webhook"] is True and world.state.torn_down_at() is not None


def test_the_reconcile_idles_after_a_teardown_and_resumes_after_an_apply(world, capsys):
    assert main(["teardown", "--yes"]) == 0
    world.x.requests.clear()
    event = json.loads((ROOT / "events" / "ReconcileFunction.json").read_text())

    idle = world.stack.invoke("ReconcileFunction", event)  # the scheduled run, if the stack still runs
    assert idle["ok"] and idle["idle"].startswith("torn down at ")
    assert "xrelay subscriptions apply" in idle["idle"] and world.x.requests == []
    assert main(["subscriptions", "status"]) == 2  # and says why instead of planning
    assert "torn down at" in capsys.readouterr().err

    assert main(["subscriptions", "apply", str(world.desired_file)]) == 0
    resumed = world.stack.invoke("ReconcileFunction", event)
    assert resumed["ok"] and resumed["idle"] is None and resumed["created"] == 3
    (hook,) = [w.id for w in world.x.webhooks.values() if w.url == URL]
    assert world.x.aaa_subscriptions[hook] == [ALICE]
    assert world.state.torn_down_at() is None
    assert world.state.webhook_outages() == []  # the torn-down stretch is not an outage to replay


def test_without_a_desired_state_or_a_stack_it_refuses_with_exit_2(fake_x, stack, capsys):
    assert main(["teardown", "--yes"]) == 2
    assert "no desired state stored" in capsys.readouterr().err
    assert main(["teardown", "--stack-name", "nope", "--yes"]) == 2
    assert "'nope'" in capsys.readouterr().err
    assert fake_x.requests == []


def test_x_unreadable_is_exit_1_and_nothing_is_marked(world, capsys, monkeypatch):
    world.x.rate_limits["GET /2/webhooks"] = 0
    assert main(["teardown", "--yes", "--json"]) == 1
    document = json_output(capsys)
    assert document["rate_limited"] is True and document["error"].startswith("X's rate limit while reading")
    assert world.x.write_requests == [] and world.state.torn_down_at() is None

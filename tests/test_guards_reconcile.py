"""The reconcile's match of our webhook among its neighbours (issue 19: every other test has one webhook).

X lists every webhook of the app; the reconcile must pick ours by URL, never a neighbour's whose URL
differs only where it matters (the path, its case, a suffix), and must leave the neighbours and their
subscriptions alone.
"""

from __future__ import annotations

import pytest

from test_reconcile import ALICE, BOB, URL, World, desired
from xrelay.subscriptions.reconcile import observe
from xrelay.subscriptions.xapi import same_url

NEIGHBOURS = [
    "https://abc123.execute-api.us-east-1.amazonaws.com/Webhook",  # the path is case-sensitive
    "https://abc123.execute-api.us-east-1.amazonaws.com/webhook2",  # a longer path on the same host
    "https://abc123.execute-api.us-east-1.amazonaws.com/",  # the host alone
    "http://abc123.execute-api.us-east-1.amazonaws.com/webhook",  # another scheme
    "https://abc124.execute-api.us-east-1.amazonaws.com/webhook",  # another stack, same path
]


@pytest.mark.parametrize("other", NEIGHBOURS)
def test_a_url_that_differs_in_path_scheme_or_host_is_another_webhook(other):
    assert not same_url(other, URL) and not same_url(URL, other)


@pytest.mark.parametrize("ours", [URL, URL.upper().replace("/WEBHOOK", "/webhook"),
                                  "HTTPS://abc123.Execute-API.us-east-1.amazonaws.com/webhook"])
def test_the_case_of_the_scheme_and_host_does_not_matter(ours):
    assert same_url(ours, URL) and same_url(URL, ours)


@pytest.fixture
def world(stack):
    return World(stack)


def test_our_webhook_is_found_among_neighbours_listed_before_and_after_it(world):
    world.x.webhook_limit = len(NEIGHBOURS) + 1
    before = [world.x.add_webhook(url) for url in NEIGHBOURS[:3]]
    ours = world.x.add_webhook(URL.replace("https://abc123", "HTTPS://ABC123"), valid=False)
    after = [world.x.add_webhook(url) for url in NEIGHBOURS[3:]]
    with world.x.client() as client:
        obs = observe(client, desired())
    assert obs.webhook is not None and obs.webhook.id == ours and not obs.webhook.valid
    assert sorted(w.id for w in obs.other_webhooks) == sorted(before + after)


def test_only_our_invalid_webhook_is_revalidated_and_only_its_subscriptions_pruned(world):
    world.x.webhook_limit = 3
    neighbour = world.x.add_webhook(NEIGHBOURS[1], valid=False)  # same host, longer path, also invalid
    ours = world.x.add_webhook(URL, valid=False)
    sibling = world.x.add_webhook(NEIGHBOURS[0])
    mine = world.x.add_xaa_subscription("post.delete", {"user_id": BOB}, webhook_id=ours)
    theirs = world.x.add_xaa_subscription("post.delete", {"user_id": BOB}, webhook_id=neighbour)
    world.x.aaa_subscriptions[neighbour] = [ALICE]

    report = world.run(desired(prune=True))
    writes = world.writes()
    assert writes.count("PUT PUT /2/webhooks/:webhook_id as app") == 1
    assert [r.path for r in world.x.write_requests if r.method == "PUT"] == [f"/2/webhooks/{ours}"]
    assert world.x.webhooks[ours].valid and not world.x.webhooks[neighbour].valid
    assert mine not in world.x.xaa_subscriptions and theirs in world.x.xaa_subscriptions
    assert world.x.aaa_subscriptions[neighbour] == [ALICE] and set(world.x.webhooks) == {neighbour, ours, sibling}
    assert report.deleted == 1


def test_the_plan_counts_our_invalid_webhook_as_one_drift_and_names_the_neighbours_when_ours_is_missing(world):
    world.x.webhook_limit = 3
    neighbour = world.x.add_webhook(NEIGHBOURS[1], valid=False)
    ours = world.x.add_webhook(URL, valid=False)
    plan = world.plan(desired())
    assert plan.drift == 1
    assert [(r.desired, r.actual, r.next) for r in plan.rows if r.what == "webhook"] == [
        (URL, f"id {ours}, INVALID", "re-validate (PUT)")]
    del world.x.webhooks[ours]
    plan = world.plan(desired())
    assert plan.drift == 1 and neighbour not in str(plan.rows)
    assert [r.actual for r in plan.rows if r.what == "webhook"] == ["missing (X has 1 other webhook(s), left alone)"]


def test_out_of_time_every_remaining_action_is_skipped_and_the_log_says_how_many(world, caplog):
    from xrelay.subscriptions.reconcile import StackUsers, reconcile

    users = ["101", "102", "103", "104", "105"]
    want = desired(activity=[{"event_type": "post.create", "filter": {"user_id": u}} for u in users])
    left = iter([120.0, 60.0] + [10.0] * 10)  # seconds the Lambda has left before each action
    with world.x.client() as client:
        report = reconcile(want, client, StackUsers(world.state, world.secrets), world.state,
                           seconds_left=lambda: next(left))
    assert (report.created, report.skipped, report.out_of_time) == (1, 4, True)  # register + 1 create, 4 left
    assert "out of time: 4 action(s) left for the next run" in caplog.text

"""The reconcile against X's failure shapes: a list that failed inside a 200, and the field's error bodies.

A list X could not serve must never read as "nothing exists": the reconcile would re-create
everything, and a prune would misjudge what is there. And the reconcile's decisions (already done,
gone, CRC failed) hold whether X names its reason in the spec's ``Error`` or in the shapes its
servers send in the field.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from fakex import BASE_URL
from test_reconcile import ALICE, BOB, FULL, URL, World, desired
from xrelay.subscriptions.reconcile import StackUsers, observe, reconcile
from xrelay.subscriptions.xapi import XApiClient, XApiError

AAA_LIST = "GET /2/account_activity/webhooks/:webhook_id/subscriptions/all/list"
XAA_LIST = "GET /2/activity/subscriptions"


@pytest.fixture
def world(stack):
    return World(stack)


@pytest.mark.parametrize("failing", [AAA_LIST, XAA_LIST])
def test_a_list_that_failed_inside_a_200_changes_nothing_in_its_section(world, failing):
    world.authorize(ALICE)
    hook = world.x.add_webhook(URL)
    stray = world.x.add_xaa_subscription("post.create", {"user_id": "99"}, webhook_id=hook)  # prune would delete it
    world.x.aaa_subscriptions[hook].append("98")
    world.x.errors_in_200 = {failing}

    report = world.run(desired(**FULL, prune=True))

    section = "account_activity" if failing == AAA_LIST else "/2/activity/subscriptions"
    assert not [w for w in world.x.write_requests if section in w.path]  # nothing created, nothing pruned
    if failing == AAA_LIST:
        assert "98" in world.x.aaa_subscriptions[hook] and stray not in world.x.xaa_subscriptions
    else:
        assert stray in world.x.xaa_subscriptions and "98" not in world.x.aaa_subscriptions[hook]
    unknown = f"AAA user {ALICE}" if failing == AAA_LIST else f"XAA post.create {{user_id: {BOB}}}"
    assert [r.next for r in report.plan.rows if r.what == unknown] == ["-"]  # left for a run that can see
    # The other section went on (and was pruned: its list was complete).
    other = "/2/activity/subscriptions" if failing == AAA_LIST else "account_activity"
    assert [w for w in world.x.write_requests if other in w.path]


def test_a_webhook_list_that_failed_inside_a_200_registers_nothing(world):
    world.x.errors_in_200 = {"GET /2/webhooks"}
    with world.x.client() as client, pytest.raises(XApiError) as raised:
        observe(client, desired(**FULL))
    assert (raised.value.status, raised.value.code) == (200, "ResourceUnavailable")
    assert world.x.write_requests == [] and world.x.webhooks == {}


@pytest.mark.parametrize("shapes", ["spec", "field"])
@pytest.mark.parametrize("answer", ["error", "valid_false"])
def test_a_failed_revalidation_is_not_valid_in_every_shape(world, shapes, answer):
    hook = world.x.add_webhook(URL, valid=False)
    world.x.crc_passes, world.x.crc_failure_answer, world.x.error_shapes = False, answer, shapes
    report = world.run(desired(), now=datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    assert report.webhook_valid is False and report.errors["CrcValidationFailed"] == 1
    assert world.x.webhooks[hook].valid is False


@pytest.mark.parametrize("shapes", ["spec", "field"])
def test_x_s_named_errors_drive_the_reconcile_in_every_shape(world, shapes):
    world.authorize(ALICE)
    hook = world.x.add_webhook(URL)
    world.x.error_shapes = shapes
    world.x.xaa_subscription_limit = 0
    world.x.aaa_subscription_limit = 0  # AAA subscribe refused: SubscriptionLimitExceeded
    report = world.run(desired(**FULL))
    assert report.errors["SubscriptionLimitExceeded"] == 3 and len(report.failed) == 3
    assert world.x.aaa_subscriptions[hook] == [] and world.x.xaa_subscriptions == {}


@pytest.mark.parametrize("in_a_200", [False, True], ids=["404-problem", "problem-inside-a-200"])
def test_a_pruned_subscription_someone_else_deleted_first_is_already_so(world, in_a_200):
    hook = world.x.add_webhook(URL)
    stray = world.x.add_xaa_subscription("post.create", {"user_id": "99"}, webhook_id=hook)

    def deleted_first(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and request.url.path.endswith(f"/activity/subscriptions/{stray}"):
            del world.x.xaa_subscriptions[stray]  # another operator was faster
            if in_a_200:
                return httpx.Response(200, json={"errors": [{
                    "type": "https://api.x.com/2/problems/resource-not-found", "title": "Not Found Error",
                    "detail": f"Could not find subscription with id: [{stray}].", "resource_type": "subscription"}]})
        return world.x(request)

    with XApiClient(world.x.app, base_url=BASE_URL, transport=httpx.MockTransport(deleted_first)) as client:
        report = reconcile(desired(prune=True), client, StackUsers(world.state, world.secrets), world.state)
    assert report.failed == [] and report.errors["ResourceNotFound"] == 1
    assert [d for d in report.done if "ResourceNotFound, already so" in d]

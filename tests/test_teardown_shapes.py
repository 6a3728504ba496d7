"""Teardown against the failure shapes X's spec declares: "not found" inside a 200 is gone all the same."""

from __future__ import annotations

import httpx
import pytest

from test_teardown import DESIRED, World


@pytest.fixture
def world(fake_x, stack, tmp_path):
    (tmp_path / "x.yaml").write_text(DESIRED)
    return World(fake_x, stack, tmp_path / "x.yaml")


def test_a_resource_not_found_problem_inside_a_200_counts_as_already_gone(world):
    def not_found_in_a_200(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE" and "/2/activity/subscriptions/" in request.url.path:
            sid = request.url.path.rsplit("/", 1)[1]
            world.x.xaa_subscriptions.pop(sid, None)  # someone else was faster; X says so inside a 200
            return httpx.Response(200, json={"errors": [{
                "type": "https://api.x.com/2/problems/resource-not-found", "title": "Not Found Error",
                "detail": f"Could not find subscription with id: [{sid}].", "resource_type": "subscription"}]})
        return world.x(request)

    result = world.teardown(httpx.MockTransport(not_found_in_a_200))
    assert [(i.kind, i.status, i.reason) for i in result.items if i.kind == "xaa_subscription"] == [
        ("xaa_subscription", "already_gone", "ResourceNotFound")] * 2
    assert result.outcome == "done" and world.ours_at_x() == (False, [], 0) and world.theirs_untouched()


def test_a_failure_inside_a_200_is_not_taken_for_success(world):
    world.x.errors_in_200 = {"DELETE /2/webhooks/:webhook_id"}
    result = world.teardown()
    (webhook,) = [i for i in result.items if i.kind == "webhook"]
    assert (webhook.status, webhook.reason) == ("failed", "ResourceUnavailable")
    assert result.outcome != "done" and world.hook in world.x.webhooks

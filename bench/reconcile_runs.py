"""Bench section 5: The reconcile, per run: calls to X (reads and writes, by endpoint) and AWS calls (by operation),
against the strict fake X of the tests and moto, for a desired state of 10 AAA users and 50 XAA
subscriptions (25 public, 25 private). Runs: from nothing; again with no drift; after X lost
5 XAA subscriptions and 1 AAA user; and a no-drift run of an app with 2,500 XAA subscriptions
on its webhook (X pages by 1,000). The figure to watch is writes per change (1.0) and 0 writes
when nothing drifted.

Alone: ``.venv/bin/python bench/reconcile_runs.py``; ``make bench`` runs every section (bench/run.py).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from typing import Any

# bench/common.py first: it sets the environment before anything imports boto3 or xrelay.
from common import (
    ROOT,
    quiet_stdout,
    table,
)


@contextlib.contextmanager
def counting_aws_calls(calls: list[str]):
    """Append every botocore call made inside to ``calls``, as "service.Operation"."""
    import botocore.client

    original = botocore.client.BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        calls.append(f"{self.meta.service_model.service_name}.{operation_name}")
        return original(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = counting
    try:
        yield calls
    finally:
        botocore.client.BaseClient._make_api_call = original


def measure_reconcile() -> dict[str, Any]:
    from moto import mock_aws

    sys.path.insert(0, str(ROOT / "tests"))
    from fakex import FakeX
    from xrelay.aws import client
    from xrelay.storage.store import StateStore
    from xrelay.subscriptions.desired import DesiredState
    from xrelay.subscriptions.reconcile import StackUsers, reconcile
    from xrelay.subscriptions.users import StoredUser, UserCredentialStore
    from xrelay.tools.local.local import LocalStack

    url = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
    aaa = [str(4_000_000_000 + i) for i in range(10)]
    public = [str(5_000_000_000 + i) for i in range(25)]
    private = [str(6_000_000_000 + i) for i in range(25)]
    desired = DesiredState.model_validate({
        "webhook": {"url": url},
        "account_activity": [{"user_id": u} for u in aaa],
        "activity": [{"event_type": "post.create", "filter": {"user_id": u}} for u in public]
        + [{"event_type": "like.create", "filter": {"user_id": u}} for u in private],
    })
    aws_calls: list[str] = []
    def run(fake: FakeX, state: StateStore, secrets: UserCredentialStore, want: DesiredState) -> dict[str, Any]:
        fake.requests.clear()
        aws_calls.clear()
        with fake.client() as x:
            report = reconcile(want, x, StackUsers(state, secrets), state)
        reads = [r for r in fake.requests if not r.is_write]
        writes = [r for r in fake.requests if r.is_write]
        changes = report.created + report.updated + report.deleted + sum(1 for d in report.done if "webhook" in d)
        return {"x_reads": len(reads), "x_writes": len(writes), "changes": changes,
                "writes_per_change": len(writes) / changes if changes else None,
                "x_by_endpoint": dict(sorted(Counter(f"{r.endpoint} ({r.auth})" for r in fake.requests).items())),
                "aws_calls": len(aws_calls), "aws_by_operation": dict(sorted(Counter(aws_calls).items())),
                "drift": report.plan.drift, "errors": dict(report.errors)}

    results: dict[str, Any] = {"desired": {"aaa_users": len(aaa), "xaa": len(desired.activity)}}
    with counting_aws_calls(aws_calls), quiet_stdout(), mock_aws():
        client.cache_clear()
        stack = LocalStack(ROOT, "xrelay-bench")
        stack.provision()
        state = StateStore(stack.stack.physical("StateTable"))
        secrets = UserCredentialStore("xrelay-bench")
        # check_spec off: the tests hold the fake to X's spec; here it would time openapi-core, not xrelay.
        fake = FakeX(aaa_subscription_limit=10_000, xaa_subscription_limit=100_000, page_size=1000, check_spec=False)
        for user_id in aaa + private:
            secrets.put(StoredUser(user_id, fake.register_oauth1_user(user_id)))
        results["from nothing"] = run(fake, state, secrets, desired)
        results["no drift"] = run(fake, state, secrets, desired)
        hook = next(iter(fake.webhooks))
        for sub_id in list(fake.xaa_subscriptions)[:5]:
            del fake.xaa_subscriptions[sub_id]
        fake.aaa_subscriptions[hook].remove(aaa[0])
        results["after X lost 6"] = run(fake, state, secrets, desired)
        for i in range(2_500 - len(fake.xaa_subscriptions)):
            fake.add_xaa_subscription("post.delete", {"user_id": str(7_000_000_000 + i)}, webhook_id=hook)
        big = DesiredState.model_validate({
            **desired.model_dump(exclude={"warnings"}),
            "activity": [{"event_type": s["event_type"], "filter": s["filter"]}
                         for s in fake.xaa_subscriptions.values()]})
        results["no drift, 2,500 XAA"] = run(fake, state, secrets, big)
        client.cache_clear()
    return results


def render(results: dict[str, Any]) -> list[str]:
    """Section 5 of the report, from ``results["reconcile"]``."""
    out: list[str] = []
    rec = results["reconcile"]
    out.append(f"5. Reconcile, per run (strict fake X + moto; desired: {rec['desired']['aaa_users']} AAA users, "
               f"{rec['desired']['xaa']} XAA subscriptions, half of them private)")
    rows = []
    for name in ("from nothing", "no drift", "after X lost 6", "no drift, 2,500 XAA"):
        r = rec[name]
        rows.append([name, r["drift"], r["x_reads"], r["x_writes"], r["changes"],
                     "-" if r["writes_per_change"] is None else f"{r['writes_per_change']:.2f}", r["aws_calls"]])
    out.append(table(["run", "drift", "X reads", "X writes", "changes", "writes/change", "AWS calls"], rows))
    for name in ("no drift", "after X lost 6"):
        out.append(f"   {name}: X " + ", ".join(f"{k} x{n}" for k, n in rec[name]["x_by_endpoint"].items()))
        out.append(f"   {name}: AWS " + ", ".join(f"{k} x{n}" for k, n in rec[name]["aws_by_operation"].items()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()  # --help
    print("\n".join(render({"reconcile": measure_reconcile()})))


if __name__ == "__main__":
    main()

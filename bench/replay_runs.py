"""Bench section 6: The replay, per ReplayFunction run: its whole path with a cold secret cache, AWS calls by
operation and calls to X, against the strict fake X of the tests and moto.

Alone: ``.venv/bin/python bench/replay_runs.py``; ``make bench`` runs every section (bench/run.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from datetime import timedelta
from typing import Any

# bench/common.py first: it sets the environment before anything imports boto3 or xrelay.
from common import (
    ROOT,
    quiet_stdout,
    table,
)
from reconcile_runs import counting_aws_calls  # noqa: E402


def measure_replay() -> dict[str, Any]:
    """What one ReplayFunction run costs in AWS and X calls, at rest and around one outage's replay.

    The handler's whole path (``replay.run_for_stack``): webhook id from the state table, the
    ledger, and the app secret and X only when a job is to be started."""
    from aws_lambda_powertools.utilities.parameters import clear_caches
    from moto import mock_aws

    sys.path.insert(0, str(ROOT / "tests"))
    from fakex import FakeX
    from xrelay.aws import client
    from xrelay.config import Settings
    from xrelay.recovery.outages import Ledger, ReplayPolicy, parse_time
    from xrelay.recovery.replay import run_for_stack
    from xrelay.storage.store import StateStore
    from xrelay.subscriptions.desired import DesiredState
    from xrelay.tools.local.local import LocalStack

    aws_calls: list[str] = []
    now = parse_time("2026-11-26T12:00:00Z")
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/webhook"
    fake = FakeX(clock=lambda: now.timestamp(), check_spec=False)  # time xrelay, not the spec check
    policy = ReplayPolicy()
    results: dict[str, Any] = {}

    def run(name: str, settings: Settings) -> None:
        fake.requests.clear()
        aws_calls.clear()
        clear_caches()  # a cold sandbox: a scheduled run every 5 minutes rarely finds a warm one
        report = run_for_stack(settings, transport=fake.transport(), now=now, policy=policy).report
        assert report is not None
        results[name] = {"aws_calls": len(aws_calls), "aws_by_operation": dict(sorted(Counter(aws_calls).items())),
                         "x_calls": len(fake.requests), "jobs_started": report.jobs_started}

    saved = {k: os.environ.get(k) for k in ("X_CONSUMER_KEY", "X_CONSUMER_SECRET", "X_BEARER_TOKEN")}
    os.environ.update(X_CONSUMER_KEY=fake.consumer_key, X_CONSUMER_SECRET=fake.consumer_secret,
                      X_BEARER_TOKEN=fake.bearer_token)  # the stack's app secret is the fake's app
    try:
        with quiet_stdout(), mock_aws():
            client.cache_clear()
            stack = LocalStack(ROOT, "xrelay-bench")
            stack.provision()
            settings = Settings.from_env(stack.environment("ReplayFunction"))
            state = StateStore(settings.state_table)
            state.put_desired(DesiredState.model_validate({"webhook": {"url": url}}).to_json(), "bench", now)
            hook = fake.add_webhook(url)
            state.record_webhook_check(url, hook, "valid", now)
            ledger = Ledger(settings.state_table)
            with counting_aws_calls(aws_calls):
                run("empty ledger", settings)
                ledger.open("alarm", "IntakeUnavailableAlarm", now - timedelta(hours=3))
                ledger.close("alarm", "IntakeUnavailableAlarm", now - timedelta(hours=2))
                run("outage closed: starts its job", settings)
                run("job running: waits", settings)
                (job_id,) = fake.replay_jobs
                fake.complete_replay(job_id)
                ledger.record_job_status(job_id, "Complete", webhook_id=hook, at=now)
                run("after Complete: counts it", settings)
                run("at rest after recovery", settings)
                for i in range(50):  # a flapping alarm: 50 short outages, 23 to 3 hours ago
                    start = now - timedelta(hours=23) + timedelta(minutes=24 * i)
                    ledger.open("alarm", "IntakeUnavailableAlarm", start)
                    ledger.close("alarm", "IntakeUnavailableAlarm", start + timedelta(minutes=3))
                run("50 new outages: counts them, starts 1 job", settings)
            client.cache_clear()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return results


def render(results: dict[str, Any]) -> list[str]:
    """Section 6 of the report, from ``results["replay"]``."""
    out: list[str] = []
    rep = results["replay"]
    out.append("6. Replay, per ReplayFunction run (its whole path, cold secret cache; strict fake X + moto)")
    out.append(table(["run", "AWS calls", "X calls", "jobs started"],
                     [[name, r["aws_calls"], r["x_calls"], r["jobs_started"]] for name, r in rep.items()]))
    for name in ("job running: waits", "outage closed: starts its job"):
        out.append(f"   {name}: AWS " + ", ".join(f"{k} x{n}" for k, n in rep[name]["aws_by_operation"].items()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()  # --help
    print("\n".join(render({"replay": measure_replay()})))


if __name__ == "__main__":
    main()

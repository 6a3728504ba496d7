"""Bench section 2: Warm CPU per event. ``Intake.handle`` (signature, parse, normalise, conditional put) over every
fixture delivery (as compact JSON, the way X sends it) in one warm process, ``time.process_time``,
median of rounds, as a ratio to the floor "HMAC-SHA256 signature check + json.loads" of the same
bodies. DynamoDB is an in-memory fake with PutItem's ``attribute_not_exists`` semantics, so network
and moto time are excluded; the secret comes from memory (a warm function's cache hit). Logs
(Powertools, INFO) go to a null stream, EMF metric lines to /dev/null. Also: the duplicate path
(every event already stored) and the new-event path plus the per-invocation metric flush that
``@metrics.log_metrics`` does.

Alone: ``.venv/bin/python bench/warm_cpu.py``; ``make bench`` runs every section (bench/run.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import time
from collections import Counter
from typing import Any

# bench/common.py first: it sets the environment before anything imports boto3 or xrelay.
from common import (
    RETENTION_DAYS,
    fixture_paths,
    quiet_stdout,
    table,
    wire_body,
)


class ConditionalCheckFailed(Exception):
    """What botocore raises for a failed condition, as far as xrelay.aws.error_code can tell."""

    def __init__(self) -> None:
        super().__init__("The conditional request failed")
        self.response = {"Error": {"Code": "ConditionalCheckFailedException"}}


class FakeDynamoDB:
    """PutItem with ``attribute_not_exists(<key>)`` (every event), and UpdateItem accepted as applied
    (revocations and replay-job reports: state-table updates whose outcome the CPU figure does not
    depend on). No ``__len__``: the stores treat a falsy client as "none given" and build a real one."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str | None], dict[str, Any]] = {}

    def put_item(self, TableName: str, Item: dict[str, Any], ConditionExpression: str | None = None) -> dict:
        key = (TableName, Item["pk"]["S"], Item.get("sk", {}).get("S"))
        if ConditionExpression and ConditionExpression.startswith("attribute_not_exists") and key in self.items:
            raise ConditionalCheckFailed()
        self.items[key] = Item
        return {}

    def update_item(self, **kwargs: Any) -> dict:
        self.updates = getattr(self, "updates", 0) + 1
        return {}


def measure_warm_cpu(rounds: int) -> dict[str, Any]:
    from aws_lambda_powertools import Logger

    from xrelay.credentials import SigningSecrets
    from xrelay.observability import make_metrics
    from xrelay.receiving.intake import Intake
    from xrelay.receiving.signature import SIGNATURE_HEADER, sign, verify
    from xrelay.storage.store import EventStore, StateStore

    secret = "bench-consumer-secret"
    secrets = SigningSecrets(consumer=secret)
    # X signs; signing is not intake's cost, so headers are made up front.
    deliveries = [(body, {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, body)})
                  for body in map(wire_body, fixture_paths())]
    null = open(os.devnull, "w")  # the logger writes here; closed after the measurement
    logger = Logger(service="bench-intake", level="INFO", logger_handler=logging.StreamHandler(null))
    metrics = make_metrics("intake")
    fake = FakeDynamoDB()
    intake = Intake(events=EventStore("events", RETENTION_DAYS, ddb=fake), state=StateStore("state", ddb=fake),
                    load_secrets=lambda: secrets, log=logger, metrics=metrics)

    def intake_pass(*, fresh: bool, flush: bool) -> tuple[float, Counter]:
        if fresh:
            fake.items.clear()
        tally: Counter = Counter()
        gc.collect()
        start = time.process_time()
        for body, headers in deliveries:
            answer = intake.handle(body, headers)
            # Lambda's @metrics.log_metrics flushes (serialises + prints) once per invocation; without
            # it, clear so that values never pile up to Powertools' 100-per-metric auto-flush.
            if flush:
                metrics.flush_metrics()
            else:
                metrics.clear_metrics()
            tally["status_" + str(answer.status)] += 1
            tally["events"] += answer.body.get("events", 0)
            tally["new"] += answer.body.get("new", 0)
            tally["duplicates"] += answer.body.get("duplicates", 0)
        return time.process_time() - start, tally

    def floor_pass() -> float:
        gc.collect()
        start = time.process_time()
        for body, headers in deliveries:
            verify(headers[SIGNATURE_HEADER], body, [secret])
            json.loads(body)
        return time.process_time() - start

    samples: dict[str, list[float]] = {"floor": [], "new": [], "duplicate": [], "new_with_flush": []}
    with null, quiet_stdout():
        _, first = intake_pass(fresh=True, flush=False)  # warm-up, and what one pass contains
        for _ in range(rounds):
            samples["floor"].append(floor_pass())
            samples["new"].append(intake_pass(fresh=True, flush=False)[0])
            elapsed, dup = intake_pass(fresh=False, flush=False)  # the store now holds every event
            samples["duplicate"].append(elapsed)
            samples["new_with_flush"].append(intake_pass(fresh=True, flush=True)[0])
    if first["status_200"] != len(deliveries) or dup["new"] != 0:
        raise RuntimeError(f"unexpected intake answers: {dict(first)} / duplicates pass {dict(dup)}")
    events = first["events"]
    median = {name: statistics.median(values) for name, values in samples.items()}
    per_event_us = {name: value / events * 1e6 for name, value in median.items()}
    return {
        "rounds": rounds,
        "deliveries": len(deliveries),
        "events": events,
        "per_event_us": per_event_us,
        "per_delivery_us": {name: value / len(deliveries) * 1e6 for name, value in median.items()},
        "ratio_to_floor": {name: median[name] / median["floor"] for name in ("new", "duplicate", "new_with_flush")},
        "first_pass": dict(first),
    }


def render(results: dict[str, Any]) -> list[str]:
    """Section 2 of the report, from ``results["warm_cpu"]``."""
    out: list[str] = []
    warm = results["warm_cpu"]
    first = warm["first_pass"]
    out.append(f"2. Warm CPU per event (process_time, median of {warm['rounds']} rounds over {warm['deliveries']} "
               f"fixture deliveries = {warm['events']} events; DynamoDB faked in memory: no network/moto time)")
    out.append(f"   the 'new events' pass starts from an empty store: {first['new']} new, {first['duplicates']} "
               f"repeating an earlier fixture's event; the duplicates pass finds all {warm['events']} stored")
    labels = {"floor": "floor: HMAC-SHA256 verify + json.loads", "new": "Intake.handle, new events",
              "duplicate": "Intake.handle, duplicates (all stored)",
              "new_with_flush": "Intake.handle, new + per-invocation metric flush"}
    rows = [[labels[k], f"{warm['per_event_us'][k]:.1f}", f"{warm['per_delivery_us'][k]:.1f}",
             "1.00" if k == "floor" else f"{warm['ratio_to_floor'][k]:.1f}"] for k in labels]
    out.append(table(["path", "us/event", "us/delivery", "x floor"], rows))

    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="warm-CPU rounds (median; default 50)")
    args = parser.parse_args()
    print("\n".join(render({"warm_cpu": measure_warm_cpu(args.rounds)})))


if __name__ == "__main__":
    main()

"""xrelay benchmark: ratios and counts that keep cold start, per-event CPU, AWS calls and storage honest.

Run with ``make bench`` (``.venv/bin/python bench/run.py``); ``--json PATH`` also writes the figures as
JSON. Each section is a module of its own, runnable alone (``python bench/<module>.py``): 1 cold_import,
2 warm_cpu, 3 api_calls, 4 sizes, 5 reconcile_runs, 6 replay_runs, 7 shipped_pyc, 8 cost, 9 ships;
bench/common.py holds what they share. Nothing here is asserted by the tests: the figures are for
reading and comparing between commits. Ratios are used where absolute times depend on the machine.

1. Cold import. Fresh interpreters doing what Lambda's init does: the function's environment (the
   template's variables, plausible values, dummy credentials), ``layers/xrelay`` and the function
   directory on ``sys.path``, ``import app``. Wall time of the whole process, median of ``--runs``
   runs after one warm-up (so .pyc files exist), variants interleaved. The "lean floor" is a process
   that imports boto3, creates an SQS and a DynamoDB client and defines and instantiates one small
   pydantic model: what any boto3 + pydantic function pays. Ratios are given for the whole process
   and for the imports alone (minus the bare interpreter). Each handler is also timed with what its
   first request adds before any network call (the lazy import of Powertools' parameters and its
   Secrets Manager client): X's CRC deadline includes it. The warm-up run reports which heavy
   modules each process has in ``sys.modules`` after init, and how many boto3 clients are alive.
2. Warm CPU per event. ``Intake.handle`` (signature, parse, normalise, conditional put) over every
   fixture delivery (as compact JSON, the way X sends it) in one warm process, ``time.process_time``,
   median of rounds, as a ratio to the floor "HMAC-SHA256 signature check + json.loads" of the same
   bodies. DynamoDB is an in-memory fake with PutItem's ``attribute_not_exists`` semantics, so network
   and moto time are excluded; the secret comes from memory (a warm function's cache hit). Logs
   (Powertools, INFO) go to a null stream, EMF metric lines to /dev/null. Also: the duplicate path
   (every event already stored) and the new-event path plus the per-invocation metric flush that
   ``@metrics.log_metrics`` does.
3. AWS API calls per event, against moto (``mock_aws``, the template's tables and queues as in
   tests/conftest.py), counted at ``BaseClient._make_api_call`` by operation (API calls as the code
   issues them; botocore retries below that are not counted, and moto never throttles). Request
   path = calls made inside IntakeFunction while handling the POST; async path = calls made inside
   PublisherFunction invocations driven by the stream (``stack.drain()``). The stream reads of the
   event source mapping itself (GetRecords, GetShardIterator) are Lambda's, not the functions', and
   are left out. The Secrets Manager read happens on the first POST only and is reported apart.
4. Bytes and write units per event, for every event the fixtures produce: the item that
   ``store.event_item`` builds, sized with DynamoDB's rules (UTF-8 attribute names + values: S = UTF-8
   length, N = ceil(significant digits / 2) + 1, B = raw length, BOOL = 1); WCU = ceil(size / 1 KB)
   for the base table plus the ByUser GSI entry (keys + pk + event_type + source) when the item has
   ``user_key`` (under the template's default UserIndex/PurgeOnRevoke; the entry's size with the index
   on is measured either way), plus 1 for the ByPost entry (pk + post_id) when it has ``post_id``.
   The item's parts are reported apart: the compressed record, the plain attributes, their names. Ratios compare
   stored bytes with the raw (compact JSON) delivery bytes each event came in, and the SQS message
   (``publisher.outgoing``: body + attributes) with the same. A duplicate's failed conditional put is
   billed for the item too (table only: no GSI write, no stream record).
5. The reconcile, per run: calls to X (reads and writes, by endpoint) and AWS calls (by operation),
   against the strict fake X of the tests and moto, for a desired state of 10 AAA users and 50 XAA
   subscriptions (25 public, 25 private). Runs: from nothing; again with no drift; after X lost
   5 XAA subscriptions and 1 AAA user; and a no-drift run of an app with 2,500 XAA subscriptions
   on its webhook (X pages by 1,000). The figure to watch is writes per change (1.0) and 0 writes
   when nothing drifted.
6. The replay, per ReplayFunction run. 7. The shipped .pyc after a SAM-style zip.
8. Cost per million events on list prices, xrelay beside a floor design, by component (bench/cost.py:
   the price table, the model and its assumptions). Log bytes per delivery, CPU per event and the
   wall time per delivery are measured on the real IntakeFunction handler against bench/fake_aws.py,
   a responder in its own process that answers at the HTTP level (botocore's work is counted, the
   fake's is not), with no delay and with a 5 ms DynamoDB; write units, stored bytes and SQS calls
   come from sections 3 and 4.
9. What each function ships (bench/ships.py): its layers and code, unzipped and zipped, beside the one
   layer all functions attached before issue 16, and each handler's cold import over either.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# Each section imports bench/common.py first, which sets the environment before boto3 or xrelay load.
import api_calls  # noqa: E402
import cold_import  # noqa: E402
import cost  # noqa: E402
import reconcile_runs  # noqa: E402
import replay_runs  # noqa: E402
import shipped_pyc  # noqa: E402
import ships  # noqa: E402
import sizes  # noqa: E402
import warm_cpu  # noqa: E402
from common import lambda_env, log, table  # noqa: E402

# The report's sections in order, each rendered by its own module from the results.
SECTIONS = (cold_import, warm_cpu, api_calls, sizes, reconcile_runs, replay_runs, shipped_pyc)


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    for section in SECTIONS:
        if out:
            out.append("")
        out.extend(section.render(results))
    if "cost" in results:
        out.append("")
        out.extend(cost.render(results["cost"], table))
    if "ships" in results:
        out.append("")
        out.extend(ships.render(results["ships"], table))
    return "\n".join(out)


def measure_what_ships(results: dict[str, Any], runs: int) -> None:
    """Section 9 (bench/ships.py): builds every layer twice (for Lambda, for this machine)."""
    log(f"9: what each function ships, and its cold import over its own layers ({runs} runs x 10 processes)")
    with tempfile.TemporaryDirectory(prefix="xrelay-bench-ships-") as scratch:
        try:
            results["ships"] = ships.measure(runs, Path(scratch), lambda_env)
        except RuntimeError as exc:  # offline: the wheels cannot be fetched
            log(f"section 9 skipped: {exc}")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="cold-import runs per variant (median; default 9)")
    parser.add_argument("--rounds", type=int, default=50, help="warm-CPU rounds (median; default 50)")
    parser.add_argument("--pyc-runs", type=int, default=7, help="cold-import runs per .pyc variant (default 7)")
    parser.add_argument("--cost-rounds", type=int, default=20, help="cost-probe rounds (median; default 20)")
    parser.add_argument("--only-cost", action="store_true", help="only section 8 (cost), with sections 3 and 4")
    parser.add_argument("--only-ships", action="store_true", help="only section 9 (what each function ships)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = parser.parse_args()
    if args.runs < 1 or args.rounds < 1:
        parser.error("--runs and --rounds must be at least 1")

    started = time.perf_counter()
    results: dict[str, Any] = {"python": sys.version.split()[0]}
    if args.only_ships:  # section 9 alone: the other sections each run alone as bench/<module>.py
        measure_what_ships(results, args.pyc_runs)
        print("\n".join(ships.render(results["ships"], table)) if "ships" in results else "section 9 skipped")
        return
    if args.only_cost:  # section 8 and the two it reads (3, 4): a quick before/after of a change
        results["api_calls"], results["sizes"] = api_calls.measure_api_calls(), sizes.measure_sizes()
        with tempfile.TemporaryDirectory() as scratch:
            results["cost"] = cost.measure(lambda_env("intake"), results["sizes"], results["api_calls"],
                                           args.cost_rounds, Path(scratch))
        print("\n".join(cost.render(results["cost"], table)))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        return
    log(f"1/8 cold imports ({args.runs} runs x 6 processes)")
    results["cold_import"] = cold_import.measure_cold_imports(args.runs)
    log(f"2/8 warm CPU ({args.rounds} rounds)")
    results["warm_cpu"] = warm_cpu.measure_warm_cpu(args.rounds)
    log("3/8 AWS API calls (moto)")
    results["api_calls"] = api_calls.measure_api_calls()
    log("4/8 bytes per event")
    results["sizes"] = sizes.measure_sizes()
    log("5/8 reconcile calls per run (fake X + moto)")
    results["reconcile"] = reconcile_runs.measure_reconcile()
    log("6/8 replay calls per run (fake X + moto)")
    results["replay"] = replay_runs.measure_replay()
    log(f"7/8 shipped .pyc after a SAM-style zip ({args.pyc_runs} runs x 10 processes; builds the layer)")
    results["pyc"] = shipped_pyc.measure_shipped_pyc(args.pyc_runs)
    log(f"8/8 cost per million events (the real intake handler against an HTTP-level fake, {args.cost_rounds} rounds)")
    with tempfile.TemporaryDirectory() as scratch:
        results["cost"] = cost.measure(lambda_env("intake"), results["sizes"], results["api_calls"],
                                       args.cost_rounds, Path(scratch))
    measure_what_ships(results, args.pyc_runs)
    results["seconds"] = time.perf_counter() - started

    print(render(results))
    print(f"\n(bench took {results['seconds']:.1f} s; Python {results['python']})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""xrelay benchmark: ratios and counts that keep cold start, per-event CPU, AWS calls and storage honest.

Run with ``make bench`` (``.venv/bin/python bench/run.py``); ``--json PATH`` also writes the figures as
JSON. Each section is a module of its own, runnable alone (``python bench/<module>.py``): 1 cold_import,
2 warm_cpu, 3 api_calls, 4 sizes, 5 reconcile_runs, 6 replay_runs, 7 shipped_pyc, 8 cost, 9 ships;
bench/common.py holds what they share. Nothing here is asserted by the tests: the figures are for
reading and comparing between commits. Ratios are used where absolute times depend on the machine.

The sections, each explained in its module's docstring:
1. cold_import: handler cold import against a lean boto3 + pydantic floor (and the CRC's first request).
2. warm_cpu: intake's CPU per event, warm, against HMAC + json.loads, with an in-memory DynamoDB.
3. api_calls: AWS API calls per event on the request path and the stream's, against moto.
4. sizes: the stored item's bytes and write units per event, and the SQS message's size.
5. reconcile_runs: X calls and AWS calls per reconcile run, writes per change.
6. replay_runs: AWS and X calls per ReplayFunction run.
7. shipped_pyc: the shipped .pyc after a SAM-style zip, against pip's stale ones.
8. cost: $ per million events by component against a floor design (bench/cost.py, with bench/fake_aws.py).
9. ships: what each function ships, its layers and code, unzipped and zipped (bench/ships.py).
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

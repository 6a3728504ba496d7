"""Bench section 1: Cold import. Fresh interpreters doing what Lambda's init does: the function's environment (the
template's variables, plausible values, dummy credentials), ``layers/xrelay`` and the function
directory on ``sys.path``, ``import app``. Wall time of the whole process, median of ``--runs``
runs after one warm-up (so .pyc files exist), variants interleaved. The "lean floor" is a process
that imports boto3, creates an SQS and a DynamoDB client and defines and instantiates one small
pydantic model: what any boto3 + pydantic function pays. Ratios are given for the whole process
and for the imports alone (minus the bare interpreter). Each handler is also timed with what its
first request adds before any network call (the lazy import of Powertools' parameters and its
Secrets Manager client): X's CRC deadline includes it. The warm-up run reports which heavy
modules each process has in ``sys.modules`` after init, and how many boto3 clients are alive.

Alone: ``.venv/bin/python bench/cold_import.py``; ``make bench`` runs every section (bench/run.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

# bench/common.py first: it sets the environment before anything imports boto3 or xrelay.
from common import (
    FUNCTIONS,
    LAYER,
    lambda_env,
    run_python,
    spread,
    table,
    yes_no,
)

# Heavy modules worth knowing about at init. botocore's top-level package alone is light (Powertools
# imports it); botocore.client is the client machinery that boto3.client() pulls in.
HEAVY_MODULES = ("boto3", "botocore.client", "urllib3", "pydantic", "aws_xray_sdk",
                 "aws_lambda_powertools.utilities.parameters")

FLOOR_CODE = """
import boto3
from pydantic import BaseModel
sqs = boto3.client("sqs")
ddb = boto3.client("dynamodb")
class Probe(BaseModel):
    key: str
    count: int = 0
Probe(key="k")
"""

HANDLER_CODE = """
import sys
sys.path[:0] = [{layer!r}, {function_dir!r}]
import app
"""

# What the first request adds before its first network call: load_consumer_secrets imports Powertools'
# parameters lazily and get_secret builds its SecretsProvider (a boto3 Secrets Manager client).
FIRST_CALL_CODE = """
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
DEFAULT_PROVIDERS["secrets"] = parameters.SecretsProvider()  # as get_secret does, kept for the process
"""

REPORT_CODE = """
import gc, json, sys
botocore_client = sys.modules.get("botocore.client")
clients = sum(isinstance(o, botocore_client.BaseClient) for o in gc.get_objects()) if botocore_client else 0
print(json.dumps({{"modules": len(sys.modules), "boto3_clients": clients,
                  "heavy": {{name: name in sys.modules for name in {heavy!r}}}}}))
"""


def measure_cold_imports(runs: int) -> dict[str, Any]:
    variants = {
        "bare interpreter": ("pass", lambda_env("bench")),
        "lean floor": (FLOOR_CODE, lambda_env("bench")),
        "CrcFunction": (HANDLER_CODE.format(layer=str(LAYER), function_dir=str(FUNCTIONS / "crc")),
                        lambda_env("crc")),
        "IntakeFunction": (HANDLER_CODE.format(layer=str(LAYER), function_dir=str(FUNCTIONS / "intake")),
                           lambda_env("intake")),
    }
    for name in ("CrcFunction", "IntakeFunction"):
        code, env = variants[name]
        variants[f"{name} + first call"] = (code + FIRST_CALL_CODE, env)
    report_code = REPORT_CODE.format(heavy=HEAVY_MODULES)
    modules: dict[str, Any] = {}
    for name, (code, env) in variants.items():  # warm-up: writes .pyc files, and says what got imported
        _, out = run_python(code + report_code, env)
        modules[name] = json.loads(out)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):  # interleaved, so drift on the machine hits every variant alike
        for name, (code, env) in variants.items():
            times[name].append(run_python(code, env)[0])
    median = {name: statistics.median(values) for name, values in times.items()}
    bare, floor = median["bare interpreter"], median["lean floor"]
    handlers = {}
    for name in variants:
        if name in ("bare interpreter", "lean floor"):
            continue
        handlers[name] = {
            "ms": median[name],
            "ratio_to_floor": median[name] / floor,
            "imports_ratio_to_floor": (median[name] - bare) / (floor - bare),
            "spread_ms": [min(times[name]), max(times[name])],
        }
    return {
        "runs": runs,
        "bare_ms": bare,
        "floor_ms": floor,
        "bare_spread_ms": [min(times["bare interpreter"]), max(times["bare interpreter"])],
        "floor_spread_ms": [min(times["lean floor"]), max(times["lean floor"])],
        "handlers": handlers,
        "modules_after_init": modules,
    }


def render(results: dict[str, Any]) -> list[str]:
    """Section 1 of the report, from ``results["cold_import"]``."""
    out: list[str] = []
    cold = results["cold_import"]
    out.append(f"1. Cold import (fresh process, median of {cold['runs']} after 1 warm-up; lower ratio is better)")
    rows = [["bare interpreter (python -c pass)", f"{cold['bare_ms']:.0f}", spread(cold["bare_spread_ms"]), "", ""],
            ["lean floor (boto3 + 2 clients + pydantic model)", f"{cold['floor_ms']:.0f}",
             spread(cold["floor_spread_ms"]), "1.00", "1.00"]]
    for name, h in cold["handlers"].items():
        label = name.replace(" + first call", ": import app + first request's lazy imports (no network)")
        label = label if label != name else f"{name}: import app"
        rows.append([label, f"{h['ms']:.0f}", spread(h["spread_ms"]), f"{h['ratio_to_floor']:.2f}",
                     f"{h['imports_ratio_to_floor']:.2f}"])
    out.append(table(["process", "ms", "min-max", "x floor", "x floor, minus bare python"], rows))
    out.append("")
    mods = cold["modules_after_init"]
    names = ["lean floor", "CrcFunction", "CrcFunction + first call", "IntakeFunction", "IntakeFunction + first call"]
    rows = [["modules in sys.modules"] + [mods[n]["modules"] for n in names],
            ["boto3 clients alive after init"] + [mods[n]["boto3_clients"] for n in names]]
    rows += [[f"imports {m}"] + [yes_no(mods[n]["heavy"][m]) for n in names] for m in HEAVY_MODULES]
    out.append(table(["after init", "floor", "crc", "crc+1st call", "intake", "intake+1st call"], rows))

    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="cold-import runs per variant (median; default 9)")
    args = parser.parse_args()
    print("\n".join(render({"cold_import": measure_cold_imports(args.runs)})))


if __name__ == "__main__":
    main()

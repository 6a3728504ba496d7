"""Bench section 7: The shipped .pyc after a SAM-style zip: each handler's cold import over the built layer with
the unchecked-hash .pyc it ships, beside pip's timestamp .pyc that the zip's 1980 dates make stale.

Alone: ``.venv/bin/python bench/shipped_pyc.py``; ``make bench`` runs every section (bench/run.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import ships  # noqa: E402  (bench/ships.py: the layer builds)
from cold_import import HANDLER_CODE  # noqa: E402

# bench/common.py first: it sets the environment before anything imports boto3 or xrelay.
from common import (
    FUNCTIONS,
    lambda_env,
    run_python,
    table,
)

PYC_FUNCTIONS = ("crc", "intake", "publisher", "reconcile", "replay")


def sam_zip_copy(src: Path, dst: Path) -> None:
    """``src`` as Lambda unpacks what sam deploy zipped: every file dated 1980-01-01 (make_zip sets no date)."""
    shutil.copytree(src, dst)
    for path in dst.rglob("*"):
        os.utime(path, (315532800, 315532800))


def measure_shipped_pyc(runs: int) -> dict[str, Any]:
    """Cold import of each handler over the built layer: with the unchecked-hash .pyc the layer's makefile
    ships, against the timestamp .pyc that pip writes (what SAM's python build method ships), which
    the 1980 zip dates make stale, so Python recompiles on every cold start (and cannot cache: /opt is
    read-only, played by PYTHONDONTWRITEBYTECODE). The layer is built for this machine's architecture,
    with the same makefile: it downloads the pinned wheels, so it needs the package registry."""
    import importlib.util
    import platform

    arch = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}.get(platform.machine())
    if arch is None:
        return {"skipped": f"no wheel platform for {platform.machine()}"}
    with tempfile.TemporaryDirectory(prefix="xrelay-bench-pyc-") as tmp:
        built = Path(tmp) / "built"
        for name in ships.ONE_FOR_ALL:  # the layers the functions attach (tracing off), in one directory
            done = subprocess.run(["make", "--no-print-directory", "-C", str(ships.layer_sources()[name]),
                                   f"build-{name}", f"ARTIFACTS_DIR={built}", f"PLATFORM={arch}",
                                   f"PYTHON={sys.executable}",
                                   f"PYTHON_VERSION={sys.version_info[0]}.{sys.version_info[1]}",
                                   f"PYC_MAGIC={int.from_bytes(importlib.util.MAGIC_NUMBER[:2], 'little')}",
                                   f"RUNTIME_DIR={Path(tmp) / 'unchecked' / 'python'}"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return {"skipped": f"building {name} failed (offline?): " + done.stderr.strip()[-300:]}
        sam_zip_copy(built, Path(tmp) / "unchecked")
        stale = Path(tmp) / "stale-build"
        shutil.copytree(built, stale)
        for cache in list(stale.rglob("__pycache__")):
            shutil.rmtree(cache)
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(stale)], check=True)  # as pip does
        sam_zip_copy(stale, Path(tmp) / "timestamp")
        variants = {}
        for kind in ("unchecked", "timestamp"):
            layer = Path(tmp) / kind / "python"
            for fn in PYC_FUNCTIONS:
                env = {**lambda_env(fn), "PYTHONDONTWRITEBYTECODE": "1"}
                variants[(fn, kind)] = (HANDLER_CODE.format(layer=str(layer), function_dir=str(FUNCTIONS / fn)), env)
        for code, env in variants.values():  # warm the OS file cache
            run_python(code, env)
        times: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
        for _ in range(runs):
            for key, (code, env) in variants.items():
                times[key].append(run_python(code, env)[0])
    out: dict[str, Any] = {"runs": runs, "platform": arch, "functions": {}}
    for fn in PYC_FUNCTIONS:
        shipped, stale_ms = (statistics.median(times[(fn, k)]) for k in ("unchecked", "timestamp"))
        out["functions"][fn] = {"unchecked_ms": shipped, "timestamp_ms": stale_ms, "ratio": shipped / stale_ms,
                                "saved_ms": stale_ms - shipped}
    return out


def render(results: dict[str, Any]) -> list[str]:
    """Section 7 of the report, from ``results["pyc"]``."""
    out: list[str] = []
    pyc = results["pyc"]
    if "skipped" in pyc:
        out.append(f"7. Shipped .pyc: skipped ({pyc['skipped']})")
    else:
        out.append(f"7. Cold import over the built layer after a SAM-style zip ({pyc['platform']}, median of "
                   f"{pyc['runs']}): the unchecked-hash .pyc shipped vs. pip's timestamp .pyc, stale after the zip")
        out.append(table(["handler", "shipped .pyc ms", "stale .pyc ms", "ratio", "saved ms"],
                         [[fn, f"{r['unchecked_ms']:.0f}", f"{r['timestamp_ms']:.0f}", f"{r['ratio']:.2f}",
                           f"{r['saved_ms']:.0f}"] for fn, r in pyc["functions"].items()]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyc-runs", type=int, default=7, help="cold-import runs per .pyc variant (default 7)")
    args = parser.parse_args()
    print("\n".join(render({"pyc": measure_shipped_pyc(args.pyc_runs)})))


if __name__ == "__main__":
    main()

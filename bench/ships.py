"""What each function ships (``make bench``, section 9): its layers and its code, unzipped and zipped.

Every LayerVersion of template.yaml is built with its own Makefile, as ``sam build`` does: the arm64
wheels Lambda gets (python3.13's .pyc when a python3.13 is found, as ``make build``; else this
interpreter's, a little smaller or larger). Zipped sizes are those of a deflate zip like the one
``sam deploy`` uploads. A function ships the layers template.yaml attaches to it (with EnableTracing
false, the default, and true) plus its code directory.

"One layer for all" is the layout issue 16 replaced, for comparison: one layer holding XrelayLayer,
PydanticLayer and XClientLayer (each package once) and TracingLayer, on every function.

Cold import: each function's ``import app`` in a fresh interpreter over what Lambda unpacks in /opt
(its layers merged into one python/ directory, dated 1980 as sam deploy zips), with its own layers and
with the one-layer-for-all set, interleaved, median of ``runs``. That build is for this machine
(arm64 wheels do not load on x86_64) with this interpreter's unchecked-hash .pyc.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
ONE_FOR_ALL = ("XrelayLayer", "PydanticLayer", "XClientLayer")  # issue 16's "before": merged, on every function
MIB = 1024 * 1024
DOS_EPOCH = 315532800  # 1980-01-01, the date sam deploy gives every file it zips

IMPORT_CODE = """
import sys
sys.path[:0] = [{layer!r}, {function_dir!r}]
import app
"""


def _template():
    sys.path.insert(0, str(ROOT / "layers" / "xrelay"))
    from xrelay.tools.cli import template as tpl

    return tpl, tpl.load(ROOT / "template.yaml")


def attached_layers(tracing: bool) -> dict[str, list[str]]:
    """Each function's layers, as the template attaches them with EnableTracing ``tracing``."""
    tpl, template = _template()
    values = tpl.parameter_values(template, {"EnableTracing": str(tracing).lower(), "XAppSecretArn": "x"})
    resolver = tpl.Resolver(template, values, ref=str, get_att=lambda *a: "")
    return {fn: resolver.function_layers(fn) for fn in sorted(tpl.functions(template))}


def layer_sources() -> dict[str, Path]:
    tpl, template = _template()
    return {name: ROOT / res["Properties"]["ContentUri"] for name, res in template["Resources"].items()
            if res["Type"] == "AWS::Serverless::LayerVersion"}


def lambda_python() -> str | None:
    done = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "lambda-python"],
                          capture_output=True, text=True)
    path = Path(done.stdout.strip() or "/nonexistent") / "python3.13"
    return str(path) if done.returncode == 0 and path.is_file() else None


def build_layer(name: str, source: Path, artifacts: Path, *, native: bool) -> None:
    """``make build-<name>`` of the layer's Makefile into ``artifacts``: for Lambda (arm64, python3.13)
    or, ``native``, for this machine and interpreter (to import it here)."""
    import importlib.util
    import platform

    python = None if native else lambda_python()
    args = [f"PYTHON={python}"] if python else [
        f"PYTHON={sys.executable}",
        f"PYC_MAGIC={int.from_bytes(importlib.util.MAGIC_NUMBER[:2], 'little')}",
        f"RUNTIME_DIR={artifacts / 'python'}"]
    if native:
        arch = {"x86_64": "manylinux2014_x86_64", "aarch64": "manylinux2014_aarch64"}[platform.machine()]
        args += [f"PLATFORM={arch}", f"PYTHON_VERSION={sys.version_info[0]}.{sys.version_info[1]}"]
    done = subprocess.run(["make", "--no-print-directory", "-C", str(source), f"build-{name}",
                           f"ARTIFACTS_DIR={artifacts}", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"building {name} failed (offline?): {done.stderr.strip()[-300:]}")


def sizes(directory: Path) -> tuple[int, int]:
    """(unzipped, zipped) bytes of ``directory``'s files, zipped with deflate as sam deploy does."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.writestr(str(path.relative_to(directory)), path.read_bytes())
    return sum(p.stat().st_size for p in files), len(buffer.getvalue())


def merge(layers: list[Path], into: Path) -> Path:
    """What Lambda unpacks in /opt: the layers' python/ directories in order, later ones over earlier."""
    python = into / "python"
    for layer in layers:
        shutil.copytree(layer / "python", python, dirs_exist_ok=True)
    for path in python.rglob("*"):
        os.utime(path, (DOS_EPOCH, DOS_EPOCH))
    return python


def code_dir(function: str) -> Path:
    return FUNCTIONS_DIR / function.removesuffix("Function").lower()


def timed_import(layer: Path, function: str, lambda_env: Callable[[str], dict[str, str]]) -> float:
    code = IMPORT_CODE.format(layer=str(layer), function_dir=str(code_dir(function)))
    env = {**lambda_env(code_dir(function).name), "PYTHONDONTWRITEBYTECODE": "1"}  # /opt is read-only
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-P", "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"import of {function} over its layers failed:\n{done.stderr[-2000:]}")
    return elapsed


def measure(runs: int, scratch: Path, lambda_env: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    """``lambda_env(service)``: the function's environment as the template sets it (bench/run.py)."""
    sources = layer_sources()
    shipped: dict[str, Path] = {}
    for name, source in sources.items():
        build_layer(name, source, scratch / "lambda" / name, native=False)
        shipped[name] = scratch / "lambda" / name
    layer_sizes = {name: sizes(path / "python") for name, path in shipped.items()}
    one = merge([shipped[n] for n in ONE_FOR_ALL], scratch / "one-for-all")
    one_for_all = sizes(one)
    out: dict[str, Any] = {
        "python": lambda_python() or sys.executable,
        "layers": {name: {"unzipped": u, "zipped": z} for name, (u, z) in layer_sizes.items()},
        "one_for_all_layer": {"unzipped": one_for_all[0], "zipped": one_for_all[1]},
        "functions": {},
    }
    for tracing in (False, True):
        for function, layers in attached_layers(tracing).items():
            code = sizes(code_dir(function))
            row = out["functions"].setdefault(function, {"code": {"unzipped": code[0], "zipped": code[1]}})
            row["layers" + ("_traced" if tracing else "")] = layers
            for kind, index in (("unzipped", 0), ("zipped", 1)):
                now = code[index] + sum(layer_sizes[n][index] for n in layers)
                before = code[index] + one_for_all[index] + layer_sizes["TracingLayer"][index]
                row.setdefault("now" + ("_traced" if tracing else ""), {})[kind] = now
                row.setdefault("before", {})[kind] = before
    # Cold import over what /opt holds, own layers vs. one layer for all (built for this machine).
    native: dict[str, Path] = {}
    for name, source in sources.items():
        build_layer(name, source, scratch / "native" / name, native=True)
        native[name] = scratch / "native" / name
    before_dir = merge([native[n] for n in (*ONE_FOR_ALL, "TracingLayer")], scratch / "native-before")
    own_dirs = {fn: merge([native[n] for n in layers], scratch / "native-own" / fn)
                for fn, layers in attached_layers(False).items()}
    variants = {(fn, kind): path for fn, own in own_dirs.items()
                for kind, path in (("own", own), ("one for all", before_dir))}
    for (fn, _), path in variants.items():  # warm the OS file cache
        timed_import(path, fn, lambda_env)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in variants}
    for _ in range(runs):
        for (fn, kind), path in variants.items():
            times[(fn, kind)].append(timed_import(path, fn, lambda_env))
    for fn in own_dirs:
        own, before = (statistics.median(times[(fn, k)]) for k in ("own", "one for all"))
        out["functions"][fn]["import_ms"] = {"own": own, "one_for_all": before, "ratio": own / before}
    out["import_runs"] = runs
    return out


def render(ships: dict[str, Any], table) -> list[str]:
    def mib(n: int) -> str:
        return f"{n / MIB:.2f}"

    out = [f"9. What each function ships: its layers + code, MiB unzipped / zipped (layers built for arm64 "
           f"by their Makefiles with {ships['python']}; zip as sam deploy)"]
    rows = [[name, mib(s["unzipped"]), mib(s["zipped"])] for name, s in ships["layers"].items()]
    rows.append(["one layer for all (before: Xrelay + Pydantic + XClient)", mib(ships["one_for_all_layer"]["unzipped"]),
                 mib(ships["one_for_all_layer"]["zipped"])])
    out.append(table(["layer", "unzipped", "zipped"], rows))
    rows = []
    for fn, f in ships["functions"].items():
        rows.append([fn, " + ".join(n.removesuffix("Layer") for n in f["layers"]),
                     f"{mib(f['before']['unzipped'])} / {mib(f['before']['zipped'])}",
                     f"{mib(f['now']['unzipped'])} / {mib(f['now']['zipped'])}",
                     f"{f['now']['zipped'] / f['before']['zipped']:.2f}",
                     f"{mib(f['now_traced']['unzipped'])} / {mib(f['now_traced']['zipped'])}",
                     f"{f['import_ms']['one_for_all']:.0f}", f"{f['import_ms']['own']:.0f}",
                     f"{f['import_ms']['ratio']:.2f}"])
    out.append(table(["function", "layers (tracing off)", "before (all + tracing)", "now", "zipped x before",
                      "now, traced", "import ms before", "import ms now", "x before"], rows))
    out.append(f"   import: fresh `import app` over the function's /opt (its layers merged, dated 1980), built for "
               f"this machine; median of {ships['import_runs']}, interleaved.")
    return out

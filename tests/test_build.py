"""The layer's compile step (layers/xrelay/Makefile): .pyc that Lambda's python3.13 really uses.

`sam build` itself is not run here (slow, and it downloads wheels); `make build` runs it and then
the same `check-pyc` over the built layer.
"""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from xrelay.tools.cli import template as tpl

LAYER_DIR = ROOT / "layers" / "xrelay"
LAMBDA_PY313_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"
UNCHECKED_HASH = (1).to_bytes(4, "little")  # flags: hash-based, source not checked
DOS_EPOCH = 315532800  # 1980-01-01, the date sam deploy gives every file it zips


def lambda_python() -> str | None:
    """A python3.13 that runs: the Makefile's LAMBDA_PYTHON_BIN (PATH first, then pyenv's versions)."""
    done = subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "lambda-python"],
                          capture_output=True, text=True)
    path = Path(done.stdout.strip() or "/nonexistent") / "python3.13"
    return str(path) if done.returncode == 0 and path.is_file() else None

# Lambda's interpreter, found as `make build` finds it (the root Makefile's LAMBDA_PYTHON_BIN).
PY313 = lambda_python()

pytestmark = pytest.mark.skipif(shutil.which("make") is None or PY313 is None, reason="needs make and python3.13")


def make(target: str, directory: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(LAYER_DIR), target, f"DIR={directory}",
                           f"PYTHON={PY313}"], capture_output=True, text=True)


def package(root: Path) -> Path:
    pkg = root / "python" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("VALUE = 42\n")
    return root / "python"


def sam_zip_and_unpack(src: Path, dst: Path) -> None:
    """Zip like sam deploy (samcli.lib.package.utils.make_zip: ZipInfo without a date), unpack keeping dates."""
    archive = dst.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(src)))
            info.external_attr = 0o100755 << 16
            zf.writestr(info, path.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dst)
    for path in dst.rglob("*"):
        os.utime(path, (DOS_EPOCH, DOS_EPOCH))


def import_verbosely(path: Path) -> str:
    done = subprocess.run([PY313, "-v", "-c", "import pkg.mod; assert pkg.mod.VALUE == 42"],
                          env={"PYTHONPATH": str(path), "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.environ["PATH"]},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_layer_is_built_by_its_makefile():
    template = tpl.load(ROOT / "template.yaml")
    assert template["Resources"]["XrelayLayer"]["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (LAYER_DIR / "Makefile").read_text()
    assert "\nbuild-XrelayLayer:" in makefile and "--invalidation-mode unchecked-hash" in makefile


def test_compiled_modules_are_used_after_sam_deploy_zips_them(tmp_path):
    built = package(tmp_path / "build")
    done = make("pyc", built)
    assert done.returncode == 0, done.stderr
    assert "2 modules, each with its unchecked-hash .pyc (magic 3571)" in done.stdout
    pyc = (built / "pkg" / "__pycache__" / "mod.cpython-313.pyc").read_bytes()
    assert pyc[:4] == LAMBDA_PY313_MAGIC and pyc[4:8] == UNCHECKED_HASH
    assert marshal.loads(pyc[16:]).co_filename == "/opt/python/pkg/mod.py"  # what Lambda's tracebacks say

    unpacked = tmp_path / "opt"
    sam_zip_and_unpack(built, unpacked)
    cached = unpacked / "pkg" / "__pycache__" / "mod.cpython-313.pyc"
    assert f"{cached} matches {unpacked / 'pkg' / 'mod.py'}" in import_verbosely(unpacked)


def test_timestamp_pyc_would_be_ignored_after_the_zip(tmp_path):
    """Why unchecked-hash: the .pyc pip and plain compileall write record the source's mtime, which
    the zip replaces with 1980-01-01, so Python recompiles on every cold start."""
    built = package(tmp_path / "build")
    subprocess.run([PY313, "-m", "compileall", "-q", str(built)], check=True)
    unpacked = tmp_path / "opt"
    sam_zip_and_unpack(built, unpacked)
    assert "bytecode is stale for 'pkg.mod'" in import_verbosely(unpacked)


def test_check_pyc_refuses_a_layer_without_them(tmp_path):
    built = package(tmp_path / "build")
    done = make("check-pyc", built)
    assert done.returncode != 0 and "2 of 2 modules" in done.stderr

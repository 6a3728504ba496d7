"""The Makefile on a fresh machine: it finds a supported Python or stops at once with one line, and
rebuilds a .venv an unsupported interpreter made (issue 14)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

# A Python 3.10 stand-in: answers the Makefile's version probes as 3.10 does.
FAKE_310 = """#!/bin/sh
echo 3.10
case "$2" in *sys.exit*) exit 1;; esac
exit 0
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "xrelay-test-python3.10"
    fake.write_text(FAKE_310)
    fake.chmod(0o755)
    (bin_dir / "xrelay-test-python-good").symlink_to(sys.executable)
    return tmp_path


def make(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{checkout / 'bin'}:{os.environ['PATH']}"}
    env.pop("PYTHON", None)
    env.pop("MAKEFLAGS", None)
    return subprocess.run(["make", "--no-print-directory", *args], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=60)


def test_no_supported_python_stops_with_one_line_saying_what_to_install(checkout):
    result = make(checkout, "run", "SUPPORTED_PYTHONS=xrelay-test-absent xrelay-test-python3.10")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Python >= 3.11" in lines[0] and "make run PYTHON=" in lines[0]
    assert not (checkout / ".venv").exists()


def test_an_unsupported_python_given_by_name_is_refused_with_its_version(checkout):
    result = make(checkout, "install", "PYTHON=xrelay-test-python3.10")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "PYTHON=xrelay-test-python3.10 is 3.10" in result.stderr


def test_the_first_supported_python_on_path_is_chosen(checkout):
    result = make(checkout, "-n", "install",
                  "SUPPORTED_PYTHONS=xrelay-test-absent xrelay-test-python3.10 xrelay-test-python-good")
    assert result.returncode == 0, result.stderr
    assert "xrelay-test-python-good -m venv .venv" in result.stdout


def test_a_venv_made_by_an_unsupported_python_is_removed_before_the_install(checkout):
    venv_bin = checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text(FAKE_310)
    (venv_bin / "python").chmod(0o755)
    (venv_bin / "xrelay").write_text("")  # the install's target is there: only the check can catch it
    result = make(checkout, "venv-check", "PYTHON=xrelay-test-python-good")
    assert result.returncode == 0, result.stderr
    assert "rebuilding" in result.stderr
    assert not (checkout / ".venv").exists()


def test_a_venv_of_a_supported_python_is_kept(checkout):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(checkout / ".venv")], check=True)
    result = make(checkout, "venv-check", "PYTHON=xrelay-test-python-good")
    assert result.returncode == 0, result.stderr
    assert (checkout / ".venv" / "bin" / "python").exists()

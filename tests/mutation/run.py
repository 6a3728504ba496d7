"""Mutation testing of the critical modules with cosmic-ray: `make mutate [MODULE=signature]`.

Why cosmic-ray and not mutmut 3: mutmut copies the tree into ``mutants/`` and imports the copy, but
xrelay is installed editable from ``layers/xrelay`` (not a ``src/`` layout), so the tests would import
the unmutated package. cosmic-ray mutates a file in place and runs a test command per mutant, which
works with any layout. To keep the work tree clean (an interrupted run could leave a mutant behind)
and usable meanwhile, it mutates a copy in ``.mutation/tree``, found first on ``PYTHONPATH``.

Each module's mutants run only against the tests that guard it (``modules.toml``), fast files first
and with ``-x``, so a killed mutant costs a few seconds. The score is killed / (killed + survived);
every survivor is printed as its diff. Not part of `make test` or CI: a module takes minutes to an
hour on two shared cores, so run it in the background of a session (``nice -n 19``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers/xrelay/xrelay"
HERE = Path(__file__).resolve().parent
WORK = ROOT / ".mutation"
BIN = Path(sys.executable).parent

# Kept: the bugs a person writes (a flipped comparison, + for -, and for or, a constant off by one, a
# dropped decorator, an except that no longer catches, a loop that never runs). Dropped: operator
# swaps no one types by mistake (**, <<, ^, %...), `is` for `==` (equivalent on small ints and
# interned strings), and `|` (in this code a type union or a dict merge).
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*_(Pow|RShift|LShift|BitOr|BitAnd|BitXor|Mod|FloorDiv)$",
    r"core/ReplaceBinaryOperator_(Pow|RShift|LShift|BitOr|BitAnd|BitXor)_",
    r"core/ReplaceComparisonOperator_.*_(Is|IsNot)$",
    r"core/VariableReplacer",
    r"core/VariableInserter",
]


def load_map() -> dict[str, list[str]]:
    return tomllib.loads((HERE / "modules.toml").read_text())["modules"]


IGNORED = shutil.ignore_patterns(".git", ".venv*", ".mutation", "__pycache__", "*.pyc", ".aws-sam", ".pytest_cache",
                                 ".ruff_cache", "*.egg-info", "build")


def copy_tree(tree: Path) -> None:
    """A copy of the work tree for one module's mutants (one per module: runs may overlap)."""
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(ROOT, tree, ignore=IGNORED, symlinks=True)


def refresh_tests(tree: Path) -> None:
    """The current tests in a module's existing copy, its sources untouched (the mutants point into them)."""
    shutil.rmtree(tree / "tests")
    shutil.copytree(ROOT / "tests", tree / "tests", ignore=IGNORED)


def in_tree(tree: Path):
    """Run the tests against ``tree``'s package: first on PYTHONPATH, before the editable install."""
    os.environ["PYTHONPATH"] = str(tree / "layers/xrelay")


def test_command(tests: list[str]) -> str:
    files = " ".join(f"tests/{name}" for name in tests)
    return f"{BIN / 'python'} -m pytest -x -q -p no:cacheprovider -m 'not e2e' {files}"


def module_file(module: str) -> Path:
    """A module's file inside the package, found by its name (the keys of modules.toml): xrelay's
    modules live in their concern's folder (storage/store.py), and each name is used once."""
    (found,) = PACKAGE.rglob(f"{module}.py")
    return found.relative_to(PACKAGE)


def config(module: str, tests: list[str], timeout: float, tree: Path) -> Path:
    path = WORK / f"{module}.toml"
    excluded = ", ".join(f"'{pattern}'" for pattern in EXCLUDED_OPERATORS)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = '{tree / 'layers/xrelay/xrelay' / module_file(module)}'\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f'test-command = "{test_command(tests)}"\n'
        "[cosmic-ray.distributor]\nname = 'local'\n"
        f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n")
    return path


def run(tree: Path, *argv: str | Path) -> None:
    subprocess.run([str(a) for a in argv], cwd=tree, check=True)


def baseline_seconds(module: str, tests: list[str], tree: Path) -> float:
    started = time.monotonic()
    unmutated = subprocess.run(test_command(tests), shell=True, cwd=tree, capture_output=True)
    if unmutated.returncode:
        sys.exit(f"{module}: the tests fail without any mutant:\n{unmutated.stdout.decode()[-3000:]}")
    return time.monotonic() - started


def keep_sample(session: Path, size: int, seed: str) -> None:
    """Skip all but ``size`` of the pending mutants, drawn at random (the same ones for the same seed)."""
    import random

    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sorted(item.job_id for item in db.pending_work_items)
        kept = set(random.Random(seed).sample(pending, min(size, len(pending))))
        for job_id in pending:
            if job_id not in kept:
                db.set_result(job_id, WorkResult(output="not in the sample", worker_outcome=WorkerOutcome.SKIPPED))


def mutate(module: str, tests: list[str], sample: int = 0) -> tuple[int, int, list, int]:
    tree = WORK / module
    copy_tree(tree)
    in_tree(tree)
    cfg = config(module, tests, max(60.0, 4 * baseline_seconds(module, tests, tree)), tree)
    session = WORK / f"{module}.sqlite"
    session.unlink(missing_ok=True)
    run(tree, BIN / "cosmic-ray", "init", cfg, session)
    run(tree, BIN / "cr-filter-operators", session, cfg)
    run(tree, BIN / "cr-filter-pragma", session)
    if sample:
        keep_sample(session, sample, seed=module)
    run(tree, BIN / "cosmic-ray", "exec", cfg, session)
    return results(session)


def retry_survivors(module: str, tests: list[str]) -> tuple[int, int, list, int]:
    """Run the last run's survivors again against the current tests (after writing tests that should
    kill them): the killed stay killed, so this gives the new score for a fraction of the time."""
    import sqlite3

    from cosmic_ray.work_db import WorkDB, use_db

    session = WORK / f"{module}.sqlite"
    with use_db(str(session), WorkDB.Mode.open) as db:
        paths = {str(m.module_path) for item in db.work_items for m in item.mutations}
    (path,) = paths
    # <tree>/layers/xrelay/xrelay/<folder>/<module>.py
    tree = next(a for a in Path(path).parents if (a / "layers/xrelay/xrelay").is_dir())
    refresh_tests(tree)
    in_tree(tree)
    cfg = config(module, tests, max(60.0, 4 * baseline_seconds(module, tests, tree)), tree)
    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")
    run(tree, BIN / "cosmic-ray", "exec", cfg, session)
    return results(session)


def results(session: Path) -> tuple[int, int, list, int]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome

    killed, survivors, sampled_out = 0, [], 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.test_outcome is None:  # skipped by a filter, or not in the sample
                sampled_out += result.output == "not in the sample"
                continue
            if result.test_outcome == TestOutcome.SURVIVED:
                survivors.append((item.mutations[0].start_pos[0], item.mutations[0].operator_name, result.diff))
            else:
                killed += 1
    return killed, len(survivors), sorted(survivors, key=lambda s: s[0]), sampled_out


def report(module: str, killed: int, survived: int, survivors: list, sampled_out: int = 0) -> str:
    total = killed + survived
    score = 100.0 * killed / total if total else 100.0
    sample = f", sampled from {total + sampled_out}" if sampled_out else ""
    lines = [f"== {module}: {score:.1f}% ({killed} killed of {total} mutants{sample}, {survived} survived)"]
    for line, operator, diff in survivors:
        lines.append(f"-- survivor at line {line} ({operator}):")
        lines.extend("   " + d for d in (diff or "").splitlines() if d[:1] in "+-" and d[:3] not in ("+++", "---"))
    return "\n".join(lines)


def require_cosmic_ray() -> None:
    """One line, not a FileNotFoundError from deep in subprocess, when the tool is not installed yet."""
    if not (BIN / "cosmic-ray").exists():
        sys.exit(f"cosmic-ray is not installed in {BIN.parent}: `make mutate` installs it "
                 f"(or {BIN / 'pip'} install 'cosmic-ray>=8.7,<9')")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: every one in modules.toml)")
    parser.add_argument("--sample", type=int, default=0,
                        help="run only this many mutants of each module, drawn at random (an estimate, for the big"
                             " modules: a whole run of all of them takes hours on two cores)")
    parser.add_argument("--survivors", action="store_true",
                        help="run only the last run's survivors again, against the current tests")
    parser.add_argument("--skip-tests", default="", metavar="GLOB",
                        help="leave out the map's test files matching GLOB (to measure what they add)")
    parser.add_argument("--report-only", action="store_true", help="print the last run's results again")
    args = parser.parse_args(argv)
    guarded = load_map()
    modules = args.modules or list(guarded)
    unknown = [m for m in modules if m not in guarded]
    if unknown:
        sys.exit(f"no test map for {', '.join(unknown)} in {HERE / 'modules.toml'}")
    if not args.report_only:
        require_cosmic_ray()
    WORK.mkdir(exist_ok=True)
    summary = []
    for module in modules:
        tests = [name for name in guarded[module] if not (args.skip_tests and fnmatch(name, args.skip_tests))]
        if args.report_only:
            outcome = results(WORK / f"{module}.sqlite")
        elif args.survivors:
            outcome = retry_survivors(module, tests)
        else:
            outcome = mutate(module, tests, args.sample)
        text = report(module, *outcome)
        (WORK / f"{module}.txt").write_text(text + "\n")
        print(text, flush=True)
        summary.append(text.splitlines()[0])
    print("\n".join(["", "== scores", *summary]))


if __name__ == "__main__":
    main()

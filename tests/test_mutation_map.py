"""The mutation-testing map (tests/mutation/modules.toml) names every critical module and only real test files."""

from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests/mutation"))
import run as mutation  # noqa: E402

CRITICAL = {"signature", "credentials", "intake", "normalize", "store", "publisher", "compliance", "outages",
            "replay", "reconcile", "xapi"}


def test_every_critical_module_has_its_guarding_tests():
    guarded = mutation.load_map()
    assert set(guarded) == CRITICAL
    for module, tests in guarded.items():
        assert (mutation.PACKAGE / mutation.module_file(module)).is_file()  # one file of that name
        assert tests and len(tests) == len(set(tests)), module
        missing = [name for name in tests if not (ROOT / "tests" / name).is_file()]
        assert missing == [], f"{module}: {missing}"


def test_each_mutant_runs_its_module_tests_fast_first_and_never_the_e2e_ones():
    command = mutation.test_command(["test_signature.py", "test_crc_function.py"])
    assert " -x " in command and "not e2e" in command
    assert command.endswith("tests/test_signature.py tests/test_crc_function.py")


def test_a_survivor_is_reported_with_its_diff_and_the_score_counts_only_run_mutants():
    diff = "--- a\n+++ b\n@@ -1 +1 @@\n-    if matched < 0:\n+    if matched <= 0:\n"
    text = mutation.report("signature", 9, 1, [(153, "core/ReplaceComparisonOperator_Lt_LtE", diff)])
    assert text.splitlines()[0] == "== signature: 90.0% (9 killed of 10 mutants, 1 survived)"
    assert "-- survivor at line 153 (core/ReplaceComparisonOperator_Lt_LtE):" in text
    assert "   +    if matched <= 0:" in text and "+++" not in text


def test_a_sampled_run_says_so():
    text = mutation.report("outages", 36, 4, [], sampled_out=417)
    assert text == "== outages: 90.0% (36 killed of 40 mutants, sampled from 457, 4 survived)"


def test_without_cosmic_ray_installed_a_run_says_how_to_install_it(monkeypatch, tmp_path):
    import pytest

    monkeypatch.setattr(mutation, "BIN", tmp_path / "bin")
    with pytest.raises(SystemExit) as stopped:
        mutation.main(["signature"])
    assert str(stopped.value) == (f"cosmic-ray is not installed in {tmp_path}: `make mutate` installs it "
                                  f"(or {tmp_path / 'bin' / 'pip'} install 'cosmic-ray>=8.7,<9')")

"""The smaller points of issue 14: one time syntax everywhere, no future replay windows, tables that
say when they cut, plurals, and help for every argument."""

from __future__ import annotations

import argparse
import re

import pytest

from helpers import post
from xrelay.tools.cli.cli import _table, main


def test_republish_takes_durations_like_tail(stack, capsys):
    assert main(["events", "republish", "--since", "10m"]) == 0
    assert "stored events in the window" in capsys.readouterr().out


def test_replay_refuses_a_window_in_the_future(stack, capsys):
    assert main(["replay", "--from", "1h", "--to", "2030-01-01T00:00:00Z"]) == 2
    assert "is in the future" in capsys.readouterr().err


def test_replay_takes_durations(stack, capsys):
    assert main(["replay", "--from", "2h", "--to", "1h", "--reason", "maintenance"]) == 0
    assert "recorded" in capsys.readouterr().out


def test_events_list_prints_times_as_tail_does(stack, capsys):
    from conftest import ROOT

    assert post(stack, (ROOT / "events/deliveries/xaa_post_create.json").read_bytes())[0] == 200
    capsys.readouterr()
    assert main(["events", "list", "--user", "1111111111111111111"]) == 0
    (row,) = capsys.readouterr().out.splitlines()[1:]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  xaa", row)


def test_a_cut_cell_ends_with_an_ellipsis(capsys):
    _table(("what", "why"), [("x", "y" * 150)])
    row = capsys.readouterr().out.splitlines()[1]
    assert row.endswith("…") and len(row) < 110


def test_counts_are_singular_for_one(stack, tmp_path, capsys):
    from conftest import apply_desired

    apply_desired(tmp_path)  # one AAA user, one XAA subscription
    out = capsys.readouterr().out
    assert "1 AAA user, 1 XAA subscription," in out


def parser(monkeypatch) -> argparse.ArgumentParser:
    captured = []

    def capture(self, args=None, namespace=None):
        captured.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(SystemExit):
        main(["status"])
    return captured[0]


def test_every_argument_has_help(monkeypatch):
    missing = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(parser(monkeypatch), "xrelay")
    assert missing == []

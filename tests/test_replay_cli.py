"""`xrelay replay --from --to` (an operator declares an outage) and `xrelay replay status` (the ledger)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from test_command_schemas import validate
from xrelay.recovery.outages import Ledger
from xrelay.tools.cli.cli import main


def test_a_declared_outage_is_recorded_once_and_listed_pending(stack, capsys):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = now - timedelta(hours=3), now - timedelta(hours=2)
    args = ["replay", "--from", f"{start:%Y-%m-%dT%H:%M:%SZ}", "--to", f"{end:%Y-%m-%dT%H:%M:%SZ}",
            "--reason", "planned maintenance"]
    assert main(args) == 0
    assert "(60 min) recorded" in capsys.readouterr().out
    assert main(args) == 0
    assert "already recorded" in capsys.readouterr().out
    (interval,) = Ledger(stack.stack.physical("StateTable")).read().intervals
    assert (interval.source, interval.start, interval.end, interval.reason) == (
        "operator", start, end, "planned maintenance")

    assert main(["replay", "status"]) == 0
    out = capsys.readouterr().out
    assert "webhook unknown" in out and "operator" in out and "pending" in out
    assert "no webhook id known yet" in out  # why nothing will be replayed yet

    assert main(["replay", "status", "--json"]) == 0
    status = validate("replay-status", capsys.readouterr().out)
    (row,) = status["intervals"]
    assert (row["from"], row["status"], row["minutes"], row["pending_minutes"]) == (
        f"{start:%Y-%m-%dT%H:%M:%S}.000Z", "pending", 70, 70)  # padded by the 5-minute margin each side
    assert status["jobs"] == [] and status["next_window"] is None


def test_bad_declarations_are_refused_with_a_reason(stack, capsys):
    assert main(["replay", "--from", "2026-11-25T09:00:00Z", "--to", "2026-11-25T08:00:00Z"]) == 2
    assert "must end after it starts" in capsys.readouterr().err
    assert main(["replay", "--from", "2026-11-25T09:00:00Z"]) == 2
    assert "needs --from and --to" in capsys.readouterr().err
    assert Ledger(stack.stack.physical("StateTable")).read().intervals == []


def test_an_empty_ledger_says_so(stack, capsys):
    assert main(["replay", "status"]) == 0
    assert "no outage recorded" in capsys.readouterr().out

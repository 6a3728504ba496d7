"""Sample events dated relative to now (issue 14): trying one records today's outage, not a fixed day's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from conftest import ROOT
from xrelay.recovery.outages import parse_alarm_event
from xrelay.tools.local.samples import PLACEHOLDER, fill_dates, load_event

NOW = datetime(2026, 12, 4, 22, 30, 5, 250000, tzinfo=UTC)


def test_placeholders_are_filled_with_offsets_and_formats():
    text = '["{{now}}", "{{now-20m}}", "{{now+1h}}", "{{now-2d|%d/%m/%y %H:%M}}", "{{now-90s|%H:%M:%S.%L}}"]'
    assert json.loads(fill_dates(text, NOW)) == [
        "2026-12-04T22:30:05Z", "2026-12-04T22:10:05Z", "2026-12-04T23:30:05Z", "02/12/26 22:30", "22:28:35.250"]


def test_every_sample_is_json_once_filled_and_none_keeps_a_placeholder():
    for path in sorted((ROOT / "events").rglob("*.json")):
        text = fill_dates(path.read_text(), NOW)
        assert not PLACEHOLDER.search(text) and "{{" not in text, path
        json.loads(text)


def test_the_alarm_samples_describe_an_outage_that_just_happened():
    opened = parse_alarm_event(load_event(ROOT / "events" / "ReplayFunction-alarm.json"))
    closed = parse_alarm_event(load_event(ROOT / "events" / "ReplayFunction-ok.json"))
    now = datetime.now(UTC)
    assert (opened.state, closed.state) == ("ALARM", "OK")
    assert now - timedelta(hours=1) < opened.at < closed.at <= now  # inside X's 24-hour replay horizon

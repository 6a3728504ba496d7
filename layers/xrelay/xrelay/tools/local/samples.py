"""Sample trigger events (``events/*.json``) dated relative to now.

A sample where dates matter (an alarm's state change) holds placeholders instead of fixed times,
filled when it is loaded, so that trying it today records today's outage, inside X's replay
horizon, and not one of the day the sample was written:

* ``{{now}}``: now, ``2026-11-25T08:02:13Z``;
* ``{{now-20m}}``, ``{{now+1h}}``: offsets in s, m, h or d;
* ``{{now-20m|%Y-%m-%dT%H:%M:%S.%L+0000}}``: a strftime format, ``%L`` being milliseconds.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\{\{now(?:([+-])(\d+)([smhd]))?(?:\|([^}]*))?\}\}")
DEFAULT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def fill_dates(text: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)

    def one(match: re.Match[str]) -> str:
        sign, amount, unit, fmt = match.groups()
        when = now
        if amount:
            offset = timedelta(**{_UNITS[unit]: int(amount)})
            when = now + offset if sign == "+" else now - offset
        fmt = (fmt or DEFAULT_FORMAT).replace("%L", f"{when.microsecond // 1000:03d}")
        return when.strftime(fmt)

    return PLACEHOLDER.sub(one, text)


def load_event(path: Path, now: datetime | None = None) -> Any:
    """The sample's JSON with its placeholders filled (a file without any is read as it is)."""
    return json.loads(fill_dates(Path(path).read_text(), now))

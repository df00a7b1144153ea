"""The one place that reads the wall clock, and the parsing of simulated times."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def now() -> datetime:
    """The current time, aware, in UTC; freezegun moves it in tests."""
    return datetime.now(UTC)


def parse(text: str, zone: str = "UTC") -> datetime:
    """An ISO-8601 moment; one without an offset is read in `zone`. Raises ValueError."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment

"""The one place that reads the wall clock, and the parsing of simulated times."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def now() -> datetime:
    """The current time, aware, in UTC; freezegun moves it in tests."""
    return datetime.now(UTC)


FIRST_YEAR, LAST_YEAR = 1970, 2199  # moments a caller, a schedule or a report can be about


def parse(text: str, zone: str | None = "UTC") -> datetime:
    """An ISO-8601 moment between 1970 and 2199; one without an offset is read in `zone` (or left
    without one when `zone` is None). Raises ValueError saying what would be right."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 date and time like 2021-03-01T10:00:00+03:00") from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"{text!r} is out of range: give a moment from {FIRST_YEAR} to {LAST_YEAR}")
    if moment.tzinfo is None and zone is not None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment

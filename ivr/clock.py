"""The one place that reads the wall clock, and the parsing of simulated times."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def now() -> datetime:
    """The current time, aware, in UTC; freezegun moves it in tests."""
    return datetime.now(UTC)


FIRST_YEAR, LAST_YEAR = 1970, 2199  # moments a caller, a schedule or a report can be about


def _wrong(text: str, value: str) -> str:
    """Why `value` is no ISO-8601 moment: a date that does not exist (30 February), or the form."""
    import re

    written = re.match(r"(\d{4})-(\d{2})-(\d{2})(?:$|[T ])", value)
    if written:
        try:
            year, month, day = (int(part) for part in written.groups())
            datetime(year, month, day)
        except ValueError as exc:
            return f"{text!r} is no such date: {exc}"
    return f"{text!r} is not an ISO-8601 date and time like 2021-03-01T10:00:00+03:00"


def parse(text: str, zone: str | None = "UTC") -> datetime:
    """An ISO-8601 moment between 1970 and 2199; one without an offset is read in `zone` (or left
    without one when `zone` is None). Raises ValueError saying what would be right."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_wrong(text, value)) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"{text!r} is out of range: give a moment from {FIRST_YEAR} to {LAST_YEAR}")
    if moment.tzinfo is None and zone is not None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment

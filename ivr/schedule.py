"""Opening hours: weekly intervals in a time zone, a country's production calendar, moved days.

A day's hours are decided in this order, first match wins:
1. an explicit extra day off (``closed_on``) -> closed;
2. an explicit moved working day (``working_on``) -> the moved-working-day hours;
3. a public holiday or moved day off of the country calendar -> closed;
4. a moved working day of the country calendar (a worked Saturday) -> the moved-working-day hours;
5. otherwise the weekly hours of that weekday (none -> closed).
Anything not inside an interval of that day is closed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SEARCH_DAYS = 400


@dataclass(frozen=True)
class Interval:
    """Open from start (inclusive) to end (exclusive) within one day; end may be 24:00."""

    start: time
    end: time | None  # None means midnight at the end of the day

    def contains(self, t: time) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True)
class Schedule:
    """When a contact is reachable; ask it with an aware datetime."""

    name: str
    timezone: str
    weekly: Mapping[int, tuple[Interval, ...]]
    country: str | None = None
    working_on: frozenset[date] = frozenset()
    closed_on: frozenset[date] = frozenset()
    moved_workday: tuple[Interval, ...] = ()
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _calendar(self) -> holidays.HolidayBase | None:
        if self.country is None:
            return None
        cal = self._cache.get("calendar")
        if cal is None:
            cal = holidays.country_holidays(self.country, language="ru")
            self._cache["calendar"] = cal
        return cal

    def hours_on(self, day: date) -> tuple[Interval, ...]:
        """The intervals the schedule is open on a local calendar day."""
        if day in self.closed_on:
            return ()
        if day in self.working_on:
            return self.moved_workday
        cal = self._calendar()
        if cal is not None:
            if day in cal:
                return ()
            if day in cal.weekend_workdays:
                return self.moved_workday
        return self.weekly.get(day.weekday(), ())

    def is_open(self, at: datetime) -> bool:
        """True when `at` (aware) falls inside an opening interval."""
        local = at.astimezone(self.zone)
        return any(i.contains(local.time()) for i in self.hours_on(local.date()))

    def next_opening(self, at: datetime) -> datetime | None:
        """The first moment strictly after `at` when an interval starts, in the schedule's zone."""
        local = at.astimezone(self.zone)
        for offset in range(_SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            for interval in self.hours_on(day):
                start = datetime.combine(day, interval.start, tzinfo=self.zone)
                if start > local:
                    return start
        return None

    def describe(self) -> str:
        """Weekly hours for a summary line, e.g. 'mon-fri 09:00-18:00'."""
        parts = []
        for idx, name in enumerate(WEEKDAYS):
            if self.weekly.get(idx):
                parts.append(f"{name} " + ",".join(str(i) for i in self.weekly[idx]))
        return "; ".join(parts) or "never open"


def _parse_time(text: str) -> time | None:
    if text == "24:00":
        return None
    try:
        return time.fromisoformat(text if len(text) > 4 else "0" + text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like '09:00'") from None


def parse_intervals(value: Any) -> tuple[Interval, ...]:
    """'09:00-18:00' or a list of them -> sorted, non-overlapping intervals."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"{value!r} is not an interval like '09:00-18:00' or a list of them")
    result = []
    for item in items:
        start_text, sep, end_text = item.replace(" ", "").partition("-")
        if not sep:
            raise ValueError(f"{item!r} is not an interval like '09:00-18:00'")
        start = _parse_time(start_text)
        end = _parse_time(end_text)
        if start is None:
            raise ValueError(f"{item!r} cannot start at 24:00")
        if end is not None and end <= start:
            raise ValueError(f"{item!r} ends before it starts")
        result.append(Interval(start, end))
    result.sort(key=lambda i: i.start)
    for a, b in itertools.pairwise(result):
        if a.end is None or a.end > b.start:
            raise ValueError(f"intervals {a} and {b} overlap")
    return tuple(result)


def parse_dates(value: Any) -> frozenset[date]:
    """A list of ISO dates."""
    if not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list of dates like 2021-02-20")
    days = set()
    for item in value:
        if isinstance(item, date):
            days.add(item)
            continue
        try:
            days.add(date.fromisoformat(str(item)))
        except ValueError:
            raise ValueError(f"{item!r} is not a date like 2021-02-20") from None
    return frozenset(days)


def check_timezone(name: Any) -> str:
    """The name itself when it is a known IANA time zone."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known IANA time zone like 'Europe/Moscow'") from None
    return str(name)


def check_country(code: Any) -> str:
    """The code itself when the holidays package has a calendar for it."""
    if str(code) not in holidays.list_supported_countries():
        raise ValueError(f"{code!r} is not a country the holidays calendar knows (e.g. 'RU')")
    return str(code)

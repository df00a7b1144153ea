"""Opening hours: weekly intervals in a time zone, a country's production calendar, moved days,
one-off overrides and an operator's emergency closure.

What decides a moment, first match wins:
1. an emergency closure switched on by an operator (`ivr hours close`) -> closed;
2. an override for that date (`overrides:`): closed, or the hours it gives;
3. an extra day off (`closed_on:`) -> closed;
4. an extra working day (`working_on:`) -> the moved-working-day hours;
5. a public holiday or a moved day off of the country calendar -> closed;
6. a moved working day of the country calendar (a worked Saturday) -> the moved-working-day hours;
7. the weekly hours of that weekday (none -> closed).
With `shorten_before_holidays`, a working day from 4, 6 or 7 that comes right before a public holiday
ends one hour earlier (Russian Labour Code, art. 95). Anything not inside an interval is closed.
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
from holidays.registry import EntityLoader

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_SEARCH_DAYS = 400
CLOSED: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class Interval:
    """Open from start (inclusive) to end (exclusive) within one day; end None is midnight (24:00)."""

    start: time
    end: time | None

    def contains(self, t: time) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def shortened(self) -> Interval:
        """The same interval ending one hour earlier (unchanged if that would leave nothing)."""
        end = self.end.hour * 60 + self.end.minute if self.end else 24 * 60
        start = self.start.hour * 60 + self.start.minute
        return self if end - 60 <= start else Interval(self.start, time((end - 60) // 60, (end - 60) % 60))

    def __str__(self) -> str:
        end = "24:00" if self.end is None else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


@dataclass(frozen=True)
class DayPlan:
    """A local day's opening intervals and the reason they are what they are."""

    intervals: tuple[Interval, ...]
    why: str


@dataclass(frozen=True)
class Status:
    """Open or closed at a moment, why, and the next opening."""

    open: bool
    why: str
    next_opening: datetime | None


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
    overrides: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)
    shorten_before_holidays: bool = False
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _calendar(self) -> holidays.HolidayBase | None:
        if self.country is None:
            return None
        if "calendar" not in self._cache:
            self._cache["calendar"] = holidays.country_holidays(self.country, language="ru")
        calendar: holidays.HolidayBase = self._cache["calendar"]
        return calendar

    def _public_holiday(self, day: date) -> str | None:
        """The name of a public holiday on `day` (moved days off are not public holidays)."""
        cal = self._calendar()
        name = cal.get(day) if cal is not None else None
        return None if name is None or "выходной" in name.lower() else str(name)

    def _before_holiday(self, day: date) -> bool:
        # The next day that is a holiday or a working day decides: a holiday means `day` is pre-holiday.
        # Weekends and moved days off in between count only after a worked weekend day.
        cal = self._calendar()
        if cal is None:
            return False
        moved_working = day in cal.weekend_workdays or day in self.working_on
        for offset in range(1, 10):
            nxt = day + timedelta(days=offset)
            if self._public_holiday(nxt):
                return offset == 1 or moved_working
            if (nxt not in cal and nxt.weekday() < 5) or nxt in cal.weekend_workdays:
                return False
        return False

    def plan(self, day: date) -> DayPlan:
        """The opening hours of a local calendar day, with the rule that decided them."""
        if day in self.overrides:
            hours = self.overrides[day]
            return DayPlan(hours, "override: " + (", ".join(map(str, hours)) if hours else "closed"))
        if day in self.closed_on:
            return DayPlan(CLOSED, "extra day off (closed_on)")
        cal = self._calendar()
        if day in self.working_on:
            plan = DayPlan(self.moved_workday, "extra working day (working_on)")
        elif cal is not None and day in cal:
            name = cal.get(day)
            kind = "moved day off" if "выходной" in str(name).lower() else "public holiday"
            return DayPlan(CLOSED, f"{kind}: {name}")
        elif cal is not None and day in cal.weekend_workdays:
            plan = DayPlan(self.moved_workday, "moved working day of the production calendar")
        else:
            plan = DayPlan(self.weekly.get(day.weekday(), CLOSED), f"weekly hours ({_WEEKDAY_NAMES[day.weekday()]})")
        if self.shorten_before_holidays and plan.intervals and self._before_holiday(day):
            shorter = (*plan.intervals[:-1], plan.intervals[-1].shortened())
            return DayPlan(shorter, plan.why + ", one hour shorter before a public holiday")
        return plan

    def hours_on(self, day: date) -> tuple[Interval, ...]:
        """The intervals the schedule is open on a local calendar day."""
        return self.plan(day).intervals

    def is_open(self, at: datetime, emergency: str | None = None) -> bool:
        """True when `at` (aware) falls inside an opening interval and no emergency closure is on."""
        return self.status(at, emergency).open

    def status(self, at: datetime, emergency: str | None = None) -> Status:
        """Open or closed at `at`, the reason, and the next opening."""
        local = at.astimezone(self.zone)
        plan = self.plan(local.date())
        opening = self.next_opening(at)
        if emergency is not None:
            return Status(False, f"emergency closure: {emergency}", opening)
        inside = any(i.contains(local.time()) for i in plan.intervals)
        if inside:
            return Status(True, f"{plan.why}: " + ", ".join(map(str, plan.intervals)), opening)
        hours = ", ".join(map(str, plan.intervals)) or "none"
        return Status(False, f"{plan.why}; hours that day: {hours}", opening)

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
        """Weekly hours for a summary line, e.g. 'mon 09:00-18:00; tue 09:00-18:00'."""
        parts = [
            f"{name} " + ",".join(str(i) for i in self.weekly[idx])
            for idx, name in enumerate(WEEKDAYS)
            if self.weekly.get(idx)
        ]
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


def parse_day_hours(value: Any) -> tuple[Interval, ...]:
    """An override: 'closed' or intervals."""
    if isinstance(value, str) and value.strip().lower() == "closed":
        return CLOSED
    return parse_intervals(value)


def parse_date(value: Any) -> date:
    """An ISO date (YAML may already have made it a date)."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a date like 2021-02-20") from None


def parse_dates(value: Any) -> frozenset[date]:
    """A list of ISO dates."""
    if not isinstance(value, list):
        raise ValueError(f"{value!r} is not a list of dates like 2021-02-20")
    return frozenset(parse_date(item) for item in value)


def check_timezone(name: Any) -> str:
    """The name itself when it is a known IANA time zone."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a known IANA time zone like 'Europe/Moscow'") from None
    return str(name)


def check_country(code: Any) -> str:
    """The code itself when the holidays package has a calendar for it."""
    # The registry's codes: list_supported_countries() would load every country's calendar to list
    # its subdivisions, a tenth of a second at every start.
    if str(code) not in set(EntityLoader.get_country_codes()):
        raise ValueError(f"{code!r} is not a country the holidays calendar knows (e.g. 'RU')")
    return str(code)

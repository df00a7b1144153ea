"""Per-period allowances: how many times a service may be used per policy or calendar year."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

PERIODS = ("policy_year", "calendar_year")


@dataclass(frozen=True)
class AllowanceRule:
    """A named allowance: `limit` uses per period, periods anchored at month/day 00:00 in `timezone`."""

    name: str
    limit: int
    period: str
    anchor_month: int
    anchor_day: int
    timezone: str

    def period_at(self, now: datetime) -> tuple[datetime, datetime]:
        """The period containing `now`: [start, end), both aware, in the rule's zone."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        month, day = (1, 1) if self.period == "calendar_year" else (self.anchor_month, self.anchor_day)
        start = datetime(local.year, month, day, tzinfo=zone)
        if start > local:
            start = start.replace(year=local.year - 1)
        return start, start.replace(year=start.year + 1)


@dataclass(frozen=True)
class Decision:
    """The outcome of asking to spend an allowance."""

    granted: bool
    reference: str | None
    used_at: datetime | None = None  # when the allowance was last used, on refusal

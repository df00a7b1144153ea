"""Call-back requests and when each is due: at once for a line that is open, otherwise at that
line's next opening, by the same calendar as the hours (`ivr callbacks`).

A call-back request (kind `callback`) names its line in `contact` (the representative, the desk,
the navigator). A line with a schedule of the same name is open by that schedule; a line without
one is always open (the 24-hour desk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .model import Flow

KIND = "callback"


@dataclass(frozen=True)
class CallBack:
    """A call-back request and when it is due."""

    reference: str
    line: str
    phone: str
    requested_at: datetime
    due_at: datetime | None  # None: the line never opens again (its schedule has no opening ahead)

    def is_due(self, now: datetime) -> bool:
        return self.due_at is not None and self.due_at <= now


def due_at(flow: Flow, line: str, requested_at: datetime) -> datetime | None:
    """When a call-back asked for at `requested_at` is due: then, if the line is open; else its next
    opening (None if it has none ahead)."""
    schedule = flow.schedules.get(line)
    if schedule is None or schedule.is_open(requested_at):
        return requested_at
    return schedule.next_opening(requested_at)


def from_request(flow: Flow, request: Mapping[str, Any]) -> CallBack:
    """The call-back a registered request stands for."""
    data = request["data"]
    line = str(data.get("contact") or flow.settings.operator)
    requested = request["created_at"]
    return CallBack(request["reference"], line, str(data.get("phone", "")), requested, due_at(flow, line, requested))

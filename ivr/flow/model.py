"""The immutable flow model: what flows.load() builds and the engine walks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from ivr.flow.kinds import (
    DIAL_STATUSES,
    WAITING_KINDS,
    Allowance,
    AnyNode,
    Ask,
    Branch,
    DialOutcome,
    Failures,
    Hangup,
    Menu,
    Message,
    Node,
    Option,
    Register,
    Transfer,
)
from ivr.flow.schedule import Schedule

__all__ = [
    "DIAL_STATUSES",
    "EMPTY",
    "PERIODS",
    "WAITING_KINDS",
    "Allowance",
    "AllowanceRule",
    "AnyNode",
    "Ask",
    "Branch",
    "CallbackPolicy",
    "Callbacks",
    "Contact",
    "DialOutcome",
    "Failures",
    "Flow",
    "Hangup",
    "Menu",
    "Message",
    "Node",
    "Option",
    "Period",
    "Programme",
    "Properties",
    "Register",
    "Settings",
    "Transfer",
]

EMPTY: Mapping[str, str] = MappingProxyType({})
EMPTY_BUDGETS: Mapping[str, int] = MappingProxyType({})


Period = Literal["policy_year", "calendar_year"]
PERIODS: tuple[str, ...] = get_args(Period)


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
class Contact:
    """A transfer target: a phone number, `sip:` address or `client:` name."""

    name: str
    target: str
    env: str  # the environment variable that overrides the target


@dataclass(frozen=True)
class Programme:
    """The period the insurance programme is in force: [start, end)."""

    start: datetime
    end: datetime
    inactive: str  # node that explains the programme is not in force

    def active(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True)
class Settings:
    """Flow-wide settings: voice, language, zone, entry points and standard phrases."""

    voice: str
    language: str
    timezone: str
    start: str
    main_menu: str
    operator: str
    attempts: int  # wrong keys and silences together before the fallback
    gather_timeout: int
    dial_timeout: int
    texts: Mapping[str, str]


@dataclass(frozen=True)
class CallbackPolicy:
    """How call-back requests are placed: attempts, the spacing between them, when to give up, and
    how many calls are placed at once."""

    attempts: int
    spacing_minutes: int
    give_up_hours: int  # after the request fell due, no attempt is started any more
    at_once: int


@dataclass(frozen=True)
class Callbacks:
    """The outbound flow of call-backs: the node each line's call-back starts at, the node an
    answering machine hears, and the policy."""

    lines: Mapping[str, str]  # line (a contact name) -> start node
    machine: str
    policy: CallbackPolicy
    default_line: str  # the line of a call-back request that names none (the operator's)


@dataclass(frozen=True)
class Properties:
    """What the flow file asks `ivr check` to prove: anonymous parts, and time budgets."""

    anonymous: tuple[str, ...] = ()
    budgets: Mapping[str, int] = field(default_factory=lambda: EMPTY_BUDGETS)


@dataclass(frozen=True)
class Flow:
    """A validated phone tree; build it with flows.load()."""

    name: str
    path: str
    settings: Settings
    contacts: Mapping[str, Contact]
    schedules: Mapping[str, Schedule]
    allowances: Mapping[str, AllowanceRule]
    programme: Programme | None
    nodes: Mapping[str, AnyNode]
    revision: str = ""  # a hash of the file's text: calls stay on the revision they started on
    callbacks: Callbacks | None = None
    properties: Properties = Properties()

    def node(self, node_id: str) -> AnyNode:
        return self.nodes[node_id]

    def text(self, name: str) -> str:
        return self.settings.texts[name]

    @property
    def main_menu(self) -> Menu | None:
        """The main menu's node (None when `settings.main_menu` names no menu)."""
        node = self.nodes.get(self.settings.main_menu)
        return node if isinstance(node, Menu) else None

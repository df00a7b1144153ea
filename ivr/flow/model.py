"""The immutable flow model: what flows.load() builds and the engine walks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from ivr.flow.schedule import Schedule

# What a transfer's `outcomes` maps: Twilio's DialCallStatus values, and `otherwise` for the rest.
DialOutcome = Literal["completed", "answered", "busy", "no-answer", "failed", "canceled", "otherwise"]
DIAL_STATUSES: tuple[str, ...] = get_args(DialOutcome)[:-1]
TERMINAL_KINDS = frozenset({"hangup"})
WAITING_KINDS = frozenset({"menu", "ask", "transfer", "hangup"})
EMPTY: Mapping[str, str] = MappingProxyType({})


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
class Failures:
    """How a node handles one kind of failure (wrong input or silence)."""

    limit: int
    fallback: str


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
class Option:
    """A menu choice: a key, spoken keywords, and the node it leads to."""

    key: str
    to: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Node:
    """Fields every node has."""

    id: str
    line: int
    kind: str = field(init=False, default="")


@dataclass(frozen=True, kw_only=True)
class Menu(Node):
    """Say a prompt and wait for a key or a keyword; `*` repeats, `0` reaches the operator."""

    prompt: str
    reprompt: str
    options: tuple[Option, ...]
    invalid: Failures
    no_input: Failures
    speech: bool = True
    kind: str = field(init=False, default="menu")

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


@dataclass(frozen=True, kw_only=True)
class Message(Node):
    """Say something and go on."""

    say: str
    next: str
    kind: str = field(init=False, default="message")


@dataclass(frozen=True, kw_only=True)
class Ask(Node):
    """Collect one value: typed digits, speech, or the caller's own number, optionally read back."""

    input: Literal["digits", "speech", "caller_number"]
    store: str
    prompt: str
    confirm: bool
    retry: str  # said when the value is not acceptable
    next: str
    invalid: Failures
    no_input: Failures
    min_length: int = 1
    max_length: int = 32
    finish_on_key: str = "#"
    hints: tuple[str, ...] = ()
    timeout: int | None = None
    kind: str = field(init=False, default="ask")


@dataclass(frozen=True, kw_only=True)
class Branch(Node):
    """Route on a schedule (open/closed), the programme (active/inactive) or a stored value."""

    on: str  # "schedule", "programme" or "value"
    subject: str  # schedule name or value name; "" for the programme
    cases: Mapping[str, str]
    default: str | None = None
    kind: str = field(init=False, default="branch")


@dataclass(frozen=True, kw_only=True)
class Allowance(Node):
    """Spend one use of an allowance and register the request, in one step; or refuse."""

    allowance: str
    key: str  # the stored value the allowance is counted by (the policy number)
    request: str
    fields: tuple[str, ...]
    granted: str
    used_up: str
    kind: str = field(init=False, default="allowance")


@dataclass(frozen=True, kw_only=True)
class Register(Node):
    """Register a request with a reference number the caller hears next."""

    request: str
    fields: tuple[str, ...]
    contact: str | None  # a contact name, "@last_transfer", or None
    next: str
    kind: str = field(init=False, default="register")


@dataclass(frozen=True, kw_only=True)
class Transfer(Node):
    """Connect the caller to a contact; every dial outcome leads somewhere."""

    contact: str
    say: str
    timeout: int
    outcomes: Mapping[str, str]
    anonymous: bool = False
    kind: str = field(init=False, default="transfer")


@dataclass(frozen=True, kw_only=True)
class Hangup(Node):
    """Say goodbye and end the call."""

    say: str
    kind: str = field(init=False, default="hangup")


AnyNode = Menu | Message | Ask | Branch | Allowance | Register | Transfer | Hangup


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

    def node(self, node_id: str) -> AnyNode:
        return self.nodes[node_id]

    def text(self, name: str) -> str:
        return self.settings.texts[name]

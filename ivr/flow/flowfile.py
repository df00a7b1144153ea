"""The shape of a flow file, declared once (pydantic): the loader validates with it, its errors are
reported at their `file:line`, and `ivr schema` writes its JSON Schema — they cannot drift apart.

Only what one value or one mapping shows on its own is declared here (types, keys, ranges, times,
placeholders); what needs the whole flow (targets, reachability, loops) is in validate.py, and what
needs the environment (contacts overridden by IVR_CONTACT_*) is in flows.py.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    WithJsonSchema,
    model_validator,
)

from ivr.flow import schedule, templates
from ivr.flow.model import DIAL_STATUSES, DialOutcome, Period

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_INTERVAL_PATTERN = r"^\d{1,2}:\d{2}-\d{1,2}:\d{2}$"


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for a likely typo of a known name, else ""."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else ""


class Said(ValueError):
    """A check's complete message (reported as it is), at the line of `key` when one is named."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


# ---- values -------------------------------------------------------------------------------------


def _speakable(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty: the caller would hear nothing")
    try:
        templates.placeholders(text)
    except ValueError as exc:
        raise ValueError(f"has a broken placeholder: {exc}") from None
    return text


def _listed(value: Any) -> Any:
    """One string stands for a list of one."""
    return [value] if isinstance(value, str) else value


def _checked(check: Any) -> Any:
    """An after-validator that keeps the value as written and raises the check's own message."""

    def run(value: Any) -> Any:
        check(value)
        return value

    return AfterValidator(run)


def _between(low: int, high: int, description: str) -> Any:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"{value} is not from {low} to {high}")
        return value

    return Annotated[
        StrictInt,
        AfterValidator(check),
        Field(description=description, json_schema_extra={"minimum": low, "maximum": high}),
    ]


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError(f"{value} must be at least 1")
    return value


def _anchor(text: str) -> str:
    try:
        month, day = (int(x) for x in text.split("-"))
        datetime(2001, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not MM-DD, like 04-01") from None
    return text


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):  # YAML reads 2020-12-01 as a date: say it as written, not as Python
        raise ValueError(f"{value.isoformat()} needs a time and a UTC offset, like {value.isoformat()}T00:00:00+03:00")
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date-time like 2020-12-01T00:00:00+03:00") from None
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} needs a UTC offset, like {moment.isoformat()}+03:00")
    return moment


def _on(text: str) -> str:
    what, _, subject = text.partition(":")
    if what not in ("schedule", "programme", "value") or (what != "programme") != bool(subject):
        raise ValueError(f"{text!r} must be schedule:NAME, programme or value:NAME")
    return text


def _phone_key(key: str) -> str:
    if key == "*":
        raise Said("key '*' is reserved: it repeats the menu")
    if not re.fullmatch(r"[0-9#]", key):
        raise Said(f"key {key!r} is not a phone key (0-9, #)")
    return key


Name = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]
Text = Annotated[StrictStr, AfterValidator(_speakable), Field(json_schema_extra={"minLength": 1})]
Names = Annotated[
    list[Name],
    BeforeValidator(_listed),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
Words = Annotated[
    list[StrictStr],
    BeforeValidator(_listed),
    WithJsonSchema({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
_INTERVALS_SCHEMA = {
    "oneOf": [
        {"type": "string", "pattern": _INTERVAL_PATTERN},
        {"type": "array", "items": {"type": "string", "pattern": _INTERVAL_PATTERN}},
    ]
}
Intervals = Annotated[
    list[StrictStr], BeforeValidator(_listed), _checked(schedule.parse_intervals), WithJsonSchema(_INTERVALS_SCHEMA)
]
DayHours = Annotated[
    Any, _checked(schedule.parse_day_hours), WithJsonSchema({"oneOf": [{"const": "closed"}, _INTERVALS_SCHEMA]})
]
Day = Annotated[date, BeforeValidator(schedule.parse_date)]
Moment = Annotated[datetime, BeforeValidator(_moment), WithJsonSchema({"type": "string", "format": "date-time"})]
Zone = Annotated[StrictStr, _checked(schedule.check_timezone), Field(description="IANA time zone, e.g. Europe/Moscow.")]
Positive = Annotated[StrictInt, AfterValidator(_at_least_one), Field(json_schema_extra={"minimum": 1})]
PhoneKey = Annotated[str, AfterValidator(_phone_key), Field(json_schema_extra={"pattern": "^[0-9#]$"})]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Shape(BaseModel):
    """A mapping of a flow file: no key beyond the declared ones, no value of another type."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# ---- sections -----------------------------------------------------------------------------------


class SettingsFile(Shape):
    """`settings:` — voice, language, zone, entry points and the limits every node relies on."""

    voice: StrictStr = Field("Polly.Tatyana", description="Twilio voice, e.g. Polly.Tatyana.")
    language: StrictStr = Field("ru-RU", description="Language of speech and recognition.")
    timezone: Zone = "UTC"
    start: Name = Field(description="The node every call starts at.")
    main_menu: Name = Field(description="The menu that `9` and a lost call return to.")
    operator: Name | None = Field(None, description="Where key 0, repeated wrong keys and silences lead.")
    attempts: _between(1, 10, "Wrong keys and silences together before the fallback.") = 3  # type: ignore[valid-type]
    gather_timeout: _between(1, 60, "Seconds of silence before a menu hears nothing.") = 5  # type: ignore[valid-type]
    dial_timeout: _between(5, 600, "Seconds a transfer rings before no-answer.") = 30  # type: ignore[valid-type]


class TextsFile(Shape):
    """`texts:` — the standard phrases; a flow overrides any of them."""

    not_recognised: Text = "Выбор не распознан."
    rejected_digits: Text = "Вы ввели: {value}."
    no_input: Text = "Я вас не слышу."
    to_fallback: Text = "Соединяю с оператором."
    confirm_digits: Text = "Вы ввели: {value}. Если верно, нажмите 1. Чтобы ввести заново, нажмите 2."
    confirm_speech: Text = "Вы сказали: {value}. Если верно, нажмите 1. Чтобы повторить, нажмите 2."
    confirm_phone: Text = (
        "Ваш номер телефона: {value}. Если по нему можно перезвонить, нажмите 1. Чтобы ввести другой номер, нажмите 2."
    )
    lost_call: Text = "Извините, связь с меню прервалась. Возвращаю вас в главное меню."
    technical_failure: Text = "Извините, произошёл технический сбой. Соединяю с оператором."
    too_long: Text = "Извините, звонок длится слишком долго. Пожалуйста, позвоните ещё раз. До свидания."
    goodbye_after_failure: Text = "Не удалось соединить с оператором. Пожалуйста, перезвоните позже. До свидания."


class ContactFile(Shape):
    """A contact with its own environment variable."""

    number: StrictStr = Field(description="E.164 number, sip: or client: address.")
    env: StrictStr | None = Field(None, description="The variable that overrides it (default IVR_CONTACT_<NAME>).")


def _by_type(value: Any) -> str:
    return "mapping" if isinstance(value, Mapping) else "text"


Contact = Annotated[
    Union[Annotated[StrictStr, Tag("text")], Annotated[ContactFile, Tag("mapping")]],  # noqa: UP007 (tagged)
    Discriminator(_by_type),
]


class ScheduleFile(Shape):
    """A named schedule: weekly hours, the production calendar, and days that differ."""

    timezone: Zone | None = None
    calendar: Annotated[StrictStr, _checked(schedule.check_country)] | None = Field(
        None, description="Country of the production calendar, e.g. RU."
    )
    hours: dict[Weekday, Intervals]
    working_on: list[Day] = Field(default_factory=list, description="Extra working days (moved weekends).")
    closed_on: list[Day] = Field(default_factory=list, description="Extra days off.")
    moved_workday: Intervals | None = Field(None, description="Hours of a moved working day (default: Monday's).")
    overrides: dict[Day, DayHours] = Field(default_factory=dict, description="A date to 'closed' or to its hours.")
    shorten_before_holidays: StrictBool = False


class AllowanceFile(Shape):
    """A named allowance: uses per period."""

    limit: Positive = 1
    period: Period = "policy_year"
    anchor: Annotated[StrictStr, AfterValidator(_anchor), Field(json_schema_extra={"pattern": r"^\d{2}-\d{2}$"})] = (
        "01-01"
    )
    timezone: Zone | None = None


class ProgrammeFile(Shape):
    """When the programme is in force: [start, end)."""

    start: Moment
    end: Moment
    inactive: Name = Field(description="The node that explains the programme is not in force.")

    @model_validator(mode="after")
    def _ordered(self) -> ProgrammeFile:
        if self.end <= self.start:
            raise Said("programme: `end` must come after `start`", key="end")
        return self


class CallbackPolicyFile(Shape):
    """How call-backs are retried: attempts, minutes between them, hours after which to give up."""

    attempts: _between(1, 10, "Calls placed at most for one request.") = 3  # type: ignore[valid-type]
    spacing: _between(1, 1440, "Minutes from an unanswered attempt to the next.") = 30  # type: ignore[valid-type]
    give_up: _between(1, 720, "Hours after the request fell due when no attempt is started any more.") = 48  # type: ignore[valid-type]
    at_once: _between(1, 100, "Call-backs in progress at once, over every instance.") = 2  # type: ignore[valid-type]


class CallbacksFile(Shape):
    """`callbacks:` — the outbound calls that answer call-back requests."""

    lines: Annotated[dict[Name, Name], Field(min_length=1)] = Field(
        description="A line (a contact's name) to the node its call-back call starts at."
    )
    machine: Name = Field(description="The node an answering machine hears (a short message, then hang up).")
    policy: CallbackPolicyFile = CallbackPolicyFile()


class FailuresFile(Shape):
    """How many failures of one kind are allowed, then where the call goes."""

    limit: Positive | None = None
    fallback: Name | None = None


# ---- nodes --------------------------------------------------------------------------------------


class OptionFile(Shape):
    """A menu key with spoken keywords."""

    to: Name
    say: Words = Field(default_factory=list, description="Spoken keywords that choose this option.")


Option = Annotated[
    Union[Annotated[Name, Tag("text")], Annotated[OptionFile, Tag("mapping")]],  # noqa: UP007 (tagged)
    Discriminator(_by_type),
]


class MenuFile(Shape):
    """Say a prompt and wait for a key or a keyword; `*` repeats, `0` reaches the operator."""

    kind: Literal["menu"]
    prompt: Text = Field(description="What the caller hears; may use {placeholders}.")
    reprompt: Text | None = Field(None, description="The shorter prompt after a first wrong key or silence.")
    options: Annotated[dict[PhoneKey, Option], Field(min_length=1)] = Field(
        description="Phone keys (0-9, #) to a node, or to {to: node, say: [spoken keywords]}.",
        json_schema_extra={"additionalProperties": False},
    )
    invalid: FailuresFile | None = Field(None, description="Wrong answers allowed, then where the call goes.")
    no_input: FailuresFile | None = Field(None, description="Silences allowed, then where the call goes.")
    speech: StrictBool = Field(True, description="Whether the menu listens for spoken keywords.")


class MessageFile(Shape):
    """Say something and go on."""

    kind: Literal["message"]
    say: Text
    next: Name


class AskFile(Shape):
    """Collect one value: typed digits, speech, or the caller's own number, optionally read back."""

    kind: Literal["ask"]
    input: Literal["digits", "speech", "caller_number"]
    store: Name = Field(description="The name the value is stored under, e.g. policy.")
    prompt: Text
    confirm: StrictBool | None = Field(None, description="Read the value back: 1 = correct, 2 = re-enter.")
    retry: Text | None = Field(None, description="Said when the value given is not acceptable.")
    next: Name
    invalid: FailuresFile | None = None
    no_input: FailuresFile | None = None
    min_length: Positive = 1
    max_length: Positive = 32
    finish_on_key: Annotated[StrictStr, Field(max_length=1)] = "#"
    hints: Words = Field(default_factory=list, description="Words that help speech recognition.")
    timeout: Positive | None = Field(None, description="Seconds to wait.")

    @model_validator(mode="after")
    def _lengths(self) -> AskFile:
        if self.min_length > self.max_length:
            raise Said("`min_length` is greater than `max_length`", key="min_length")
        return self


class BranchFile(Shape):
    """Route on a schedule (open/closed), the programme (active/inactive) or a stored value."""

    kind: Literal["branch"]
    on: Annotated[
        StrictStr,
        AfterValidator(_on),
        Field(json_schema_extra={"pattern": "^(schedule:[A-Za-z0-9_]+|programme|value:[A-Za-z0-9_]+)$"}),
    ] = Field(description="schedule:NAME, programme or value:NAME.")
    cases: dict[StrictStr, Name] = Field(description="open/closed/emergency, active/inactive, or values, to nodes.")
    default: Name | None = Field(None, description="Where any other case goes.")


class AllowanceNodeFile(Shape):
    """Spend one use of an allowance and register the request, in one step; or refuse."""

    kind: Literal["allowance"]
    allowance: Name = Field(description="The allowance to spend (see allowances).")
    key: Name = Field(description="The stored value the allowance is counted by.")
    request: Name
    fields: Names = Field(default_factory=list, description="Stored values saved with the request.")
    granted: Name
    used_up: Name


class RegisterFile(Shape):
    """Register a request with a reference number the caller hears next."""

    kind: Literal["register"]
    request: Name = Field(description="The kind of request registered, e.g. desk.")
    fields: Names = Field(default_factory=list, description="Stored values saved with the request.")
    contact: StrictStr | None = Field(None, description="A contact name, or @last_transfer.")
    next: Name


class TransferFile(Shape):
    """Connect the caller to a contact; every dial outcome leads somewhere."""

    kind: Literal["transfer"]
    contact: StrictStr = Field(description="A contact name.")
    say: Text | None = None
    timeout: Positive | None = Field(None, description="Seconds to ring (default settings.dial_timeout).")
    outcomes: dict[DialOutcome, Name] = Field(description="Dial outcomes to nodes; every outcome must lead somewhere.")
    anonymous: StrictBool = Field(False, description="Store and log nothing about this caller.")

    @model_validator(mode="after")
    def _every_outcome(self) -> TransferFile:
        missing = [s for s in DIAL_STATUSES if s != "answered" and s not in self.outcomes]
        if missing and "otherwise" not in self.outcomes:
            raise Said(f"dial outcomes {', '.join(missing)} lead nowhere: add them or `otherwise`", key="outcomes")
        return self


class HangupFile(Shape):
    """Say goodbye and end the call."""

    kind: Literal["hangup"]
    say: Text


NodeFile = Annotated[
    Union[  # noqa: UP007 (a tagged union reads better spelled out)
        MenuFile, MessageFile, AskFile, BranchFile, AllowanceNodeFile, RegisterFile, TransferFile, HangupFile
    ],
    Field(discriminator="kind"),
]
NODE_SHAPES: Mapping[str, type[Shape]] = MappingProxyType(
    {get_args(m.model_fields["kind"].annotation)[0]: m for m in get_args(get_args(NodeFile)[0])}
)
NODE_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {kind: frozenset(m.model_fields) - {"kind"} for kind, m in NODE_SHAPES.items()}
)
DEFAULT_TEXTS: Mapping[str, str] = MappingProxyType(TextsFile().model_dump())


class FlowFile(Shape):
    """A phone tree served by ivr. Reference: docs/flows.md."""

    model_config = ConfigDict(title="ivr flow")

    flow: StrictStr | None = Field(None, description="The flow's name (default: the file's name).")
    settings: SettingsFile
    texts: TextsFile = TextsFile()
    contacts: dict[StrictStr, Contact] = Field(description="Transfer targets by name.")
    schedules: dict[Name, ScheduleFile] = Field(default_factory=dict)
    allowances: dict[Name, AllowanceFile] = Field(default_factory=dict)
    programme: ProgrammeFile | None = None
    callbacks: CallbacksFile | None = None
    nodes: Annotated[dict[StrictStr, NodeFile], Field(min_length=1)]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a flow file, for editors."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **FlowFile.model_json_schema()}

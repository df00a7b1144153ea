"""The shape of a flow file, declared once (pydantic): the loader validates with it, its errors are
reported at their `file:line`, and `ivr schema` writes its JSON Schema — they cannot drift apart.

Only what one value or one mapping shows on its own is declared here (types, keys, ranges, times,
placeholders); what needs the whole flow (targets, reachability, loops) is in validate.py, and what
needs the environment (contacts overridden by IVR_CONTACT_*) is in flows.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictStr,
    Tag,
    model_validator,
)

from ivr.flow import schedule
from ivr.flow.fields import (
    Day,
    DayHours,
    Intervals,
    Moment,
    Name,
    Positive,
    Said,
    Shape,
    Text,
    Weekday,
    Zone,
    _anchor,
    _between,
    _checked,
    by_type,
)
from ivr.flow.kinds import KINDS, NodeFile
from ivr.flow.model import Period

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


Contact = Annotated[
    Union[Annotated[StrictStr, Tag("text")], Annotated[ContactFile, Tag("mapping")]],  # noqa: UP007 (tagged)
    Discriminator(by_type),
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


NODE_SHAPES: Mapping[str, type[Shape]] = MappingProxyType({kind.kind: kind.shape for kind in KINDS})
DEFAULT_TEXTS: Mapping[str, str] = MappingProxyType(TextsFile().model_dump())


class PropertiesFile(Shape):
    """What `ivr check` proves of the flow besides its own rules."""

    anonymous: list[Name] = Field(
        default_factory=list,
        description="Nodes under which (up to the main menu) nothing is asked, stored or registered, "
        "and the caller's number is never read.",
    )
    budgets: dict[Name, Positive] = Field(
        default_factory=dict,
        description="A node a call ends up at (a transfer, a last message) to the most seconds a caller "
        "who presses at once may take to reach it from the greeting.",
    )


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
    properties: PropertiesFile = PropertiesFile()
    nodes: Annotated[dict[StrictStr, NodeFile], Field(min_length=1)]


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a flow file, for editors."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **FlowFile.model_json_schema()}

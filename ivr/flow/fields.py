"""The values a flow file is made of (names, texts, keys, times, ranges) and the base of its
mappings: declared once, for the loader's validation, its messages and the JSON Schema."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

from ivr.flow import schedule, templates

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


def by_type(value: Any) -> str:
    """The tag of a value that may be written as a text or as a mapping."""
    return "mapping" if isinstance(value, Mapping) else "text"


class Shape(BaseModel):
    """A mapping of a flow file: no key beyond the declared ones, no value of another type."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class FailuresFile(Shape):
    """How many failures of one kind are allowed, then where the call goes."""

    limit: Positive | None = None
    fallback: Name | None = None

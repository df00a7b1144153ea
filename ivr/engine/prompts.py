"""Prompt templates filled in with Russian words (the syntax is `ivr.flow.templates`)."""

from __future__ import annotations

import string
from collections.abc import Mapping

from ivr.engine import speech

_CONTACT = object()


class _Formatter(string.Formatter):
    def __init__(self, contacts: Mapping[str, str]) -> None:
        self.contacts = contacts

    def get_value(self, key: int | str, args: object, kwargs: Mapping[str, object]) -> object:
        if key == "contact":
            return _CONTACT
        return kwargs.get(str(key), "")

    def format_field(self, value: object, format_spec: str) -> str:
        if value is _CONTACT:
            return speech.phone(self.contacts.get(format_spec, ""))
        return str(value)


class Phrase(str):
    """A filled template that remembers its pieces: the template's own words (which a studio may
    have recorded) and the values the system speaks between them."""

    pieces: tuple[tuple[bool, str], ...]  # (recordable, text), in order

    def __new__(cls, pieces: tuple[tuple[bool, str], ...]) -> Phrase:
        phrase = super().__new__(cls, "".join(text for _, text in pieces).strip())
        phrase.pieces = pieces
        return phrase


def render(template: str, values: Mapping[str, str], contacts: Mapping[str, str]) -> Phrase:
    """Fill a template; `{contact:NAME}` speaks contact NAME's number."""
    formatter = _Formatter(contacts)
    pieces: list[tuple[bool, str]] = []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        if literal:
            pieces.append((True, literal))
        if name is not None:
            value, _ = formatter.get_field(name, (), values)
            pieces.append((False, formatter.format_field(formatter.convert_field(value, conversion), spec or "")))
    return Phrase(tuple(pieces))

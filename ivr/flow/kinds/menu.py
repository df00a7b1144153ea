"""The `menu` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Discriminator, Field, StrictBool, Tag

from ivr.flow.fields import FailuresFile, Name, PhoneKey, Shape, Text, Words, by_type
from ivr.flow.kinds.base import Builder, Failures, Flow, Node


class OptionFile(Shape):
    """A menu key with spoken keywords."""

    to: Name
    say: Words = Field(default_factory=list, description="Spoken keywords that choose this option.")


OptionEntry = Annotated[
    Union[Annotated[Name, Tag("text")], Annotated[OptionFile, Tag("mapping")]],  # noqa: UP007 (tagged)
    Discriminator(by_type),
]


class MenuFile(Shape):
    """Say a prompt and wait for a key or a keyword; `*` repeats, `0` reaches the operator."""

    kind: Literal["menu"]
    prompt: Text = Field(description="What the caller hears; may use {placeholders}.")
    reprompt: Text | None = Field(None, description="The shorter prompt after a first wrong key or silence.")
    options: Annotated[dict[PhoneKey, OptionEntry], Field(min_length=1)] = Field(
        description="Phone keys (0-9, #) to a node, or to {to: node, say: [spoken keywords]}.",
        json_schema_extra={"additionalProperties": False},
    )
    invalid: FailuresFile | None = Field(None, description="Wrong answers allowed, then where the call goes.")
    no_input: FailuresFile | None = Field(None, description="Silences allowed, then where the call goes.")
    speech: StrictBool = Field(True, description="Whether the menu listens for spoken keywords.")


@dataclass(frozen=True)
class Option:
    """A menu choice: a key, spoken keywords, and the node it leads to."""

    key: str
    to: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Menu(Node):
    """Say a prompt and wait for a key or a keyword; `*` repeats, `0` reaches the operator."""

    kind: ClassVar[str] = "menu"
    shape: ClassVar[type[Shape]] = MenuFile
    mermaid: ClassVar[tuple[str, str]] = ("{{", "}}")
    dot: ClassVar[str] = "hexagon"
    waits: ClassVar[bool] = True
    holds: ClassVar[bool] = True
    ending: ClassVar[str | None] = "abandoned"

    prompt: str
    reprompt: str
    options: tuple[Option, ...]
    invalid: Failures
    no_input: Failures
    speech: bool

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Menu:
        options = tuple(
            Option(key=key, to=o)
            if isinstance(o, str)
            else Option(key=key, to=o.to, keywords=tuple(w.lower() for w in o.say))
            for key, o in raw.options.items()
        )
        return cls(
            **base,
            prompt=raw.prompt,
            reprompt=raw.reprompt or raw.prompt,
            options=options,
            invalid=builder.failures(raw.invalid, "invalid", base["id"]),
            no_input=builder.failures(raw.no_input, "no_input", base["id"]),
            speech=raw.speech,
        )

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        out = [(f"options.{o.key}", o.to) for o in self.options]
        out += [("invalid.fallback", self.invalid.fallback), ("no_input.fallback", self.no_input.fallback)]
        if self.option("0") is None and flow.settings.operator:
            out.append(("key 0 (settings.operator)", flow.settings.operator))
        return out

    def label(self, flow: Flow) -> str:
        return f"{self.id}: menu"

    def edge(self, field: str) -> str:
        if field.startswith("key 0"):
            return "0"
        option = self.option(field.removeprefix("options.")) if field.startswith("options.") else None
        if option is not None and option.keywords:
            return f"{option.key} «{option.keywords[0]}»"
        return super().edge(field)

    def problems(self, flow: Flow, stored: frozenset[str]) -> list[str]:
        main = flow.settings.main_menu
        if main and self.id != main and not any(o.to == main for o in self.options):
            return [f"no way back to the main menu: add a key that leads to {main!r}"]
        return []

    def probes(self, phase: str) -> list[tuple[str, str]]:
        keys = [o.key for o in self.options]
        extra = ["0"] if "0" not in keys else []
        wrong = next(k for k in "987654321#" if k not in keys and k != "0")
        found = [("keys", k) for k in (*keys, *extra, "*", wrong)]
        if self.speech:
            found += [("say", w) for o in self.options for w in o.keywords[:3]]
            found.append(("say", "абракадабра"))
        return found

    def stranded(self, after: Node | None) -> str | None:
        changed = super().stranded(after)
        if changed is not None or not isinstance(after, Menu):
            return changed
        keys = sorted({o.key for o in self.options} - {o.key for o in after.options})
        return f"{self.id}: key {', '.join(keys)} no longer offered" if keys else None

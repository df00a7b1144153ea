"""The `ask` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StrictBool, StrictStr, model_validator

from ivr.flow.fields import FailuresFile, Name, Positive, Said, Shape, Text, Words
from ivr.flow.kinds.base import Builder, Failures, Flow, Node


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


@dataclass(frozen=True, kw_only=True)
class Ask(Node):
    """Collect one value: typed digits, speech, or the caller's own number, optionally read back."""

    kind: ClassVar[str] = "ask"
    shape: ClassVar[type[Shape]] = AskFile
    mermaid: ClassVar[tuple[str, str]] = ("[/", "/]")
    dot: ClassVar[str] = "parallelogram"
    waits: ClassVar[bool] = True
    holds: ClassVar[bool] = True
    ending: ClassVar[str | None] = "abandoned"

    input: Literal["digits", "speech", "caller_number"]
    store: str
    prompt: str
    confirm: bool
    retry: str  # said when the value is not acceptable
    next: str
    invalid: Failures
    no_input: Failures
    min_length: int
    max_length: int
    finish_on_key: str  # "
    hints: tuple[str, ...]
    timeout: int | None

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Ask:
        return cls(
            **base,
            input=raw.input,
            store=raw.store,
            prompt=raw.prompt,
            confirm=raw.input != "speech" if raw.confirm is None else raw.confirm,
            retry=raw.retry or raw.prompt,
            next=raw.next,
            invalid=builder.failures(raw.invalid, "invalid", base["id"]),
            no_input=builder.failures(raw.no_input, "no_input", base["id"]),
            min_length=raw.min_length,
            max_length=raw.max_length,
            finish_on_key=raw.finish_on_key,
            hints=tuple(raw.hints),
            timeout=raw.timeout,
        )

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        return [
            ("next", self.next),
            ("invalid.fallback", self.invalid.fallback),
            ("no_input.fallback", self.no_input.fallback),
        ]

    def label(self, flow: Flow) -> str:
        return f"{self.id}: ask {self.input} → {self.store}"

    def keeps(self) -> str:
        return self.store

    def probes(self, phase: str) -> list[tuple[str, str]]:
        if phase == "confirm":
            return [("keys", k) for k in ("1", "2", "3")] + [("say", "да"), ("say", "нет")]
        if self.input == "speech":
            return [("say", "Иванов Иван Иванович")]
        valid = "89031234567" if self.min_length <= 11 <= self.max_length else "7" * max(self.min_length, 1)
        invalid = "1" * (self.max_length + 1)
        return [("keys", valid + self.finish_on_key), ("keys", invalid + self.finish_on_key)]

"""The `hangup` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ivr.flow.fields import Shape, Text
from ivr.flow.kinds.base import Builder, Flow, Node


class HangupFile(Shape):
    """Say goodbye and end the call."""

    kind: Literal["hangup"]
    say: Text


@dataclass(frozen=True, kw_only=True)
class Hangup(Node):
    """Say goodbye and end the call."""

    kind: ClassVar[str] = "hangup"
    shape: ClassVar[type[Shape]] = HangupFile
    mermaid: ClassVar[tuple[str, str]] = ("((", "))")
    dot: ClassVar[str] = "doublecircle"
    waits: ClassVar[bool] = True
    ending: ClassVar[str | None] = "goodbye"

    say: str

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Hangup:
        return cls(**base, say=raw.say)

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        return []

    def label(self, flow: Flow) -> str:
        return f"{self.id}: hang up"

"""The `message` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ivr.flow.fields import Name, Shape, Text
from ivr.flow.kinds.base import Builder, Flow, Node


class MessageFile(Shape):
    """Say something and go on."""

    kind: Literal["message"]
    say: Text
    next: Name


@dataclass(frozen=True, kw_only=True)
class Message(Node):
    """Say something and go on."""

    kind: ClassVar[str] = "message"
    shape: ClassVar[type[Shape]] = MessageFile
    mermaid: ClassVar[tuple[str, str]] = ("[", "]")
    dot: ClassVar[str] = "box"
    waits: ClassVar[bool] = False

    say: str
    next: str

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Message:
        return cls(**base, say=raw.say, next=raw.next)

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        return [("next", self.next)]

    def label(self, flow: Flow) -> str:
        return self.id

"""The `register` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, StrictStr

from ivr.flow.fields import Name, Names, Shape
from ivr.flow.kinds.base import Builder, Flow, Node, _outside_programme, _unstored


class RegisterFile(Shape):
    """Register a request with a reference number the caller hears next."""

    kind: Literal["register"]
    request: Name = Field(description="The kind of request registered, e.g. desk.")
    fields: Names = Field(default_factory=list, description="Stored values saved with the request.")
    contact: StrictStr | None = Field(None, description="A contact name, or @last_transfer.")
    next: Name


@dataclass(frozen=True, kw_only=True)
class Register(Node):
    """Register a request with a reference number the caller hears next."""

    kind: ClassVar[str] = "register"
    shape: ClassVar[type[Shape]] = RegisterFile
    mermaid: ClassVar[tuple[str, str]] = ("[[", "]]")
    dot: ClassVar[str] = "box3d"
    waits: ClassVar[bool] = False

    request: str
    fields: tuple[str, ...]
    contact: str | None  # a contact name, "@last_transfer", or None
    next: str

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Register:
        return cls(**base, request=raw.request, fields=tuple(raw.fields), contact=raw.contact, next=raw.next)

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        return [("next", self.next), *_outside_programme(flow)]

    def label(self, flow: Flow) -> str:
        return f"{self.id}: register {self.request}"

    def problems(self, flow: Flow, stored: frozenset[str]) -> list[str]:
        found = _unstored(self.fields, stored)
        if self.contact not in (None, "@last_transfer") and self.contact not in flow.contacts:
            found.insert(0, f"contact {self.contact!r} is not in contacts")
        return found

    def registers(self) -> str:
        return self.request

    def facts(self, to: str, now: datetime) -> list[dict[str, Any]]:
        return [{"type": "request", "kind": self.request}] if to == self.next else []

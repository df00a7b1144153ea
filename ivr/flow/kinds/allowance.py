"""The `allowance` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from ivr.flow.fields import Name, Names, Shape
from ivr.flow.kinds.base import Builder, Flow, Node, _outside_programme, _unstored


class AllowanceNodeFile(Shape):
    """Spend one use of an allowance and register the request, in one step; or refuse."""

    kind: Literal["allowance"]
    allowance: Name = Field(description="The allowance to spend (see allowances).")
    key: Name = Field(description="The stored value the allowance is counted by.")
    request: Name
    fields: Names = Field(default_factory=list, description="Stored values saved with the request.")
    granted: Name
    used_up: Name


@dataclass(frozen=True, kw_only=True)
class Allowance(Node):
    """Spend one use of an allowance and register the request, in one step; or refuse."""

    kind: ClassVar[str] = "allowance"
    shape: ClassVar[type[Shape]] = AllowanceNodeFile
    mermaid: ClassVar[tuple[str, str]] = ("[(", ")]")
    dot: ClassVar[str] = "cylinder"
    waits: ClassVar[bool] = False

    allowance: str
    key: str  # the stored value the allowance is counted by (the policy number)
    request: str
    fields: tuple[str, ...]
    granted: str
    used_up: str

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Allowance:
        return cls(
            **base,
            allowance=raw.allowance,
            key=raw.key,
            request=raw.request,
            fields=tuple(raw.fields),
            granted=raw.granted,
            used_up=raw.used_up,
        )

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        return [("granted", self.granted), ("used_up", self.used_up), *_outside_programme(flow)]

    def label(self, flow: Flow) -> str:
        rule = flow.allowances.get(self.allowance)
        limit = f" {rule.limit} per {rule.period.replace('_', ' ')}" if rule else ""
        return f"{self.id}: allowance {self.allowance}{limit}"

    def problems(self, flow: Flow, stored: frozenset[str]) -> list[str]:
        found = [] if self.allowance in flow.allowances else [f"allowance {self.allowance!r} is not in allowances"]
        return found + _unstored((self.key, *self.fields), stored)

    def registers(self) -> str:
        return self.request

    def facts(self, to: str, now: datetime) -> list[dict[str, Any]]:
        granted = to == self.granted
        found: list[dict[str, Any]] = [{"type": "allowance", "allowance": self.allowance, "granted": granted}]
        return [*found, {"type": "request", "kind": self.request}] if granted else found

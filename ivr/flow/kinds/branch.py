"""The `branch` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, StrictStr

from ivr.flow.fields import Name, Shape, _on
from ivr.flow.kinds.base import Builder, Flow, Node


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


@dataclass(frozen=True, kw_only=True)
class Branch(Node):
    """Route on a schedule (open/closed), the programme (active/inactive) or a stored value."""

    kind: ClassVar[str] = "branch"
    shape: ClassVar[type[Shape]] = BranchFile
    mermaid: ClassVar[tuple[str, str]] = ("{", "}")
    dot: ClassVar[str] = "diamond"
    waits: ClassVar[bool] = False

    on: str  # "schedule", "programme" or "value"
    subject: str  # schedule name or value name; "" for the programme
    cases: Mapping[str, str]
    default: str | None = None

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Branch:
        what, _, subject = raw.on.partition(":")
        return cls(**base, on=what, subject=subject, cases=MappingProxyType(dict(raw.cases)), default=raw.default)

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        out = [(f"cases.{k}", v) for k, v in self.cases.items()]
        return [*out, ("default", self.default)] if self.default else out

    def label(self, flow: Flow) -> str:
        subject = f" {self.subject}" if self.subject else ""
        return f"{self.id}: {self.on}{subject}?"

    def problems(self, flow: Flow, stored: frozenset[str]) -> list[str]:
        if self.on == "value":
            return [] if self.default else ["a branch on a value needs a `default`"]
        if self.on == "schedule" and self.subject not in flow.schedules:
            return [f"schedule {self.subject!r} is not in schedules"]
        expected = {"open", "closed"} if self.on == "schedule" else {"active", "inactive"}
        allowed = expected | ({"emergency"} if self.on == "schedule" else set())
        found = [
            f"case {case!r} is not one of {', '.join(sorted(allowed))}" for case in sorted(set(self.cases) - allowed)
        ]
        if self.on == "programme" and flow.programme is None:
            found.append("branch on programme, but the flow has no `programme`")
        missing = expected - set(self.cases)
        if missing and not self.default:
            found.append(f"cases {', '.join(sorted(missing))} lead nowhere")
        return found

    def schedule(self) -> str | None:
        return self.subject if self.on == "schedule" else None

    def facts(self, to: str, now: datetime) -> list[dict[str, Any]]:
        if self.on == "schedule" and to in (self.cases.get("closed"), self.cases.get("emergency")):
            return [{"type": "closed", "schedule": self.subject, "at": now.isoformat()}]
        return []

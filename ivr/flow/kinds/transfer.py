"""The `transfer` node kind, declared once: its shape in a flow file (fields, defaults, docs), its
model, how one is built, where it leads and how a diagram shows it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Literal, get_args

from pydantic import Field, StrictBool, StrictStr, model_validator

from ivr.flow.fields import Name, Positive, Said, Shape, Text
from ivr.flow.kinds.base import Builder, Flow, Node

# What a transfer's `outcomes` maps: Twilio's DialCallStatus values, and `otherwise` for the rest.
DialOutcome = Literal["completed", "answered", "busy", "no-answer", "failed", "canceled", "otherwise"]
DIAL_STATUSES: tuple[str, ...] = get_args(DialOutcome)[:-1]


class TransferFile(Shape):
    """Connect the caller to a contact; every dial outcome leads somewhere."""

    kind: Literal["transfer"]
    contact: StrictStr = Field(description="A contact name.")
    say: Text | None = None
    timeout: Positive | None = Field(None, description="Seconds to ring (default settings.dial_timeout).")
    outcomes: dict[DialOutcome, Name] = Field(description="Dial outcomes to nodes; every outcome must lead somewhere.")
    anonymous: StrictBool = Field(False, description="Store and log nothing about this caller.")

    @model_validator(mode="after")
    def _every_outcome(self) -> TransferFile:
        missing = [s for s in DIAL_STATUSES if s != "answered" and s not in self.outcomes]
        if missing and "otherwise" not in self.outcomes:
            raise Said(f"dial outcomes {', '.join(missing)} lead nowhere: add them or `otherwise`", key="outcomes")
        return self


@dataclass(frozen=True, kw_only=True)
class Transfer(Node):
    """Connect the caller to a contact; every dial outcome leads somewhere."""

    kind: ClassVar[str] = "transfer"
    shape: ClassVar[type[Shape]] = TransferFile
    mermaid: ClassVar[tuple[str, str]] = ("([", "])")
    dot: ClassVar[str] = "oval"
    waits: ClassVar[bool] = True
    holds: ClassVar[bool] = True
    ending: ClassVar[str | None] = "transferred"

    contact: str
    say: str
    timeout: int
    outcomes: Mapping[str, str]
    anonymous: bool

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Transfer:
        return cls(
            **base,
            contact=raw.contact,
            say=raw.say or "",
            timeout=raw.timeout or builder.settings.dial_timeout,
            outcomes=MappingProxyType({str(k): v for k, v in raw.outcomes.items()}),
            anonymous=raw.anonymous,
        )

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        return [(f"outcomes.{k}", v) for k, v in self.outcomes.items()]

    def label(self, flow: Flow) -> str:
        contact = flow.contacts.get(self.contact)
        return f"{self.id}: ☎ {self.contact} {contact.target if contact else ''}".rstrip()

    def problems(self, flow: Flow, stored: frozenset[str]) -> list[str]:
        return [] if self.contact in flow.contacts else [f"contact {self.contact!r} is not in contacts"]

    def dials(self) -> str:
        return self.contact

    def dialled(self, outcome: str) -> list[dict[str, Any]]:
        return [{"type": "dial", "contact": self.contact, "outcome": outcome or "failed"}]

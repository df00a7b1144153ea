"""What every node kind has: an id and a line, its shape in a flow file, a model built from that
shape, the nodes it leads to, and how a diagram draws it. Each kind is one module of this package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self

from ivr.flow.fields import FailuresFile, Shape


# What a node reads of the flow it is in (`ivr.flow.model.Flow` has all of it): the kinds stand
# below the model, which is made of them.
class _Settings(Protocol):
    @property
    def operator(self) -> str: ...
    @property
    def main_menu(self) -> str: ...
    @property
    def dial_timeout(self) -> int: ...


class _Programme(Protocol):
    @property
    def inactive(self) -> str: ...


class _Rule(Protocol):
    @property
    def limit(self) -> int: ...
    @property
    def period(self) -> str: ...


class _Contact(Protocol):
    @property
    def target(self) -> str: ...


class Flow(Protocol):
    """The flow a node is in, as far as a node reads it."""

    @property
    def settings(self) -> _Settings: ...
    @property
    def programme(self) -> _Programme | None: ...
    @property
    def allowances(self) -> Mapping[str, _Rule]: ...
    @property
    def contacts(self) -> Mapping[str, _Contact]: ...
    @property
    def schedules(self) -> Mapping[str, object]: ...


@dataclass(frozen=True)
class Failures:
    """How a node handles one kind of failure (wrong input or silence)."""

    limit: int
    fallback: str


class Builder(Protocol):
    """What building a node needs from the flow being loaded."""

    @property
    def settings(self) -> _Settings: ...

    def failures(self, raw: FailuresFile | None, key: str, node: str) -> Failures:
        """A node's handling of wrong input or silence, the flow's settings filling what it leaves out."""


@dataclass(frozen=True, kw_only=True)
class Node:
    """Fields every node has, and what each kind declares about itself."""

    id: str
    line: int

    kind: ClassVar[str]
    shape: ClassVar[type[Shape]]  # the kind's mapping in a flow file
    mermaid: ClassVar[tuple[str, str]]  # the brackets of its box in a Mermaid diagram
    dot: ClassVar[str]  # its Graphviz shape
    waits: ClassVar[bool]  # the call waits here for the caller (or ends): a loop through it is no busy loop
    holds: ClassVar[bool] = False  # a call can be here between two webhooks (a question, a dial)
    ending: ClassVar[str | None] = None  # how a call that was last here ended, for the journal

    @classmethod
    def build(cls, raw: Any, base: dict[str, Any], builder: Builder) -> Self:
        """The node a validated shape of this kind describes (`base`: its id and line)."""
        raise NotImplementedError

    def targets(self, flow: Flow) -> list[tuple[str, str]]:
        """Every (field, node id) this node can lead to, the implicit ones included."""
        raise NotImplementedError

    def label(self, flow: Flow) -> str:
        """What a diagram writes in the node's box."""
        return self.id

    def edge(self, field: str) -> str:
        """What a diagram writes on the arrow of target `field` (one of `targets`)."""
        if field == "next":
            return ""
        if field == "programme.inactive":
            return "outside programme"
        return field.split(".", 1)[1] if "." in field else field

    def failure_rule(self, field: str) -> Failures | None:
        """The wrong-answer or silence rule whose fallback target `field` is, if it is one."""
        rule = getattr(self, field.removesuffix(".fallback"), None) if field.endswith(".fallback") else None
        return rule if isinstance(rule, Failures) else None

    def problems(self, flow: Flow, stored: frozenset[str]) -> list[str]:
        """What is wrong with the node in `flow` that its shape alone does not show (`stored`: the
        names ask nodes store values under)."""
        return []

    def keeps(self) -> str | None:
        """The name of the value the node stores, if it asks for one."""
        return None

    def registers(self) -> str | None:
        """The kind of request the node registers, if it does."""
        return None

    def schedule(self) -> str | None:
        """The schedule the node branches on (its `cases.open` edge is taken only when it is open)."""
        return None

    def dials(self) -> str | None:
        """The contact the node connects the caller to, if it does."""
        return None

    def facts(self, to: str, now: datetime) -> list[dict[str, Any]]:
        """What passing from this node to node `to` tells a report (the journal keeps it)."""
        return []

    def dialled(self, outcome: str) -> list[dict[str, Any]]:
        """What a dial from this node that ended with `outcome` tells a report."""
        return []

    def probes(self, phase: str) -> list[tuple[str, str]] | None:
        """Inputs worth trying while the call waits here, as ("keys" | "say", text), for the crawler
        (None: whatever the call's wait allows)."""
        return None

    def stranded(self, after: Node | None) -> str | None:
        """Why a call waiting here would be lost if the flow changed this node to `after` (None: gone)."""
        if not self.holds:
            return None
        if after is None:
            return f"{self.id} ({self.kind}): gone"
        if after.kind != self.kind:
            return f"{self.id}: a {self.kind}, now a {after.kind}"
        return None


def _outside_programme(flow: Flow) -> list[tuple[str, str]]:
    """Where a node that registers or spends leads outside the programme period."""
    return [("programme.inactive", flow.programme.inactive)] if flow.programme is not None else []


def _unstored(names: tuple[str, ...], stored: frozenset[str]) -> list[str]:
    """A problem for each value a node uses that no ask node stores."""
    return [f"{name!r} is not stored by any ask node" for name in names if name not in stored]

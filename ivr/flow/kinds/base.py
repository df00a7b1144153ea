"""What every node kind has: an id and a line, its shape in a flow file, a model built from that
shape, the nodes it leads to, and how a diagram draws it. Each kind is one module of this package."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self

from ivr.flow.fields import FailuresFile, Shape


# What a node reads of the flow it is in (`ivr.flow.model.Flow` has all of it): the kinds stand
# below the model, which is made of them.
class _Settings(Protocol):
    @property
    def operator(self) -> str: ...
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


def _outside_programme(flow: Flow) -> list[tuple[str, str]]:
    """Where a node that registers or spends leads outside the programme period."""
    return [("programme.inactive", flow.programme.inactive)] if flow.programme is not None else []

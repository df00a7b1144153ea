"""What stepping a call through one node kind means: each kind of `ivr.flow.kinds` has a Step here,
in a module of its own, and the engine's walk asks it what to do at a node of that kind."""

from __future__ import annotations

from typing import ClassVar, Generic, Protocol, TypeVar

from ivr.engine.turns import CallState, EffectOutcome, Input, Pass, Turn, World
from ivr.flow.model import Flow, Node


class Walk(Protocol):
    """The engine walking one call in one turn, as a step sees it."""

    @property
    def flow(self) -> Flow: ...
    @property
    def world(self) -> World: ...
    @property
    def caller(self) -> str:
        """The caller's number as Twilio sends it in From ("" when unknown)."""

    def goto(self, state: CallState, target: str, path: tuple[str, ...], say: tuple[str, ...] = ()) -> Turn:
        """Go on to node `target` afresh (no failures counted, no value pending) and walk from it."""

    def advance(self, state: CallState, say: tuple[str, ...] = (), path: tuple[str, ...] = ()) -> Turn:
        """Walk from `state.node` as it is, up to a node that waits."""

    def render(self, template: str, state: CallState, **extra: str) -> str:
        """A prompt with the call's values (as spoken) and contacts filled in."""


N = TypeVar("N", bound=Node)


class Step(Generic[N]):
    """How the engine steps a call at a node of kind `kind`."""

    kind: ClassVar[type[Node]]

    def enter(self, walk: Walk, node: N, state: CallState, say: tuple[str, ...], path: tuple[str, ...]) -> Turn | Pass:
        """The call arrives at `node` (`say` is what it hears before, `path` ends with the node): a
        Turn that waits, ends or asks for an effect, or a Pass on to the next node."""
        raise NotImplementedError

    def answer(self, walk: Walk, node: N, state: CallState, given: Input) -> Turn:
        """The caller's input at the node the call waits in (by default: walk on from it)."""
        return walk.advance(state)

    def again(self, walk: Walk, node: N, state: CallState) -> Turn:
        """Ask the node's question again, changing nothing (by default: walk on from it)."""
        return walk.advance(state)

    def resume(self, walk: Walk, node: N, turn: Turn, state: CallState, outcome: EffectOutcome) -> Turn:
        """Go on after the effect `turn` asked for was performed with `outcome`."""
        raise ValueError(f"node {node.id!r} has no effect to resume")


def outside_programme(walk: Walk, state: CallState) -> Pass | None:
    """Where a node that registers or spends sends a call outside the programme period, if it is."""
    programme = walk.flow.programme
    if programme is not None and not programme.active(walk.world.now):
        return Pass(state.at(programme.inactive))
    return None

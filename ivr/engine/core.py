"""The flow engine: a pure step function from (flow, call state, caller input, now) to a Turn.

Nothing here touches Flask, the database or the wall clock. Where a node needs the outside
world (registering a request, spending an allowance) the engine returns a Turn whose
`effect` says what to do; the caller performs it and hands the outcome to `resume`. What each
kind of node does is its Step in `ivr.engine.kinds`; this module walks from node to node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ivr.engine import prompts, speech
from ivr.engine.kinds import step_for
from ivr.engine.turns import CallState, Closures, EffectOutcome, Input, Pass, Turn, World
from ivr.flow.model import EMPTY, Flow

_MAX_HOPS = 200  # nodes passed in one turn; validation forbids loops, this guards regardless


# ---------------------------------------------------------------- entry points


def start(flow: Flow, now: datetime, caller: str = "", closures: Closures = EMPTY) -> Turn:
    """The first turn of a new call."""
    return _Walker(flow, World(now, closures), caller).advance(CallState(node=flow.settings.start))


def call_back(
    flow: Flow, line: str, reference: str, last_attempt: bool, machine: bool, now: datetime, closures: Closures = EMPTY
) -> Turn:
    """The first turn of a call the hotline placed to answer call-back request `reference` on `line`:
    the line's outbound start node, or the answering machine's node."""
    callbacks = flow.callbacks
    if callbacks is None:
        return lost(flow, now, "", closures)
    first = callbacks.machine if machine else callbacks.lines.get(line) or callbacks.lines[callbacks.default_line]
    state = CallState(node=first).remember("reference", reference, speech.digits(reference))
    state = state.remember("last_attempt", "yes" if last_attempt else "no")
    return _Walker(flow, World(now, closures), "").advance(state)


def lost(flow: Flow, now: datetime, caller: str = "", closures: Closures = EMPTY) -> Turn:
    """A call the server has no state for: apologise and offer the main menu."""
    walker = _Walker(flow, World(now, closures), caller)
    return walker.advance(CallState(node=flow.settings.main_menu), (flow.text("lost_call"),))


def repeat(flow: Flow, state: CallState, now: datetime, caller: str = "", closures: Closures = EMPTY) -> Turn:
    """Ask the current question again, changing nothing (a stale or out-of-order webhook)."""
    if state.node not in flow.nodes:
        return lost(flow, now, caller, closures)
    node = flow.nodes[state.node]
    return step_for(node).again(_Walker(flow, World(now, closures), caller), node, state)


def step(flow: Flow, state: CallState, given: Input, now: datetime, closures: Closures = EMPTY) -> Turn:
    """React to the caller's input at the node the call waits in."""
    if state.node not in flow.nodes:
        return lost(flow, now, given.caller, closures)
    node = flow.nodes[state.node]
    return step_for(node).answer(_Walker(flow, World(now, closures), given.caller), node, state, given)


def resume(
    flow: Flow, turn: Turn, outcome: EffectOutcome, now: datetime, caller: str = "", closures: Closures = EMPTY
) -> Turn:
    """Go on after the effect of `turn` was performed with `outcome`."""
    node = flow.nodes[turn.state.node]
    state = turn.state
    if outcome.reference is not None:
        state = state.remember("reference", outcome.reference, speech.digits(outcome.reference))
    return step_for(node).resume(_Walker(flow, World(now, closures), caller), node, turn, state, outcome)


# ---------------------------------------------------------------- walking


@dataclass(frozen=True)
class _Walker:
    """One turn's walk through the flow (`ivr.engine.kinds.Walk`)."""

    flow: Flow
    world: World
    caller: str

    def goto(self, state: CallState, target: str, path: tuple[str, ...], say: tuple[str, ...] = ()) -> Turn:
        return self.advance(state.at(target, phase="entry", invalid=0, silence=0, pending=""), say, path)

    def advance(self, state: CallState, say: tuple[str, ...] = (), path: tuple[str, ...] = ()) -> Turn:
        """Walk from state.node through nodes that need no caller input, up to one that does."""
        for _ in range(_MAX_HOPS):
            node = self.flow.nodes[state.node]
            path = (*path, node.id)
            got = step_for(node).enter(self, node, state, say, path)
            if not isinstance(got, Pass):
                return got
            state, say = got.state, (*say, *got.say)
        raise RuntimeError(f"more than {_MAX_HOPS} nodes without waiting for the caller: {' -> '.join(path[-8:])}")

    def render(self, template: str, state: CallState, **extra: str) -> str:
        contacts = {name: c.target for name, c in self.flow.contacts.items()}
        return prompts.render(template, {**state.spoken, **extra}, contacts)

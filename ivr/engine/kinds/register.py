"""Stepping a `register`: ask the engine's caller to register a request (an effect), then go on
with its reference; outside the programme period, go where the programme says instead."""

from __future__ import annotations

from types import MappingProxyType

from ivr.engine.kinds.base import Step, Walk, outside_programme
from ivr.engine.turns import CallState, EffectOutcome, Pass, RequestEffect, Turn
from ivr.flow.model import Allowance, Register, Transfer


def request(walk: Walk, node: Register | Allowance, state: CallState) -> RequestEffect:
    """The request a node registers: its fields' values, and the line it is for."""
    data = {name: state.values.get(name, "") for name in node.fields}
    if isinstance(node, Register) and node.contact:
        contact = node.contact
        if contact == "@last_transfer":
            last = walk.flow.nodes.get(state.values.get("last_transfer", ""))
            contact = last.contact if isinstance(last, Transfer) else walk.flow.settings.operator
        data["contact"] = contact
    return RequestEffect(kind=node.request, data=MappingProxyType(data))


class RegisterStep(Step[Register]):
    kind = Register

    def enter(
        self, walk: Walk, node: Register, state: CallState, say: tuple[str, ...], path: tuple[str, ...]
    ) -> Turn | Pass:
        return outside_programme(walk, state) or Turn(state, say, None, request(walk, node, state), path)

    def resume(self, walk: Walk, node: Register, turn: Turn, state: CallState, outcome: EffectOutcome) -> Turn:
        return walk.goto(state, node.next, turn.path, turn.say)

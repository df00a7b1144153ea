"""Stepping a `transfer`: dial the contact, then follow the dial's outcome."""

from __future__ import annotations

from dataclasses import replace

from ivr.engine.kinds.base import Step, Walk
from ivr.engine.turns import CallState, Dial, Input, Turn
from ivr.flow.model import Transfer


class TransferStep(Step[Transfer]):
    kind = Transfer

    def enter(self, walk: Walk, node: Transfer, state: CallState, say: tuple[str, ...], path: tuple[str, ...]) -> Turn:
        state = replace(state.remember("last_transfer", node.id), anonymous=state.anonymous or node.anonymous)
        if node.say:
            say = (*say, walk.render(node.say, state))
        return Turn(state, say, Dial(walk.flow.contacts[node.contact].target, node.timeout), None, path)

    def answer(self, walk: Walk, node: Transfer, state: CallState, given: Input) -> Turn:
        status = given.text if given.kind == "dial" else ""
        if status == "answered":
            status = "completed"
        target = node.outcomes.get(status) or node.outcomes.get("otherwise") or node.outcomes["failed"]
        return walk.goto(state, target, (node.id,))

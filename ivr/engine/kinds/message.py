"""Stepping a `message`: say it and go on."""

from __future__ import annotations

from ivr.engine.kinds.base import Step, Walk
from ivr.engine.turns import CallState, Pass
from ivr.flow.model import Message


class MessageStep(Step[Message]):
    kind = Message

    def enter(self, walk: Walk, node: Message, state: CallState, say: tuple[str, ...], path: tuple[str, ...]) -> Pass:
        return Pass(state.at(node.next), (walk.render(node.say, state),))

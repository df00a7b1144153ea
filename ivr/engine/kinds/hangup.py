"""Stepping a `hangup`: say goodbye and end the call."""

from __future__ import annotations

from ivr.engine.kinds.base import Step, Walk
from ivr.engine.turns import CallState, End, Turn
from ivr.flow.model import Hangup


class HangupStep(Step[Hangup]):
    kind = Hangup

    def enter(self, walk: Walk, node: Hangup, state: CallState, say: tuple[str, ...], path: tuple[str, ...]) -> Turn:
        return Turn(state, (*say, walk.render(node.say, state)), End(), None, path)

"""Wrong answers and silences at a node that waits for the caller (a menu or a question): count
them, say why, prompt again (shorter after the first), or give up to the node's fallback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Literal, Protocol

from ivr.engine import speech
from ivr.engine.kinds.base import Walk
from ivr.engine.turns import CallState, Turn
from ivr.flow.model import Failures

Failure = Literal["invalid", "silence"]
# Prompts again: (state with the failure counted, what to say first, the failure, a later attempt).
Reprompt = Callable[[CallState, tuple[str, ...], Failure, bool], Turn]


class Retrying(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def invalid(self) -> Failures: ...
    @property
    def no_input(self) -> Failures: ...


def failure(
    walk: Walk, node: Retrying, state: CallState, what: Failure, reprompt: Reprompt, rejected: str = ""
) -> Turn:
    """Count a wrong answer or a silence; prompt again or fall back.

    `rejected` digits that were not acceptable are read back, so the caller hears what went wrong.
    """
    flow = walk.flow
    invalid = state.invalid + (what == "invalid")
    silence = state.silence + (what == "silence")
    rule = node.invalid if what == "invalid" else node.no_input
    count = invalid if what == "invalid" else silence
    notice = flow.text("not_recognised" if what == "invalid" else "no_input")
    if count >= rule.limit or invalid + silence >= flow.settings.attempts:
        turn = walk.goto(state, rule.fallback, (node.id,))
        if rule.fallback != flow.settings.operator:
            return turn
        # One announcement of the operator: the operator's own words when it has them (then the
        # caller hears why first), else the standard phrase.
        lead = (notice,) if turn.say else (flow.text("to_fallback"),)
        return replace(turn, say=(*lead, *turn.say))
    state = replace(state, invalid=invalid, silence=silence)
    if rejected:
        notice = walk.render(flow.text("rejected_digits"), state, value=speech.digits(rejected))
    return reprompt(state, (notice,), what, invalid + silence > 1)

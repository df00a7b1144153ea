"""Stepping an `ask`: gather typed digits, speech or the caller's own number, read it back for a
yes or no when the node confirms, and store it under the node's name."""

from __future__ import annotations

from dataclasses import replace

from ivr.engine import speech
from ivr.engine.kinds.base import Step, Walk
from ivr.engine.kinds.failures import Failure, failure
from ivr.engine.turns import CallState, Gather, Input, Turn
from ivr.engine.understand import normalise_phone, usable_caller, yes_no
from ivr.flow.model import Ask

_CONFIRM = {"digits": "confirm_digits", "speech": "confirm_speech", "caller_number": "confirm_phone"}


def _spoken(node: Ask, value: str) -> str:
    if node.input == "caller_number":
        return speech.phone(value)
    if node.input == "digits":
        return speech.digits(value)
    return value


def _prompt(
    walk: Walk, node: Ask, state: CallState, say: tuple[str, ...], path: tuple[str, ...], retry: bool = False
) -> Turn:
    timeout = node.timeout or walk.flow.settings.gather_timeout
    if state.phase == "confirm":
        text = walk.render(walk.flow.text(_CONFIRM[node.input]), state, value=_spoken(node, state.pending))
        gather = Gather((text,), "dtmf speech", timeout, num_digits=1, hints=("да", "нет"))
    elif node.input == "speech":
        text = walk.render(node.retry if retry else node.prompt, state)
        gather = Gather((text,), "speech", timeout, hints=node.hints)
    else:
        text = walk.render(node.retry if retry else node.prompt, state)
        gather = Gather((text,), "dtmf", timeout, finish_on_key=node.finish_on_key)
    return Turn(state, say, gather, None, path)


def _value(node: Ask, given: Input) -> str | None:
    """The value the caller gave, cleaned, or None when it is not acceptable."""
    if node.input == "speech":
        text = " ".join(given.text.split()) if given.kind == "speech" else ""
        return text[:200] if text else None
    if given.kind != "digits":
        return None
    digits = given.text.rstrip(node.finish_on_key) if node.finish_on_key else given.text
    if not digits.isdigit() or not node.min_length <= len(digits) <= node.max_length:
        return None
    return normalise_phone(digits) if node.input == "caller_number" else digits


class AskStep(Step[Ask]):
    kind = Ask

    def enter(self, walk: Walk, node: Ask, state: CallState, say: tuple[str, ...], path: tuple[str, ...]) -> Turn:
        if node.input == "caller_number" and state.phase == "entry" and not state.pending:
            number = usable_caller(walk.caller)
            if number:
                state = replace(state, phase="confirm", pending=number)
        return _prompt(walk, node, state, say, path)

    def again(self, walk: Walk, node: Ask, state: CallState) -> Turn:
        return _prompt(walk, node, state, (), ())

    def answer(self, walk: Walk, node: Ask, state: CallState, given: Input) -> Turn:
        def reprompt(counted: CallState, say: tuple[str, ...], what: Failure, later: bool) -> Turn:
            return _prompt(walk, node, counted, say, (node.id,), retry=what == "invalid" or later)

        if given.kind == "silence":
            return failure(walk, node, state, "silence", reprompt)
        if state.phase == "confirm":
            answer = yes_no(given.kind, given.text)
            if answer is None:
                return failure(walk, node, state, "invalid", reprompt)
            if answer:
                stored = state.remember(node.store, state.pending, _spoken(node, state.pending))
                return walk.goto(stored, node.next, (node.id,))
            again = replace(state, phase="entry", pending="", invalid=0, silence=0)
            return _prompt(walk, node, again, (), (node.id,))
        value = _value(node, given)
        if value is None:
            typed = "".join(ch for ch in given.text if ch.isdigit())[:32] if given.kind == "digits" else ""
            return failure(walk, node, state, "invalid", reprompt, rejected=typed)
        if node.confirm:
            confirming = replace(state, phase="confirm", pending=value, invalid=0, silence=0)
            return _prompt(walk, node, confirming, (), (node.id,))
        return walk.goto(state.remember(node.store, value, _spoken(node, value)), node.next, (node.id,))

"""Stepping a `menu`: say the prompt and gather one key or a keyword; `*` repeats it, `0` reaches
the operator, anything else counts as a wrong answer."""

from __future__ import annotations

from ivr.engine.kinds.base import Step, Walk
from ivr.engine.kinds.failures import Failure, failure
from ivr.engine.turns import CallState, Gather, Input, Turn
from ivr.engine.understand import match_speech
from ivr.flow.model import Menu


def _prompt(walk: Walk, node: Menu, state: CallState, say: tuple[str, ...], path: tuple[str, ...], short: bool) -> Turn:
    text = walk.render(node.reprompt if short else node.prompt, state)
    gather = Gather(
        prompt=(text,),
        input="dtmf speech" if node.speech else "dtmf",
        timeout=walk.flow.settings.gather_timeout,
        num_digits=1,
        hints=tuple(w for o in node.options for w in o.keywords),
    )
    return Turn(state, say, gather, None, path)


class MenuStep(Step[Menu]):
    kind = Menu

    def enter(self, walk: Walk, node: Menu, state: CallState, say: tuple[str, ...], path: tuple[str, ...]) -> Turn:
        return _prompt(walk, node, state, say, path, short=False)

    def again(self, walk: Walk, node: Menu, state: CallState) -> Turn:
        return _prompt(walk, node, state, (), (), short=False)

    def answer(self, walk: Walk, node: Menu, state: CallState, given: Input) -> Turn:
        def reprompt(counted: CallState, say: tuple[str, ...], what: Failure, later: bool) -> Turn:
            return _prompt(walk, node, counted, say, (node.id,), short=later)

        if given.kind == "silence":
            return failure(walk, node, state, "silence", reprompt)
        if given.kind == "digits":
            key: str | None = given.text[:1]
        elif given.kind == "speech":
            key = match_speech(node, given.text)
        else:
            key = None
        if key == "*":
            return _prompt(walk, node, state, (), (node.id,), short=False)
        option = node.option(key) if key else None
        if option is not None:
            return walk.goto(state, option.to, (node.id,))
        if key == "0" and walk.flow.settings.operator:
            return walk.goto(state, walk.flow.settings.operator, (node.id,))
        return failure(walk, node, state, "invalid", reprompt)

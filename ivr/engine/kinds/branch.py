"""Stepping a `branch`: pick a case by a schedule (open, closed, or closed by an operator), the
programme period, or a stored value. A closed schedule leaves its next opening for the prompts."""

from __future__ import annotations

from ivr.engine import speech
from ivr.engine.kinds.base import Step, Walk
from ivr.engine.turns import CallState, Pass
from ivr.flow.model import Branch


def _case(walk: Walk, node: Branch, state: CallState) -> str:
    flow, world = walk.flow, walk.world
    if node.on == "schedule":
        emergency = world.closures.get(node.subject)
        if emergency is not None and "emergency" in node.cases:
            return node.cases["emergency"]
        case = "open" if flow.schedules[node.subject].is_open(world.now, emergency) else "closed"
    elif node.on == "programme":
        case = "active" if flow.programme is not None and flow.programme.active(world.now) else "inactive"
    else:
        case = state.values.get(node.subject, "")
    target = node.cases.get(case) or node.default
    assert target is not None, "validation guarantees a case or a default"
    return target


def _next_opening(walk: Walk, node: Branch, state: CallState) -> CallState:
    schedule = walk.flow.schedules[node.subject]
    opening = schedule.next_opening(walk.world.now)
    if opening is None:
        return state.remember("next_opening", "")
    return state.remember("next_opening", speech.moment(opening, walk.world.now.astimezone(schedule.zone)))


class BranchStep(Step[Branch]):
    kind = Branch

    def enter(self, walk: Walk, node: Branch, state: CallState, say: tuple[str, ...], path: tuple[str, ...]) -> Pass:
        state = state.at(_case(walk, node, state))
        if node.on == "schedule" and state.node == node.cases.get("closed"):
            state = _next_opening(walk, node, state)
        return Pass(state)

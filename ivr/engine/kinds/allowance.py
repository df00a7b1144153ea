"""Stepping an `allowance`: ask to spend one use for the caller's key in the current period and
register the request in the same step; refused, the caller hears when it was used and when the
next period starts."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from ivr.engine import speech
from ivr.engine.kinds.base import Step, Walk, outside_programme
from ivr.engine.kinds.register import request
from ivr.engine.turns import CallState, EffectOutcome, Pass, SpendEffect, Turn
from ivr.flow.model import Allowance


class AllowanceStep(Step[Allowance]):
    kind = Allowance

    def enter(
        self, walk: Walk, node: Allowance, state: CallState, say: tuple[str, ...], path: tuple[str, ...]
    ) -> Turn | Pass:
        skipped = outside_programme(walk, state)
        if skipped is not None:
            return skipped
        rule = walk.flow.allowances[node.allowance]
        start, end = rule.period_at(walk.world.now)
        spend = SpendEffect(
            rule.name, rule.limit, state.values.get(node.key, ""), start, end, request(walk, node, state)
        )
        return Turn(state, say, None, spend, path)

    def resume(self, walk: Walk, node: Allowance, turn: Turn, state: CallState, outcome: EffectOutcome) -> Turn:
        if outcome.granted:
            return walk.goto(state, node.granted, turn.path, turn.say)
        zone = ZoneInfo(walk.flow.allowances[node.allowance].timezone)
        period_end = turn.effect.period_end if isinstance(turn.effect, SpendEffect) else walk.world.now
        used = speech.full_date(outcome.used_at.astimezone(zone).date()) if outcome.used_at else ""
        state = state.remember("used_on", used).remember(
            "next_period", speech.full_date(period_end.astimezone(zone).date())
        )
        return walk.goto(state, node.used_up, turn.path, turn.say)

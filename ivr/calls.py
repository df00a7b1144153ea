"""One webhook of one call: load state, run the engine, perform effects, save, answer TwiML.

A webhook Twilio retries (same CallSid, same step) gets the TwiML stored the first time and
changes nothing; a webhook for an old or unexpected step hears the current question again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from . import allowance, engine, journal, requests, twiml
from .engine import CallState, Input, SpendEffect, Turn
from .model import Flow
from .store import Store

UrlFor = Callable[[int, str], str]
MAX_STEPS = 500  # webhooks in one call; beyond that the call is ended politely


@dataclass(frozen=True)
class Answer:
    """The TwiML for a webhook, where the call now waits, and what kind of answer it was."""

    twiml: str
    node: str
    outcome: str  # new, step, replay, stale, lost, too-long
    anonymous: bool = False
    path: tuple[str, ...] = ()  # the nodes this webhook went through, the waiting one last


class CallHandler:
    """Serves the webhooks of every call of one flow against one store."""

    def __init__(self, flow: Flow, store: Store, max_steps: int = MAX_STEPS) -> None:
        self.flow = flow
        self.store = store
        self.max_steps = max_steps

    def handle(
        self, call_sid: str, step: int, node: str | None, given: Input, now: datetime, url_for: UrlFor
    ) -> Answer:
        """The answer to webhook `step` of a call; raises only when the store fails."""
        try:
            return self._handle_once(call_sid, step, node, given, now, url_for)
        except IntegrityError:
            # A twin of this webhook (a retry racing the original) committed first: answer as it did.
            return self._handle_once(call_sid, step, node, given, now, url_for)

    def _handle_once(
        self, call_sid: str, step: int, node: str | None, given: Input, now: datetime, url_for: UrlFor
    ) -> Answer:
        with self.store.begin() as conn:
            saved = self.store.load_call(conn, call_sid)
            if saved is not None and step <= saved.step:
                cached = self.store.cached_turn(conn, call_sid, step)
                if cached is not None:
                    state = CallState.from_json(saved.state)
                    return Answer(cached, node or "", "replay", state.anonymous)
            if step > self.max_steps:
                return Answer(twiml.goodbye(self.flow.settings, self.flow.text("too_long")), "", "too-long")
            closures = self.store.closures(conn) if self.flow.schedules else {}
            before: CallState | None = None
            if saved is None:
                outcome = "new" if step == 0 else "lost"
                begin = engine.start if step == 0 else engine.lost
                turn = begin(self.flow, now, given.caller, closures)
            else:
                state = before = CallState.from_json(saved.state)
                if step != saved.step + 1 or node != state.node:
                    stale = engine.repeat(self.flow, state, now, given.caller, closures)
                    xml = twiml.render(stale, self.flow.settings, url_for(saved.step + 1, stale.state.node))
                    return Answer(xml, stale.state.node, "stale", state.anonymous, (stale.state.node,))
                outcome = "step"
                turn = engine.step(self.flow, state, given, now, closures)
            turn = self._perform(conn, call_sid, turn, now, given.caller, closures)
            xml = twiml.render(turn, self.flow.settings, url_for(step + 1, turn.state.node))
            self.store.save_turn(conn, call_sid, step, turn.state.to_json(), xml, now, new=saved is None)
            journal.record(conn, self.flow, call_sid, before, given, turn, now)
            return Answer(xml, turn.state.node, outcome, turn.state.anonymous, turn.path)

    def _perform(
        self, conn: Connection, call_sid: str, turn: Turn, now: datetime, caller: str, closures: engine.Closures
    ) -> Turn:
        while turn.effect is not None:
            effect = turn.effect
            if isinstance(effect, SpendEffect):
                outcome = allowance.spend(conn, call_sid, effect, now)
            else:
                outcome = engine.EffectOutcome(True, requests.register(conn, call_sid, effect, now))
            turn = engine.resume(self.flow, turn, outcome, now, caller, closures)
        return turn

    def finish(self, call_sid: str, status: str, duration: int | None, now: datetime) -> None:
        """Twilio says the call is over: close its journal row and forget its state."""
        with self.store.begin() as conn:
            journal.finish(conn, self.flow, call_sid, status, duration, now)
            self.store.forget_call(conn, call_sid)

    def emergency(self, url: str) -> str:
        """TwiML for a call that cannot be served: apology, then the operator's contact."""
        settings = self.flow.settings
        contact = operator_contact(self.flow)
        return twiml.emergency(settings, self.flow.text("technical_failure"), contact, url)

    def after_emergency(self) -> str:
        return twiml.goodbye(self.flow.settings, self.flow.text("goodbye_after_failure"))


def operator_contact(flow: Flow) -> str:
    """The number the operator node dials (or the first contact), for when nothing else works."""
    operator = flow.nodes.get(flow.settings.operator)
    name = str(getattr(operator, "contact", ""))
    if name in flow.contacts:
        return flow.contacts[name].target
    return next(iter(flow.contacts.values())).target

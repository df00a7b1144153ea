"""One webhook of one call: load state, run the engine, perform effects, save, answer TwiML.

A webhook Twilio retries (same CallSid, same step) gets the TwiML stored the first time and
changes nothing; a webhook for an old or unexpected step hears the current question again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from . import allowance, clock, engine, journal, requests, twiml
from .engine import CallState, Input, SpendEffect, Turn
from .model import Flow
from .store import SavedCall, Store, forget_call

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


class _Conflict(Exception):
    """Another webhook of the call changed it after it was read: roll back and answer again."""


class _Closures(Mapping[str, str]):
    """Emergency closures, read from the store only if a schedule branch asks (most webhooks do not)."""

    def __init__(self, store: Store, conn: Connection) -> None:
        self.store, self.conn = store, conn
        self.loaded: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self.loaded is None:
            self.loaded = self.store.closures(self.conn)
        return self.loaded

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


class CallHandler:
    """Serves the webhooks of every call of one flow against one store."""

    def __init__(self, flow: Flow, store: Store, max_steps: int = MAX_STEPS) -> None:
        self.flow = flow
        self.store = store
        self.max_steps = max_steps

    def handle(
        self, call_sid: str, step: int, node: str | None, given: Input, now: datetime, url_for: UrlFor
    ) -> Answer:
        """The answer to webhook `step` of a call; raises only when the store fails.

        Most webhooks read the call without waiting for any writer, think, and then write in one
        short transaction that checks nobody changed the call meanwhile. A webhook with an effect
        (a request to register, an allowance to spend), or one that lost such a race, does it all
        inside one write transaction instead.
        """
        for locked in (False, True, True):
            try:
                answer = self._attempt(call_sid, step, node, given, now, url_for, locked)
            except (IntegrityError, _Conflict):
                # A twin of this webhook (a retry racing the original), or another webhook of the call,
                # committed first; this transaction was rolled back whole: answer again from what it wrote.
                continue
            if answer is not None:
                return answer
        return self._attempt(call_sid, step, node, given, now, url_for, True) or self._lost(url_for, step)

    def _lost(self, url_for: UrlFor, step: int) -> Answer:
        turn = engine.lost(self.flow, clock.now())
        return Answer(
            twiml.render(turn, self.flow.settings, url_for(step + 1, turn.state.node)), turn.state.node, "lost"
        )

    def _attempt(
        self, call_sid: str, step: int, node: str | None, given: Input, now: datetime, url_for: UrlFor, locked: bool
    ) -> Answer | None:
        with self.store.connection() as conn:
            return self._attempt_on(conn, call_sid, step, node, given, now, url_for, locked)

    def _attempt_on(
        self,
        conn: Connection,
        call_sid: str,
        step: int,
        node: str | None,
        given: Input,
        now: datetime,
        url_for: UrlFor,
        locked: bool,
    ) -> Answer | None:
        with self.store.writing(conn) if locked else self.store.reading(conn):
            saved = self.store.load_call(conn, call_sid)
            before = CallState.from_json(saved.state) if saved is not None else None
            if saved is not None and step <= saved.step:
                cached = self.store.cached_turn(conn, call_sid, step)
                if cached is not None:
                    return Answer(cached, node or "", "replay", before.anonymous if before else False)
            if step > self.max_steps:
                return Answer(twiml.goodbye(self.flow.settings, self.flow.text("too_long")), "", "too-long")
            closures = _Closures(self.store, conn) if self.flow.schedules else {}
            if before is None:
                outcome = "new" if step == 0 else "lost"
                begin = engine.start if step == 0 else engine.lost
                turn = begin(self.flow, now, given.caller, closures)
            elif step != saved.step + 1 or node != before.node:  # type: ignore[union-attr]
                stale = engine.repeat(self.flow, before, now, given.caller, closures)
                xml = twiml.render(stale, self.flow.settings, url_for(saved.step + 1, stale.state.node))  # type: ignore[union-attr]
                return Answer(xml, stale.state.node, "stale", before.anonymous, (stale.state.node,))
            else:
                outcome = "step"
                turn = engine.step(self.flow, before, given, now, closures)
            if turn.effect is not None and not locked:
                return None  # effects are performed inside a write transaction
            if locked:
                turn = self._perform(conn, call_sid, turn, now, given.caller, closures)
                return self._commit(conn, call_sid, step, saved, before, given, turn, outcome, now, url_for)
        with self.store.writing(conn):
            return self._commit(conn, call_sid, step, saved, before, given, turn, outcome, now, url_for)

    def _commit(
        self,
        conn: Connection,
        call_sid: str,
        step: int,
        saved: SavedCall | None,
        before: CallState | None,
        given: Input,
        turn: Turn,
        outcome: str,
        now: datetime,
        url_for: UrlFor,
    ) -> Answer:
        xml = twiml.render(turn, self.flow.settings, url_for(step + 1, turn.state.node))
        path, facts = journal.extend(self.flow, saved, before, given, turn, now)
        new_state = SavedCall(step, turn.state.to_json(), path, facts)
        if not self.store.save_turn(conn, call_sid, step, saved, new_state, xml, now):
            raise _Conflict(call_sid)  # rolls back whatever this transaction did, effects included
        if saved is None:
            journal.start(conn, call_sid, now)
        if turn.state.anonymous and not (before is not None and before.anonymous):
            journal.anonymize(conn, call_sid, now)
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
            forget_call(conn, call_sid)

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

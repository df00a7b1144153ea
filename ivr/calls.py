"""One webhook of one call: open the sealed state, run the engine, perform effects, append, answer.

The call's state travels in the action URL, sealed (`seal.py`) and bound to the CallSid, the step
and the node, so a webhook reads nothing from the database. It appends one event to the journal;
a webhook with an effect (a request to register, an allowance to spend) performs it in one
transaction with its answer, keyed by (CallSid, step): a retry of it, or Twilio's fallback URL,
repeats the same answer and spends nothing twice. A broken or foreign seal is a lost call: an
apology and the main menu.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, quote, urlsplit

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from . import allowance, engine, journal, prompts, requests, studio, twiml
from .engine import CallState, Input, SpendEffect, Turn
from .model import Flow
from .seal import KeyRing
from .store import Event, Store, forget_call

MAX_STEPS = 500  # webhooks in one call; beyond that the call is ended politely
STEP_PATH = "/voice/step"  # action URLs: {root}/voice/step/{step}/{node}?s={sealed state}


@dataclass(frozen=True)
class Webhook:
    """One request of Twilio's about a call: which call, which step, the sealed state it carries,
    what the caller did and when; `root` is where the app is mounted (action URLs start there)."""

    call_sid: str
    step: int
    node: str | None  # None for the entry webhook
    seal: str
    given: Input
    now: datetime
    root: str = ""
    media: str = ""  # the absolute URL recorded prompts are played from (Twilio needs it absolute)


@dataclass(frozen=True)
class Answer:
    """The TwiML for a webhook, where the call now waits, and what kind of answer it was."""

    twiml: str
    node: str
    outcome: str  # new, step, replay, lost, too-long
    anonymous: bool = False
    path: tuple[str, ...] = ()  # the nodes this webhook went through, the waiting one last


class _Closures(Mapping[str, str]):
    """Emergency closures, read from the store only if a schedule branch asks (most webhooks do not)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.loaded: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self.loaded is None:
            self.loaded = self.store.closures()
        return self.loaded

    def __getitem__(self, key: str) -> str:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _bound_to(call_sid: str, step: int, node: str) -> bytes:
    return f"{call_sid}\x00{step}\x00{node}".encode()


class CallHandler:
    """Serves the webhooks of every call of one flow against one store, with one key ring."""

    def __init__(
        self,
        flow: Flow,
        store: Store,
        keys: KeyRing,
        max_steps: int = MAX_STEPS,
        recordings: studio.Recordings | None = None,
    ) -> None:
        self.flow = flow
        self.store = store
        self.keys = keys
        self.max_steps = max_steps
        self.recordings = recordings if recordings else None
        self.renderer = twiml.Renderer(flow.settings, self.recordings)

    # ------------------------------------------------------------ sealed state in action URLs

    def action_url(self, root: str, call_sid: str, step: int, state: CallState) -> str:
        """Where the call's next webhook goes, carrying its state sealed for that very step."""
        seal = self.keys.seal(state.pack(), _bound_to(call_sid, step, state.node))
        return f"{root}{STEP_PATH}/{step}/{quote(state.node, safe='')}?s={seal}"

    def state_of(self, call_sid: str, step: int, node: str, seal: str) -> CallState | None:
        """The state a seal carries, or None when it is broken, forged or not this call's step."""
        plain = self.keys.open(seal, _bound_to(call_sid, step, node))
        if plain is None:
            return None
        try:
            state = CallState.unpack(plain)
        except (ValueError, KeyError, TypeError):
            return None
        return state if state.node == node else None

    def state_at(self, url: str, call_sid: str) -> tuple[int, CallState] | None:
        """The step and state an action URL of ours carries for `call_sid` (the crawler looks so)."""
        parts = urlsplit(url)
        rest = parts.path.partition(STEP_PATH + "/")[2]
        step, _, node = rest.partition("/")
        seal = parse_qs(parts.query).get("s", [""])[0]
        if not step.isdecimal():
            return None
        state = self.state_of(call_sid, int(step), node, seal)
        return (int(step), state) if state is not None else None

    def reseal(self, url: str, call_sid: str, twin_sid: str) -> str:
        """The same action URL for a twin of the call under another CallSid (the crawler forks so)."""
        found = self.state_at(url, call_sid)
        if found is None:
            return url
        root = urlsplit(url).path.partition(STEP_PATH + "/")[0]
        return self.action_url(root, twin_sid, found[0], found[1])

    # ------------------------------------------------------------ answering

    def handle(self, hook: Webhook) -> Answer:
        """The answer to one webhook; raises only when the store fails."""
        if hook.step > self.max_steps:
            goodbye = self._goodbye("too_long", hook.media)
            return Answer(goodbye, "", "too-long")
        closures = _Closures(self.store) if self.flow.schedules else {}
        caller = hook.given.caller
        before: CallState | None = None
        if hook.node is None:
            outcome, turn = "new", engine.start(self.flow, hook.now, caller, closures)
        else:
            before = self.state_of(hook.call_sid, hook.step, hook.node, hook.seal)
            if before is None:
                outcome, turn = "lost", engine.lost(self.flow, hook.now, caller, closures)
            else:
                outcome, turn = "step", engine.step(self.flow, before, hook.given, hook.now, closures)
        if turn.effect is not None:
            return self._with_effect(hook, before, turn, outcome, closures)
        xml = self._render(hook, turn)
        event = journal.event(self.flow, hook.call_sid, hook.step, before, hook.given, turn, hook.now)
        if not event.anonymous:
            self.store.append(event)
        elif before is None or not before.anonymous:
            with self.store.begin() as conn:
                self._anonymize(conn, event)
        return Answer(xml, turn.state.node, outcome, turn.state.anonymous, turn.path)

    def _render(self, hook: Webhook, turn: Turn) -> str:
        url = self.action_url(hook.root, hook.call_sid, hook.step + 1, turn.state)
        return self.renderer.render(turn, url, hook.media)

    def _goodbye(self, text: str, media: str) -> str:
        phrase = prompts.render(self.flow.text(text), {}, {})
        return twiml.goodbye(self.flow.settings, phrase, self.recordings, media)

    def _anonymize(self, conn: Connection, event: Event) -> None:
        # What the call appended before it turned anonymous goes; one row keeps its step and hour.
        forget_call(conn, event.call_sid)
        self.store.append_in(conn, event)

    def _with_effect(
        self, hook: Webhook, before: CallState | None, turn: Turn, outcome: str, closures: engine.Closures
    ) -> Answer:
        """Perform the turn's effects, keep the answer and append the event, all in one transaction."""
        for _ in range(3):
            try:
                with self.store.begin() as conn:
                    stored = self.store.turn(conn, hook.call_sid, hook.step)
                    if stored is not None:
                        return Answer(stored, hook.node or "", "replay", turn.state.anonymous)
                    done = self._perform(conn, hook, turn, closures)
                    xml = self._render(hook, done)
                    self.store.save_turn(conn, hook.call_sid, hook.step, xml, hook.now)
                    event = journal.event(self.flow, hook.call_sid, hook.step, before, hook.given, done, hook.now)
                    if event.anonymous:
                        self._anonymize(conn, event)
                    else:
                        self.store.append_in(conn, event)
                    return Answer(xml, done.state.node, outcome, done.state.anonymous, done.path)
            except IntegrityError:
                # A twin of this webhook (a retry racing the original), or another call spending the
                # same allowance, committed first; this transaction was rolled back whole: try again.
                continue
        raise RuntimeError(f"step {hook.step} of a call kept conflicting with its twins")

    def _perform(self, conn: Connection, hook: Webhook, turn: Turn, closures: engine.Closures) -> Turn:
        while turn.effect is not None:
            effect = turn.effect
            if isinstance(effect, SpendEffect):
                outcome = allowance.spend(conn, hook.call_sid, effect, hook.now)
            else:
                outcome = engine.EffectOutcome(True, requests.register(conn, hook.call_sid, effect, hook.now))
            turn = engine.resume(self.flow, turn, outcome, hook.now, hook.given.caller, closures)
        return turn

    def finish(self, call_sid: str, status: str, duration: int | None, now: datetime) -> None:
        """Twilio says the call is over: fold its events into the journal and forget them."""
        journal.finish(self.store, self.flow, call_sid, status, duration, now)

    def emergency(self, url: str) -> str:
        """TwiML for a call that cannot be served: apology, then the operator's contact."""
        settings = self.flow.settings
        contact = operator_contact(self.flow)
        return twiml.emergency(settings, self.flow.text("technical_failure"), contact, url)

    def after_emergency(self, media: str = "") -> str:
        return self._goodbye("goodbye_after_failure", media)


def operator_contact(flow: Flow) -> str:
    """The number the operator node dials (or the first contact), for when nothing else works."""
    operator = flow.nodes.get(flow.settings.operator)
    name = str(getattr(operator, "contact", ""))
    if name in flow.contacts:
        return flow.contacts[name].target
    return next(iter(flow.contacts.values())).target

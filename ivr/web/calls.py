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
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ivr.engine import core as engine
from ivr.engine import prompts, studio, twiml
from ivr.engine.seal import KeyRing
from ivr.engine.turns import CallState, Closures, EffectOutcome, Input, SpendEffect, Turn
from ivr.flow.model import Flow
from ivr.store import allowance, callbacks, journal, requests
from ivr.store.database import Store
from ivr.store.revisions import Revisions, Version
from ivr.store.tables import Event
from ivr.web.paths import Paths

MAX_STEPS = 500  # webhooks in one call; beyond that the call is ended politely


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
    revision: str = ""  # the flow revision the call is on ("" for a new call: the current one)
    ticket: str = ""  # a call-back call's first webhook: its sealed ticket (which request, which attempt)
    answered_by: str = ""  # ... and who answered it, by Twilio's answering-machine detection


@dataclass(frozen=True)
class Answer:
    """The TwiML for a webhook, where the call now waits, and what kind of answer it was."""

    twiml: str
    node: str
    outcome: str  # new, step, replay, lost, too-long
    anonymous: bool = False
    path: tuple[str, ...] = ()  # the nodes this webhook went through, the waiting one last
    action: str = ""  # the action URL the answer's next webhook goes to ("" for a stored answer)
    next: Opened | None = None  # ... and what it carries sealed (the crawler reads it there)


@dataclass(frozen=True)
class Opened:
    """What an action URL of ours carries: where it points, its step, the call's state, the revision."""

    root: str
    step: int
    state: CallState
    revision: str


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


def _bound_to(call_sid: str, step: int, node: str, revision: str) -> bytes:
    return f"{call_sid}\x00{step}\x00{node}\x00{revision}".encode()


class CallHandler:
    """Serves the webhooks of every call of a flow against one store, with one key ring; each call
    on the flow revision it started on (`revisions`)."""

    def __init__(
        self, revisions: Revisions, store: Store, keys: KeyRing, paths: Paths, max_steps: int = MAX_STEPS
    ) -> None:
        self.revisions = revisions
        self.paths = paths
        self.store = store
        self.keys = keys
        self.max_steps = max_steps
        self._kept: set[str] = set()  # revisions this process has made sure the database keeps

    @property
    def flow(self) -> Flow:
        """The current revision of the flow: the one new calls get."""
        return self.revisions.current.flow

    @property
    def recordings(self) -> studio.Recordings | None:
        return self.revisions.current.recordings

    # ------------------------------------------------------------ sealed state in action URLs

    def action_url(self, root: str, call_sid: str, step: int, state: CallState, revision: str = "") -> str:
        """Where the call's next webhook goes, carrying its state sealed for that very step."""
        revision = revision or self.revisions.revision
        seal = self.keys.seal(state.pack(), _bound_to(call_sid, step, state.node, revision))
        return root + self.paths.build("voice.step", {"number": step, "node": state.node, "s": seal, "r": revision})

    def state_of(self, call_sid: str, step: int, node: str, seal: str, revision: str = "") -> CallState | None:
        """The state a seal carries, or None when it is broken, forged or not this call's step."""
        plain = self.keys.open(seal, _bound_to(call_sid, step, node, revision or self.revisions.revision))
        if plain is None:
            return None
        try:
            state = CallState.unpack(plain)
        except (ValueError, KeyError, TypeError):
            return None
        return state if state.node == node else None

    def opened(self, url: str, call_sid: str) -> Opened | None:
        """What an action URL of ours carries for `call_sid` (the crawler looks so), or None."""
        parts = urlsplit(url)
        found = self.paths.match(parts.path)
        if found is None or found[1] != "voice.step" or found[2]["number"] < 0:
            return None
        root, _, arguments = found
        step, node = arguments["number"], arguments["node"]
        query = parse_qs(parts.query)
        seal, revision = query.get("s", [""])[0], query.get("r", [""])[0]
        state = self.state_of(call_sid, step, node, seal, revision)
        return Opened(root, step, state, revision) if state is not None else None

    def reseal(self, opened: Opened, twin_sid: str) -> str:
        """An opened action URL for a twin of the call under another CallSid (the crawler forks so)."""
        return self.action_url(opened.root, twin_sid, opened.step, opened.state, opened.revision)

    def _version(self, hook: Webhook) -> Version | None:
        """The flow revision the call is on; for a new call the current one, kept in the database so
        that every instance can answer the call's next webhooks even after a reload."""
        if hook.node is None:
            version = self.revisions.get("")
        else:
            version = self.revisions.get(hook.revision, self.store.revision_source)
        if version is not None and hook.node is None and version.flow.revision not in self._kept:
            self.store.keep_revision(version.flow.revision, version.flow.name, version.source, hook.now)
            self._kept.add(version.flow.revision)
        return version

    # ------------------------------------------------------------ answering

    def handle(self, hook: Webhook) -> Answer:
        """The answer to one webhook; raises only when the store fails."""
        found = self._version(hook)
        if found is None:  # a revision no instance kept: the call goes on, lost, on the current one
            found, hook = self.revisions.current, replace(hook, seal="", revision="")
        v = found
        if hook.step > self.max_steps:
            return Answer(self._goodbye(v, "too_long", hook.media), "", "too-long")
        flow = v.flow
        closures = _Closures(self.store) if flow.schedules else {}
        caller = hook.given.caller
        before: CallState | None = None
        if hook.node is None and hook.ticket:
            outcome, turn = self._call_back(flow, hook, closures)
        elif hook.node is None:
            outcome, turn = "new", engine.start(flow, hook.now, caller, closures)
        else:
            before = self.state_of(hook.call_sid, hook.step, hook.node, hook.seal, flow.revision)
            if before is None:
                outcome, turn = "lost", engine.lost(flow, hook.now, caller, closures)
            else:
                outcome, turn = "step", engine.step(flow, before, hook.given, hook.now, closures)
        if turn.effect is not None:
            return self._with_effect(v, hook, before, turn, outcome, closures)
        xml, action, carried = self._render(v, hook, turn)
        event = journal.event(flow, hook.call_sid, hook.step, before, hook.given, turn, hook.now)
        if not event.anonymous:
            self.store.append(event)
        elif before is None or not before.anonymous:
            with self.store.begin(durable=False) as conn:
                self._anonymize(conn, event)
        return Answer(xml, turn.state.node, outcome, turn.state.anonymous, turn.path, action, carried)

    # ------------------------------------------------------------ call-backs the hotline places

    def callback_urls(self, base: str, ticket: callbacks.Ticket) -> tuple[str, str]:
        """The webhook and the status callback of a call-back attempt's call, its ticket sealed in both."""
        query = {"t": ticket.seal(self.keys)}
        return base + self.paths.build("voice.callback", query), base + self.paths.build("voice.callback_status", query)

    def _call_back(self, flow: Flow, hook: Webhook, closures: Closures) -> tuple[str, Turn]:
        ticket = callbacks.Ticket.open(self.keys, hook.ticket)
        if ticket is None:
            return "lost", engine.lost(flow, hook.now, "", closures)
        with self.store.begin() as conn:
            callbacks.answered(conn, ticket, hook.call_sid, hook.answered_by)
        machine = hook.answered_by in callbacks.MACHINE
        turn = engine.call_back(flow, ticket.line, ticket.reference, ticket.last, machine, hook.now, closures)
        return "callback", turn

    def finish_callback(
        self, token: str, call_sid: str, status: str, answered_by: str, duration: int | None, now: datetime
    ) -> str | None:
        """A call-back call is over: close its journal row, then end its attempt (connected or not) and
        move the request on by the flow's policy; the attempt's outcome, or None for a broken ticket."""
        ticket = callbacks.Ticket.open(self.keys, token)
        self.finish(call_sid, status, duration, now)
        if ticket is None:
            return None
        with self.store.begin() as conn:
            if not answered_by:  # Twilio sent it with the first webhook: the attempt keeps it
                answered_by = (callbacks.attempt(conn, ticket.reference, ticket.attempt) or {}).get("answered_by") or ""
            outcome = callbacks.outcome_of(status, answered_by, callbacks.was_connected(conn, call_sid))
            callbacks.finish_attempt(conn, self.flow, ticket.reference, ticket.attempt, outcome, now)
        return outcome

    def _render(self, v: Version, hook: Webhook, turn: Turn) -> tuple[str, str, Opened]:
        """The turn's TwiML, its action URL, and what that URL carries."""
        carried = Opened(hook.root, hook.step + 1, turn.state, v.flow.revision)
        url = self.action_url(hook.root, hook.call_sid, carried.step, turn.state, carried.revision)
        return twiml.render(turn, v.flow.settings, url, v.recordings, hook.media), url, carried

    def _goodbye(self, v: Version, text: str, media: str) -> str:
        phrase = prompts.render(v.flow.text(text), {}, {})
        return twiml.goodbye(v.flow.settings, phrase, v.recordings, media)

    def _anonymize(self, conn: Connection, event: Event) -> None:
        # What the call appended before it turned anonymous goes; one row keeps its step and hour.
        self.store.forget(conn, event.call_sid)
        self.store.append(event, conn)

    def _with_effect(
        self, v: Version, hook: Webhook, before: CallState | None, turn: Turn, outcome: str, closures: Closures
    ) -> Answer:
        """Perform the turn's effects, keep the answer and append the event, all in one transaction."""
        for _ in range(3):
            try:
                with self.store.begin() as tx:
                    stored = self.store.turn(tx, hook.call_sid, hook.step)
                    if stored is not None:
                        return Answer(stored, hook.node or "", "replay", turn.state.anonymous)
                    done = self._perform(v.flow, tx, hook, turn, closures)
                    xml, action, carried = self._render(v, hook, done)
                    self.store.save_turn(tx, hook.call_sid, hook.step, xml, hook.now)
                    event = journal.event(v.flow, hook.call_sid, hook.step, before, hook.given, done, hook.now)
                    if event.anonymous:
                        self._anonymize(tx, event)
                    else:
                        self.store.append(event, tx)
                    return Answer(xml, done.state.node, outcome, done.state.anonymous, done.path, action, carried)
            except IntegrityError:
                # A twin of this webhook (a retry racing the original), or another call spending the
                # same allowance, committed first; this transaction was rolled back whole: try again.
                continue
        raise RuntimeError(f"step {hook.step} of a call kept conflicting with its twins")

    def _perform(self, flow: Flow, tx: Connection, hook: Webhook, turn: Turn, closures: Closures) -> Turn:
        while turn.effect is not None:
            effect = turn.effect
            if isinstance(effect, SpendEffect):
                outcome = allowance.spend(tx, hook.call_sid, effect, hook.now)
            else:
                outcome = EffectOutcome(True, requests.register(tx, hook.call_sid, effect, hook.now))
            turn = engine.resume(flow, turn, outcome, hook.now, hook.given.caller, closures)
        return turn

    def finish(self, call_sid: str, status: str, duration: int | None, now: datetime) -> bool:
        """Twilio says the call is over: fold its events into the journal (by the flow revision the
        call was on) and forget them; False when there were none (nothing was written)."""
        return journal.finish(self.store, self.flow_of, call_sid, status, duration, now)

    def flow_of(self, revision: str | None) -> Flow:
        """The flow of a revision (the current one when it is unknown)."""
        version = self.revisions.get(revision or "", self.store.revision_source)
        return (version or self.revisions.current).flow

    def emergency(self, url: str) -> str:
        """TwiML for a call that cannot be served: apology, then the operator's contact."""
        settings = self.flow.settings
        contact = operator_contact(self.flow)
        return twiml.emergency(settings, self.flow.text("technical_failure"), contact, url)

    def after_emergency(self, media: str = "") -> str:
        return self._goodbye(self.revisions.current, "goodbye_after_failure", media)


def operator_contact(flow: Flow) -> str:
    """The number the operator node dials (or the first contact), for when nothing else works."""
    operator = flow.nodes.get(flow.settings.operator)
    name = str(getattr(operator, "contact", ""))
    if name in flow.contacts:
        return flow.contacts[name].target
    return next(iter(flow.contacts.values())).target

"""Call-backs: when each call-back request is due, and placing the due ones (`ivr callbacks run`).

A call-back request (kind `callback`) names its line in `contact` (the representative, the desk,
the navigator). A line with a schedule of the same name is open by that schedule; a line without
one is always open (the 24-hour desk). A request is due at once when its line is open, otherwise at
the line's next opening.

Placing: each request gets a row in `ivr_callbacks` the first time a run looks at it. A run claims
a due row with a conditional UPDATE (only one of several workers, on any instance, wins it), then
places the call through a `Placer` (Twilio's REST API, or the simulator). The call's webhooks carry
a sealed `Ticket` (which request, which attempt); its status callback ends the attempt: connected
(the callee was put through to the line), or not, and then the flow's policy says when to try again
or that the request is given up. An attempt never heard of again (a lost status callback) counts as
failed once its claim runs out.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ivr.engine.seal import KeyRing
from ivr.engine.understand import normalise_phone
from ivr.flow.model import CallbackPolicy, Flow
from ivr.store.database import Store
from ivr.store.tables import aware, callback_attempts, callbacks, insert_ignoring, journal, requests, utc

log = logging.getLogger("ivr.callbacks")

KIND = "callback"
CLAIM = timedelta(hours=2)  # a placed call heard nothing of in this long is counted as lost
MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
_OPEN_STATES = ("due", "failed")
_BOUND = b"ivr-callback"
_CLAIM_LOCK = 7_117_002  # the advisory lock of claims on PostgreSQL (7_117_001 is the schema upgrade's)


@dataclass(frozen=True)
class CallBack:
    """A call-back request, when it is due, and how placing it went so far."""

    reference: str
    line: str
    phone: str
    requested_at: datetime
    due_at: datetime | None  # None: the line never opens again (its schedule has no opening ahead)
    state: str = "due"  # due, placed, failed, answered, given-up
    attempts: int = 0
    next_at: datetime | None = None  # when the next attempt may start
    last_outcome: str | None = None

    def is_due(self, now: datetime) -> bool:
        at = self.next_at if self.state == "failed" else self.due_at
        return self.state in _OPEN_STATES and at is not None and at <= now

    def status(self, now: datetime) -> str:
        """The state as a person reads it: `waiting` is a request not yet due."""
        if self.state in _OPEN_STATES and not self.is_due(now):
            return "waiting" if self.state == "due" else "failed"
        return self.state


@dataclass(frozen=True)
class Ticket:
    """What a call-back call's webhooks carry, sealed in their URLs: which request and which attempt."""

    reference: str
    line: str
    attempt: int
    last: bool  # the policy allows no attempt after this one

    def seal(self, keys: KeyRing) -> str:
        plain = json.dumps([self.reference, self.line, self.attempt, self.last], separators=(",", ":"))
        return keys.seal(plain.encode(), _BOUND)

    @classmethod
    def open(cls, keys: KeyRing, token: str) -> Ticket | None:
        """The ticket a seal carries, or None when it is broken or forged."""
        plain = keys.open(token, _BOUND)
        if plain is None:
            return None
        try:
            reference, line, attempt, last = json.loads(plain)
            return cls(str(reference), str(line), int(attempt), bool(last))
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class Placement:
    """One attempt a run started (or would start, with --dry-run), and what became of it so far."""

    callback: CallBack
    attempt: int
    call_sid: str = ""
    outcome: str = ""  # "" while the call runs; connected, machine, busy, error ... once it ended
    detail: str = ""


class PlaceError(Exception):
    """Placing a call failed before it rang (Twilio refused it, the number is not dialable)."""


class Placer(Protocol):
    """Places the call of a call-back attempt; returns its CallSid (raises PlaceError)."""

    def place(self, callback: CallBack, ticket: Ticket, to: str) -> str: ...


# ---------------------------------------------------------------- when a request is due


def due_at(flow: Flow, line: str, requested_at: datetime) -> datetime | None:
    """When a call-back asked for at `requested_at` is due: then, if the line is open; else its next
    opening (None if it has none ahead)."""
    schedule = flow.schedules.get(line)
    if schedule is None or schedule.is_open(requested_at):
        return requested_at
    return schedule.next_opening(requested_at)


def line_of(flow: Flow, data: Mapping[str, Any]) -> str:
    """The line a request is for: its contact (a transfer node named instead stands for its contact),
    else the default call-back line, else the operator's."""
    named = str(data.get("contact") or "")
    node = flow.nodes.get(named)
    dialled = node.dials() if node is not None else None
    if dialled is not None:
        return dialled
    if named:
        return named
    if flow.callbacks is not None:
        return flow.callbacks.default_line
    return flow.settings.operator


def dialable(phone: str) -> str | None:
    """The number in E.164 for Twilio (digits as a caller types them read as the engine reads them,
    8XXXXXXXXXX as +7...); None when it is no number Twilio can call."""
    text = re.sub(r"[\s()-]", "", phone)
    if text.isdigit():
        text = normalise_phone(text)
    return text if re.fullmatch(r"\+[1-9][0-9]{7,14}", text) else None


# ---------------------------------------------------------------- the state of placing


def listed(conn: Connection, flow: Flow) -> list[CallBack]:
    """Every call-back request, oldest first, with its placing state (read only)."""
    last = (
        sa.select(callback_attempts.c.outcome)
        .where(callback_attempts.c.reference == callbacks.c.reference)
        .order_by(callback_attempts.c.attempt.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = (
        sa.select(requests, callbacks.c.line.label("cb_line"), callbacks.c.due_at, callbacks.c.state)
        .add_columns(callbacks.c.attempts, callbacks.c.next_at, last.label("last_outcome"))
        .select_from(requests.outerjoin(callbacks, callbacks.c.reference == requests.c.reference))
        .where(requests.c.kind == KIND)
        .order_by(requests.c.id)
    )
    found = []
    for row in conn.execute(query):
        data = json.loads(row.data)
        requested = aware(row.created_at)
        phone = str(data.get("phone", ""))
        if row.state is None:  # no run has looked at it yet: due by the flow's calendar
            line = line_of(flow, data)
            found.append(CallBack(row.reference, line, phone, requested, due_at(flow, line, requested)))
            continue
        due = aware(row.due_at) if row.due_at else None
        next_at = aware(row.next_at) if row.next_at else None
        found.append(
            CallBack(
                row.reference, row.cb_line, phone, requested, due, row.state, row.attempts, next_at, row.last_outcome
            )
        )
    return found


def attempt(conn: Connection, reference: str, number: int) -> dict[str, Any] | None:
    """One attempt of a request, or None."""
    query = sa.select(callback_attempts).where(
        callback_attempts.c.reference == reference, callback_attempts.c.attempt == number
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row is not None else None


def attempts_of(conn: Connection, reference: str) -> list[dict[str, Any]]:
    """The attempts of one request, first first."""
    query = sa.select(callback_attempts).where(callback_attempts.c.reference == reference)
    return [dict(row._mapping) for row in conn.execute(query.order_by(callback_attempts.c.attempt))]


def sync(conn: Connection, flow: Flow, now: datetime) -> None:
    """Give every new call-back request its row, and count placed calls heard nothing of as lost."""
    new = (
        sa.select(requests)
        .select_from(requests.outerjoin(callbacks, callbacks.c.reference == requests.c.reference))
        .where(requests.c.kind == KIND, callbacks.c.reference.is_(None), requests.c.reference.is_not(None))
    )
    for row in conn.execute(new).all():
        data = json.loads(row.data)
        line = line_of(flow, data)
        due = due_at(flow, line, aware(row.created_at))
        moment = utc(due) if due else None
        conn.execute(
            insert_ignoring(callbacks, conn.dialect.name),
            {
                "reference": row.reference,
                "line": line,
                "due_at": moment,
                "state": "due" if due else "given-up",
                "attempts": 0,
                "next_at": moment,
                "claim_until": None,
                "updated_at": utc(now),
            },
        )
    lost = sa.select(callbacks.c.reference, callbacks.c.attempts).where(
        callbacks.c.state == "placed", callbacks.c.claim_until < utc(now)
    )
    for reference, attempt in conn.execute(lost).all():
        finish_attempt(conn, flow, reference, attempt, "lost", now, detail="no status callback came")


def claim(
    conn: Connection, flow: Flow, reference: str, now: datetime, worker: str, force: bool = False
) -> Ticket | None:
    """Take the next attempt of a due request for this worker; None when another worker has it, it is
    not due (any more), or as many calls as the policy allows are in progress already. `force` takes
    a request not due yet, whatever runs (`ivr simulate --callback`)."""
    policy = _policy(flow)
    if conn.dialect.name == "postgresql":
        # Counting what rings and claiming one more must be one step for every worker (SQLite's
        # write transaction is that already), or two workers could each start the last call allowed.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
    running = conn.execute(
        sa.select(sa.func.count()).select_from(callbacks).where(callbacks.c.state == "placed")
    ).scalar_one()
    if running >= policy.at_once and not force:
        return None
    due = sa.true() if force else callbacks.c.next_at <= utc(now)
    taken = conn.execute(
        callbacks.update()
        .where(callbacks.c.reference == reference, callbacks.c.state.in_(_OPEN_STATES), due)
        .values(
            state="placed",
            attempts=callbacks.c.attempts + 1,
            claim_until=utc(now + CLAIM),
            updated_at=utc(now),
        )
    )
    if taken.rowcount != 1:
        return None
    line, attempt, due = conn.execute(
        sa.select(callbacks.c.line, callbacks.c.attempts, callbacks.c.due_at).where(callbacks.c.reference == reference)
    ).one()
    conn.execute(
        callback_attempts.insert().values(reference=reference, attempt=attempt, placed_at=utc(now), worker=worker[:64])
    )
    return Ticket(reference, line, attempt, _next_attempt(flow, line, attempt, aware(due), now) is None)


def claim_now(
    store: Store, flow: Flow, reference: str | None, now: datetime, worker: str, force: bool = False
) -> tuple[CallBack | None, Ticket | None]:
    """Look up one request (the newest one when `reference` is None) and claim its next attempt, as a
    run would (`force`: whether or not it is due): the request (None when there is none) and the
    ticket (None when it cannot be claimed now)."""
    with store.begin() as conn:
        sync(conn, flow, now)
        everything = listed(conn, flow)
        found = everything[-1] if reference is None and everything else None
        found = found or next((c for c in everything if c.reference == reference), None)
        ticket = claim(conn, flow, found.reference, now, worker, force) if found is not None else None
    return found, ticket


def _policy(flow: Flow) -> CallbackPolicy:
    if flow.callbacks is None:
        raise ValueError(f"flow {flow.name!r} has no `callbacks:` section: it places no call-backs")
    return flow.callbacks.policy


def _next_attempt(flow: Flow, line: str, attempt: int, due: datetime, now: datetime) -> datetime | None:
    """When the attempt after `attempt` may start, by the policy; None when there is none."""
    policy = _policy(flow)
    if attempt >= policy.attempts:
        return None
    after = due_at(flow, line, now + timedelta(minutes=policy.spacing_minutes))
    if after is None or after > due + timedelta(hours=policy.give_up_hours):
        return None
    return after


def answered(conn: Connection, ticket: Ticket, call_sid: str, answered_by: str) -> None:
    """The call of an attempt was answered (the first webhook came): who answered, by Twilio's AMD."""
    conn.execute(
        callback_attempts.update()
        .where(callback_attempts.c.reference == ticket.reference, callback_attempts.c.attempt == ticket.attempt)
        .values(call_sid=call_sid[:64], answered_by=answered_by[:32] or None)
    )


def outcome_of(status: str, answered_by: str, connected: bool) -> str:
    """An attempt's outcome from Twilio's final CallStatus, AnsweredBy, and whether the callee was
    put through to the line."""
    if status != "completed":
        return status if status in ("busy", "no-answer", "failed", "canceled") else "failed"
    if answered_by in MACHINE:
        return "machine"
    return "connected" if connected else "not-connected"


def was_connected(conn: Connection, call_sid: str) -> bool:
    """Whether the journal of a finished call shows a transfer that was answered."""
    facts = conn.execute(sa.select(journal.c.facts).where(journal.c.call_sid == call_sid)).scalar()
    found = json.loads(facts) if facts else []
    return any(f.get("type") == "dial" and f.get("outcome") in ("completed", "answered") for f in found)


def finish_attempt(
    conn: Connection, flow: Flow, reference: str, attempt: int, outcome: str, now: datetime, detail: str = ""
) -> bool:
    """End an attempt with `outcome` and move its request on: answered when connected, else tried
    again when the policy allows, else given up. False when the attempt was ended already (Twilio
    repeated its status callback) or is not the request's current one."""
    ended = conn.execute(
        callback_attempts.update()
        .where(
            callback_attempts.c.reference == reference,
            callback_attempts.c.attempt == attempt,
            callback_attempts.c.outcome.is_(None),
        )
        .values(outcome=outcome, ended_at=utc(now), detail=detail[:500] or None)
    )
    if ended.rowcount != 1:
        return False
    row = conn.execute(sa.select(callbacks).where(callbacks.c.reference == reference)).first()
    if row is None or row.state != "placed" or row.attempts != attempt:
        return True
    if outcome == "connected":
        state, next_at = "answered", None
    else:
        next_at = None if outcome == "undialable" else _next_attempt(flow, row.line, attempt, aware(row.due_at), now)
        state = "failed" if next_at is not None else "given-up"
    conn.execute(
        callbacks.update()
        .where(callbacks.c.reference == reference)
        .values(state=state, next_at=utc(next_at) if next_at else None, claim_until=None, updated_at=utc(now))
    )
    return True


# ---------------------------------------------------------------- a run


def worker_name() -> str:
    """Who places calls, for the attempts' record: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run(
    store: Store,
    flow: Flow,
    placer: Placer | None,
    now: datetime,
    worker: str | None = None,
    limit: int | None = None,
) -> list[Placement]:
    """Place the call-backs due at `now`, at most as many as the policy lets run at once (and `limit`);
    without a placer, only say which would be placed (a dry run)."""
    worker = worker or worker_name()
    policy = _policy(flow)
    with store.begin() as conn:
        if placer is not None:
            sync(conn, flow, now)
        everything = listed(conn, flow)
    due = [c for c in everything if c.is_due(now)]
    running = sum(1 for c in everything if c.state == "placed")
    due.sort(key=lambda c: (c.next_at or c.due_at or now, c.reference))
    room = max(policy.at_once - running, 0)
    if limit is not None:
        room = min(room, limit)
    if placer is None:
        return [Placement(c, c.attempts + 1) for c in due[:room]]
    placed: list[Placement] = []
    for callback in due:
        if len(placed) >= room:
            break
        with store.begin() as conn:
            ticket = claim(conn, flow, callback.reference, now, worker)
        if ticket is None:
            continue
        placed.append(place(store, flow, placer, callback, ticket, now))
    return placed


def place(store: Store, flow: Flow, placer: Placer, callback: CallBack, ticket: Ticket, now: datetime) -> Placement:
    to = dialable(callback.phone)
    try:
        if to is None:
            raise PlaceError(f"{callback.phone!r} is not a number that can be called back")
        call_sid = placer.place(callback, ticket, to)
    except PlaceError as exc:
        outcome = "undialable" if to is None else "error"
        with store.begin() as conn:
            finish_attempt(conn, flow, ticket.reference, ticket.attempt, outcome, now, detail=str(exc))
        return Placement(callback, ticket.attempt, "", outcome, str(exc))
    with store.begin() as conn:
        conn.execute(
            callback_attempts.update()
            .where(
                callback_attempts.c.reference == ticket.reference,
                callback_attempts.c.attempt == ticket.attempt,
                callback_attempts.c.call_sid.is_(None),
            )
            .values(call_sid=call_sid[:64])
        )
        mine = attempt(conn, ticket.reference, ticket.attempt)
    return Placement(callback, ticket.attempt, call_sid, (mine or {}).get("outcome") or "")


LISTING_HEADER = f"{'request':<7}  {'line':<15} {'phone':<16} {'state':<8} due at"


def describe(callback: CallBack, now: datetime, zone: Any) -> str:
    """One line of `ivr callbacks`, in the columns of LISTING_HEADER."""
    when = (
        callback.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if callback.due_at else "never (no opening ahead)"
    )
    line = f"{callback.reference:<7}  {callback.line:<15} {callback.phone:<16} {callback.status(now):<8} {when}"
    if callback.attempts:
        line += f"; attempts {callback.attempts}, last {callback.last_outcome or 'in progress'}"
    if callback.state == "failed" and callback.next_at is not None:
        line += f"; next {callback.next_at.astimezone(zone):%Y-%m-%d %H:%M}"
    return line


def work(one_run: Callable[[], None], every: float, stop: threading.Event) -> int:
    """Run `one_run` every `every` seconds until `stop` is set (a long-running worker); the runs done.
    A run that fails is logged and the next one comes as usual: a database restarting does not end
    the worker."""
    runs = 0
    while not stop.is_set():
        try:
            one_run()
        except Exception:
            log.exception("a call-back run failed; the next one comes in %s s", every)
        runs += 1
        if stop.wait(every):
            break
    return runs


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the worker ends after the run in progress."""
    stop = threading.Event()

    def handle(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop

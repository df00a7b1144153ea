"""The call journal: every webhook appends an event; Twilio's status callback folds them into one row.

A call's row keeps when it started and ended, the path of nodes, where it last waited, how it
ended, and facts for reports: schedules found closed, transfer outcomes, requests, allowances. A
call that reaches an anonymous node (the psychologist) keeps only that such a call happened, in
which hour, and nothing else: its earlier events are dropped when it turns anonymous.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ivr.engine.turns import CallState, Input, Turn
from ivr.flow.model import Flow
from ivr.store.database import Store
from ivr.store.tables import Event, aware, events, flow_revisions, journal, turns, utc

MAX_PATH = 200  # nodes kept per call


def facts(flow: Flow, before: CallState | None, given: Input, turn: Turn, now: datetime) -> list[dict[str, Any]]:
    """What a turn tells a report: closed schedules, dial outcomes, requests, allowance decisions,
    and answers that did not lead on (a silence, a wrong key, a repeat)."""
    found: list[dict[str, Any]] = []
    if before is not None and given.kind == "dial" and (waited := flow.nodes.get(before.node)) is not None:
        found += waited.dialled(given.text)
    if before is not None:
        found += _answer_facts(flow, before, given, turn)
    for a, b in itertools.pairwise(turn.path):
        node = flow.nodes.get(a)
        if node is not None:
            found += node.facts(b, now)
    return found


def _answer_facts(flow: Flow, before: CallState, given: Input, turn: Turn) -> list[dict[str, Any]]:
    """A silence, a wrong answer or a repeat at the node the caller was asked at (never the answer)."""
    node = flow.nodes.get(before.node)
    if node is None or not node.holds or node.dials() is not None or given.kind not in ("silence", "digits", "speech"):
        return []
    if given.kind == "silence":
        return [{"type": "silence", "node": node.id}]
    if len(turn.path) <= 1 and turn.state.node == node.id:
        if turn.state.invalid > before.invalid:
            return [{"type": "wrong", "node": node.id}]
        if not (before.phase == "entry" and turn.state.phase == "confirm"):
            return [{"type": "repeat", "node": node.id}]  # `*`, or "2: enter again" after a read-back
        return []
    after = turn.path[1] if len(turn.path) > 1 else turn.state.node
    leading = {name for name, target in node.targets(flow) if target == after}
    if "invalid.fallback" in leading and leading <= {"invalid.fallback", "no_input.fallback"}:
        return [{"type": "wrong", "node": node.id}]  # the last wrong answer, sent on to the fallback
    return []


def _branch(flow: Flow, path: list[str]) -> str | None:
    """The node the main menu first led to."""
    main = flow.settings.main_menu
    for here, after in itertools.pairwise(path):
        if here == main and after != main:
            return after
    return None


def event(
    flow: Flow, call_sid: str, step: int, before: CallState | None, given: Input, turn: Turn, now: datetime
) -> Event:
    """The journal's event for one answered webhook: the nodes passed and the kind of input, never values."""
    if turn.state.anonymous:
        hour = now.replace(minute=0, second=0, microsecond=0)
        return Event(call_sid, step, hour, "", "[]", None, anonymous=True)
    found = facts(flow, before, given, turn, now)
    path = json.dumps(list(turn.path))
    return Event(call_sid, step, now, given.kind, path, json.dumps(found) if found else None, False, flow.revision)


def _how_it_ended(flow: Flow, last_node: str | None, status: str) -> str:
    node = flow.nodes.get(last_node or "")
    return (node.ending if node is not None else None) or status or "ended"


def walk(
    path: list[str], found: list[Any], inputs: list[str], taken: list[Event]
) -> tuple[list[str], list[Any], list[str]]:
    """`path` (consecutive repeats once), `found` (facts) and `inputs` gone on with the events
    `taken`, oldest first."""
    for event in taken:
        for node in json.loads(event.path):
            if not path or path[-1] != node:
                path.append(node)
        if event.facts:
            found += json.loads(event.facts)
        inputs.append(event.input)
    return path, found, inputs


def row(flow: Flow, taken: list[Event], status: str, duration: int | None, now: datetime) -> dict[str, Any]:
    """The journal row of a finished call, folded from its events (oldest first)."""
    anonymous = next((event for event in taken if event.anonymous), None)
    if anonymous is not None:
        return {"anonymous": True, "started_at": utc(aware(anonymous.at)), "end": "anonymous"}
    path, found, inputs = walk([], [], [], taken)
    last_node = path[-1] if path else None
    started = aware(taken[0].at)
    return {
        "call_sid": taken[0].call_sid,
        "started_at": utc(started),
        "ended_at": utc(now),
        "duration": duration if duration is not None else int((now - started).total_seconds()),
        "anonymous": False,
        "path": json.dumps(path[-MAX_PATH:]),
        "inputs": json.dumps(inputs[-MAX_PATH:]),
        "facts": json.dumps(found),
        "branch": _branch(flow, path),
        "last_node": last_node,
        "end": _how_it_ended(flow, last_node, status),
        "revision": taken[0].revision,
    }


def late(flow: Flow, existing: dict[str, Any], taken: list[Event]) -> dict[str, Any]:
    """The row of a call already closed, with events that came after (a transfer's outcome after
    the status callback, a retried webhook): its path, inputs and facts go on from where they were."""
    path, found, inputs = walk(
        json.loads(existing.get("path") or "[]"),
        json.loads(existing.get("facts") or "[]"),
        json.loads(existing.get("inputs") or "[]"),
        taken,
    )
    last_node = path[-1] if path else None
    return {
        "path": json.dumps(path[-MAX_PATH:]),
        "facts": json.dumps(found),
        "inputs": json.dumps(inputs[-MAX_PATH:]),
        "last_node": last_node,
        "branch": existing.get("branch") or _branch(flow, path),
        "end": _how_it_ended(flow, last_node, existing.get("end") or ""),
    }


FlowOf = Callable[[str | None], Flow]  # the flow of a revision


def finish(store: Store, flow: Flow | FlowOf, call_sid: str, status: str, duration: int | None, now: datetime) -> bool:
    """Fold a finished call's events into its journal row (read with the flow of the revision the
    call was on) and forget them; False when the call had none (nothing was written)."""
    flow_of: FlowOf = flow if callable(flow) else lambda _revision: flow

    def fold(taken: list[Event], existing: dict[str, Any] | None) -> dict[str, Any]:
        flow = flow_of(taken[0].revision)
        return late(flow, existing, taken) if existing is not None else row(flow, taken, status, duration, now)

    return store.fold(call_sid, fold)


def purge(store: Store, flow: Flow | FlowOf, now: datetime, keep_days: int, turns_hours: float = 24) -> int:
    """Close the rows of calls silent for a day (no status callback came), drop stored turns older
    than `turns_hours`, and delete journal rows older than `keep_days`; returns the rows deleted."""
    stale = utc(now - timedelta(days=1))
    silent = sa.select(events.c.call_sid).group_by(events.c.call_sid).having(sa.func.max(events.c.at) < stale)
    with store.read() as conn:
        calls = [call_sid for (call_sid,) in conn.execute(silent).all()]
    for call_sid in calls:
        finish(store, flow, call_sid, "no status callback", None, now)
    current = flow.revision if not callable(flow) else ""
    with store.begin() as conn:
        conn.execute(turns.delete().where(turns.c.created_at < utc(now - timedelta(hours=turns_hours))))
        # A revision no call is on any more (and not the one new calls get) is not needed again.
        in_use = sa.select(events.c.revision).where(events.c.revision.is_not(None)).distinct()
        conn.execute(
            flow_revisions.delete().where(
                flow_revisions.c.revision != current,
                flow_revisions.c.revision.not_in(in_use),
                flow_revisions.c.created_at < stale,
            )
        )
        cutoff = utc(now - timedelta(days=keep_days))
        return int(conn.execute(journal.delete().where(journal.c.started_at < cutoff)).rowcount)

"""Calls as an operator looks them up: the recent ones, and one call's journal step by step.

What it shows is what the journal keeps: the nodes passed, the kind of each input, the effects
(requests by kind, transfers and their outcomes, allowances, schedules found closed) and how the
call ended. Never what a caller typed or said, and nothing of a call that turned anonymous.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ivr.store.journal import walk
from ivr.store.tables import Event, aware, events, journal, utc


@dataclass(frozen=True)
class Step:
    """One answered webhook of a call still in progress."""

    step: int
    at: datetime
    input: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class CallRecord:
    """One call: folded into the journal once finished, or its steps while it is in progress."""

    call_sid: str
    started_at: datetime
    in_progress: bool
    path: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    facts: tuple[dict[str, Any], ...] = ()
    ended_at: datetime | None = None
    duration: int | None = None
    branch: str | None = None
    end: str | None = None
    revision: str | None = None
    steps: tuple[Step, ...] = field(default=())

    @property
    def where(self) -> str | None:
        """Where the call waits (in progress) or waited last."""
        return self.path[-1] if self.path else None


@dataclass(frozen=True)
class Listing:
    calls: tuple[CallRecord, ...]
    anonymous: int  # calls that turned anonymous in the period: counted, never shown


def _loads(text: str | None) -> list[Any]:
    return json.loads(text) if text else []


def _finished(row: Any) -> CallRecord:
    return CallRecord(
        call_sid=row.call_sid,
        started_at=aware(row.started_at),
        in_progress=False,
        path=tuple(_loads(row.path)),
        inputs=tuple(_loads(row.inputs)),
        facts=tuple(_loads(row.facts)),
        ended_at=aware(row.ended_at) if row.ended_at else None,
        duration=row.duration,
        branch=row.branch,
        end=row.end,
        revision=row.revision,
    )


def _running(call_sid: str, rows: list[Any]) -> CallRecord | None:
    """A call in progress from its events; None when it turned anonymous."""
    taken = sorted((Event(*r) for r in rows), key=lambda event: event.step)
    if any(event.anonymous for event in taken):
        return None
    path, facts, inputs = walk([], [], [], taken)
    steps = tuple(Step(e.step, aware(e.at), e.input, tuple(_loads(e.path))) for e in taken)
    return CallRecord(
        call_sid=call_sid,
        started_at=steps[0].at,
        in_progress=True,
        path=tuple(path),
        inputs=tuple(inputs),
        facts=tuple(facts),
        revision=taken[0].revision,
        steps=steps,
    )


def one(conn: Connection, call_sid: str) -> CallRecord | None:
    """The call `call_sid`, finished or in progress; None when there is none (or it is anonymous)."""
    row = conn.execute(sa.select(journal).where(journal.c.call_sid == call_sid)).first()
    if row is not None:
        return _finished(row)
    rows = conn.execute(sa.select(events).where(events.c.call_sid == call_sid)).all()
    return _running(call_sid, list(rows)) if rows else None


def recent(conn: Connection, since: datetime | None, limit: int) -> Listing:
    """The latest `limit` calls started at or after `since`, newest first, in progress ones included."""
    finished = sa.select(journal).where(journal.c.anonymous.is_(False))
    hidden = sa.select(sa.func.count()).select_from(journal).where(journal.c.anonymous.is_(True))
    first = sa.select(events.c.call_sid, sa.func.min(events.c.at).label("at")).group_by(events.c.call_sid)
    if since is not None:
        finished = finished.where(journal.c.started_at >= utc(since))
        hidden = hidden.where(journal.c.started_at >= utc(since))
        first = first.having(sa.func.min(events.c.at) >= utc(since))
    calls = [_finished(r) for r in conn.execute(finished.order_by(journal.c.started_at.desc()).limit(limit))]
    anonymous = int(conn.execute(hidden).scalar_one())
    started = conn.execute(first.order_by(sa.desc("at")).limit(limit)).all()
    if started:
        sids = [sid for sid, _ in started]
        rows = conn.execute(sa.select(events).where(events.c.call_sid.in_(sids))).all()
        by_call: dict[str, list[Any]] = {}
        for r in rows:
            by_call.setdefault(r.call_sid, []).append(r)
        for sid in sids:
            running = _running(sid, by_call[sid])
            if running is None:
                anonymous += 1
            else:
                calls.append(running)
    calls.sort(key=lambda c: c.started_at, reverse=True)
    return Listing(tuple(calls[:limit]), anonymous)


def finished_between(conn: Connection, since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """The journal rows of finished calls started in [since, until), oldest first (anonymous ones
    too: they say only that they happened)."""
    query = sa.select(journal)
    if since is not None:
        query = query.where(journal.c.started_at >= utc(since))
    if until is not None:
        query = query.where(journal.c.started_at < utc(until))
    rows = conn.execute(query.order_by(journal.c.started_at, journal.c.id)).mappings()
    return [{**row, "started_at": aware(row["started_at"])} for row in rows]

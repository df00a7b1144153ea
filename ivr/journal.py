"""The call journal: one row per call, fed by every webhook and by Twilio's status callback.

It keeps when a call started and ended, the path of nodes, where it last waited, how it ended,
and facts for reports: schedules found closed, transfer outcomes, requests, allowances. A call
that reaches an anonymous node (the psychologist) keeps only that such a call happened, in which
hour, and nothing else.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .engine import CallState, Input, Turn
from .model import Allowance, Ask, Branch, Flow, Hangup, Menu, Register, Transfer
from .store import aware, calls, journal, turns, utc

MAX_PATH = 200  # nodes kept per call


def facts(flow: Flow, before: CallState | None, given: Input, turn: Turn, now: datetime) -> list[dict[str, Any]]:
    """What a turn tells a report: closed schedules, dial outcomes, requests, allowance decisions."""
    found: list[dict[str, Any]] = []
    if before is not None and given.kind == "dial":
        node = flow.nodes.get(before.node)
        if isinstance(node, Transfer):
            found.append({"type": "dial", "contact": node.contact, "outcome": given.text or "failed"})
    for a, b in zip(turn.path, turn.path[1:], strict=False):
        node = flow.nodes.get(a)
        if (
            isinstance(node, Branch)
            and node.on == "schedule"
            and b in (node.cases.get("closed"), node.cases.get("emergency"))
        ):
            found.append({"type": "closed", "schedule": node.subject, "at": now.isoformat()})
        elif isinstance(node, Allowance):
            granted = b == node.granted
            found.append({"type": "allowance", "allowance": node.allowance, "granted": granted})
            if granted:
                found.append({"type": "request", "kind": node.request})
        elif isinstance(node, Register) and b == node.next:
            found.append({"type": "request", "kind": node.request})
    return found


def _branch(flow: Flow, before: CallState | None, turn: Turn) -> str | None:
    if before is None or before.node != flow.settings.main_menu or len(turn.path) < 2:
        return None
    chosen = turn.path[1]
    return chosen if chosen != flow.settings.main_menu else None


def record(
    conn: Connection, flow: Flow, call_sid: str, before: CallState | None, given: Input, turn: Turn, now: datetime
) -> None:
    """Fold one answered webhook into the call's journal row."""
    if before is not None and before.anonymous:
        return  # the row was reduced to "a call happened" already
    row = conn.execute(sa.select(journal).where(journal.c.call_sid == call_sid)).first()
    if turn.state.anonymous:
        hour = now.replace(minute=0, second=0, microsecond=0)
        forget = ("call_sid", "branch", "path", "last_node", "facts", "ended_at", "duration")
        anonymous: dict[str, Any] = dict.fromkeys(forget) | {
            "anonymous": True,
            "started_at": utc(hour),
            "end": "anonymous",
        }
        if row is None:
            conn.execute(journal.insert().values(**anonymous))
        else:
            conn.execute(journal.update().where(journal.c.id == row.id).values(**anonymous))
        return
    path = json.loads(row.path) if row is not None and row.path else []
    for node in turn.path:
        if not path or path[-1] != node:
            path.append(node)
    values = {
        "path": json.dumps(path[-MAX_PATH:]),
        "last_node": turn.state.node,
        "facts": json.dumps(
            (json.loads(row.facts) if row is not None and row.facts else []) + facts(flow, before, given, turn, now)
        ),
    }
    branch = _branch(flow, before, turn)
    if row is None:
        conn.execute(
            journal.insert().values(call_sid=call_sid, started_at=utc(now), anonymous=False, branch=branch, **values)
        )
    else:
        if branch and not row.branch:
            values["branch"] = branch
        conn.execute(journal.update().where(journal.c.id == row.id).values(**values))


def _how_it_ended(flow: Flow, last_node: str | None, status: str) -> str:
    node = flow.nodes.get(last_node or "")
    if isinstance(node, Hangup):
        return "goodbye"
    if isinstance(node, Transfer):
        return "transferred"
    if isinstance(node, Menu | Ask):
        return "abandoned"
    return status or "ended"


def finish(conn: Connection, flow: Flow, call_sid: str, status: str, duration: int | None, now: datetime) -> None:
    """Close a call's row when Twilio's status callback says it is over."""
    row = conn.execute(sa.select(journal).where(journal.c.call_sid == call_sid)).first()
    if row is None:
        return
    started = row.started_at
    computed = int((now - aware(started)).total_seconds()) if started is not None else None
    conn.execute(
        journal.update()
        .where(journal.c.id == row.id)
        .values(
            ended_at=utc(now),
            duration=duration if duration is not None else computed,
            end=_how_it_ended(flow, row.last_node, status),
        )
    )


def purge(conn: Connection, now: datetime, keep_days: int) -> int:
    """Delete journal rows older than `keep_days`, and state of calls silent for a day; rows deleted."""
    cutoff = utc(now - timedelta(days=keep_days))
    deleted = conn.execute(journal.delete().where(journal.c.started_at < cutoff)).rowcount
    stale = utc(now - timedelta(days=1))
    old = sa.select(calls.c.call_sid).where(calls.c.updated_at < stale)
    conn.execute(turns.delete().where(turns.c.call_sid.in_(old)))
    conn.execute(calls.delete().where(calls.c.updated_at < stale))
    return int(deleted)

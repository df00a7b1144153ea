"""The call journal: one row per call, fed by every webhook and by Twilio's status callback.

It keeps when a call started and ended, the path of nodes, where it last waited, how it ended,
and facts for reports: schedules found closed, transfer outcomes, requests, allowances. A call
that reaches an anonymous node (the psychologist) keeps only that such a call happened, in which
hour, and nothing else.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .engine import CallState, Input, Turn
from .model import Allowance, Ask, Branch, Flow, Hangup, Menu, Register, Transfer
from .store import SavedCall, aware, calls, forget_call, journal, utc

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


def _branch(flow: Flow, path: list[str]) -> str | None:
    """The node the main menu first led to."""
    main = flow.settings.main_menu
    for here, after in itertools.pairwise(path):
        if here == main and after != main:
            return after
    return None


def extend(
    flow: Flow, saved: SavedCall | None, before: CallState | None, given: Input, turn: Turn, now: datetime
) -> tuple[str | None, str | None]:
    """The call's journal so far (path, facts as JSON) after this turn; nothing for an anonymous call."""
    if turn.state.anonymous:
        return None, None
    path = json.loads(saved.path) if saved is not None and saved.path else []
    for node in turn.path:
        if not path or path[-1] != node:
            path.append(node)
    found = json.loads(saved.facts) if saved is not None and saved.facts else []
    found += facts(flow, before, given, turn, now)
    return json.dumps(path[-MAX_PATH:]), json.dumps(found)


_START = journal.insert().values(call_sid=sa.bindparam("sid"), started_at=sa.bindparam("at"), anonymous=False)


_EXISTS = sa.select(journal.c.id).where(journal.c.call_sid == sa.bindparam("sid"))


def start(conn: Connection, call_sid: str, now: datetime) -> None:
    """A journal row for a call the server has just met (a late webhook of a finished call keeps its row)."""
    if conn.execute(_EXISTS, {"sid": call_sid}).first() is None:
        conn.execute(_START, {"sid": call_sid, "at": utc(now)})


def anonymize(conn: Connection, call_sid: str, now: datetime) -> None:
    """Reduce a call's row to "an anonymous call happened in this hour"."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    forget = ("call_sid", "branch", "path", "last_node", "facts", "ended_at", "duration")
    values: dict[str, Any] = dict.fromkeys(forget) | {"anonymous": True, "started_at": utc(hour), "end": "anonymous"}
    updated = conn.execute(journal.update().where(journal.c.call_sid == call_sid).values(**values))
    if updated.rowcount == 0:
        conn.execute(journal.insert().values(**values))


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
    """Close a call's row with what its state holds, when Twilio's status callback says it is over."""
    row = conn.execute(sa.select(journal).where(journal.c.call_sid == call_sid)).first()
    call = conn.execute(sa.select(calls).where(calls.c.call_sid == call_sid)).first()
    if row is None or call is None:
        return
    path = json.loads(call.path) if call.path else []
    last_node = json.loads(call.state).get("node")
    computed = int((now - aware(row.started_at)).total_seconds())
    conn.execute(
        journal.update()
        .where(journal.c.id == row.id)
        .values(
            ended_at=utc(now),
            duration=duration if duration is not None else computed,
            path=call.path,
            facts=call.facts,
            branch=_branch(flow, path),
            last_node=last_node,
            end=_how_it_ended(flow, last_node, status),
        )
    )


def purge(conn: Connection, flow: Flow, now: datetime, keep_days: int) -> int:
    """Close the rows of calls silent for a day (no status callback came), forget those calls, and
    delete journal rows older than `keep_days`; returns the rows deleted."""
    stale = utc(now - timedelta(days=1))
    for (call_sid,) in conn.execute(sa.select(calls.c.call_sid).where(calls.c.updated_at < stale)).all():
        finish(conn, flow, call_sid, "no status callback", None, now)
        forget_call(conn, call_sid)
    cutoff = utc(now - timedelta(days=keep_days))
    return int(conn.execute(journal.delete().where(journal.c.started_at < cutoff)).rowcount)

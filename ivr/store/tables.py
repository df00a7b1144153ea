"""The tables, declared once (Alembic's migrations build the same), and how moments are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# The call journal as it happens: one row per answered webhook, appended, never updated. It holds
# the nodes the webhook passed and the kind of input (keys, speech, silence, a transfer's outcome),
# never what the caller said or typed. Twilio's status callback folds a call's rows into ivr_journal.
events = sa.Table(
    "ivr_events",
    metadata,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),  # a retried webhook appends nothing new
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),  # no index: every append would pay for it
    sa.Column("input", sa.String(16), nullable=False),
    sa.Column("path", sa.Text, nullable=False),  # JSON list of the node ids passed, the waiting one last
    sa.Column("facts", sa.Text),  # JSON list: closed schedules, dial outcomes, requests, allowances
    # A call that turned anonymous (the psychologist) keeps one row: its step and hour, nothing else.
    sa.Column("anonymous", sa.Boolean, nullable=False, default=False),
    sa.Column("revision", sa.String(16)),  # the flow's revision the call is on
    # On SQLite one B-tree keyed by (call_sid, step), not a rowid table plus its key's index: an
    # append writes one page, not two, and forgetting a call's events searches one tree.
    sqlite_with_rowid=False,
)

# The answers of webhooks that had an effect (a registered request, a spent allowance), so that a
# retry or the fallback URL repeats them exactly: the same reference, nothing spent twice.
turns = sa.Table(
    "ivr_turns",
    metadata,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("twiml", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), index=True),
)

requests = sa.Table(
    "ivr_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reference", sa.String(16), unique=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("call_sid", sa.String(64), nullable=False, index=True),
    sa.Column("policy", sa.String(64), index=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

allowance_uses = sa.Table(
    "ivr_allowance_uses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("allowance", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("reference", sa.String(16), nullable=False),
    sa.Column("call_sid", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # The guard that makes spending atomic: the n-th use of a period can be taken only once.
    sa.UniqueConstraint("allowance", "key", "period_start", "seq", name="uq_allowance_use"),
)


allowance_audit = sa.Table(
    "ivr_allowance_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # grant, refuse, release
    sa.Column("allowance", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), nullable=False, index=True),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("reference", sa.String(16)),
    sa.Column("reason", sa.Text, nullable=False),
)

journal = sa.Table(
    "ivr_journal",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.String(64), unique=True),  # NULL once a call turned anonymous
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("duration", sa.Integer),
    sa.Column("anonymous", sa.Boolean, nullable=False, default=False),
    sa.Column("branch", sa.String(64)),  # the node the main menu led to first
    sa.Column("path", sa.Text),  # JSON list of node ids, in order
    sa.Column("last_node", sa.String(64)),  # where the call waited last
    sa.Column("end", sa.String(32)),  # goodbye, transferred, abandoned, ...
    sa.Column("facts", sa.Text),  # JSON list: closed schedules, dial outcomes, requests, allowances
    sa.Column("revision", sa.String(16)),  # the flow's revision the call was on
    # (last: revision 0006 added it, and a new database is made with the columns where upgrades put them)
    sa.Column("inputs", sa.Text),  # JSON list of the input kinds, one per webhook (never values)
)

# Every revision of the flow that calls were started on, with its text: any instance, also after a
# restart or a reload, serves a call in progress on the revision it started with.
flow_revisions = sa.Table(
    "ivr_flow_revisions",
    metadata,
    sa.Column("revision", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

closures = sa.Table(
    "ivr_closures",
    metadata,
    sa.Column("schedule", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)


# Call-backs placed: one row per call-back request (made when `ivr callbacks` first looks at it),
# claimed by a conditional UPDATE so that of several workers exactly one places each attempt.
callbacks = sa.Table(
    "ivr_callbacks",
    metadata,
    sa.Column("reference", sa.String(16), primary_key=True),  # the request's reference
    sa.Column("line", sa.String(64), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True)),  # NULL: the line never opens again
    sa.Column("state", sa.String(16), nullable=False),  # due, placed, failed, answered, given-up
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.DateTime(timezone=True), index=True),  # when the next attempt may start
    sa.Column("claim_until", sa.DateTime(timezone=True)),  # a placed call not heard of by then is lost
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

callback_attempts = sa.Table(
    "ivr_callback_attempts",
    metadata,
    sa.Column("reference", sa.String(16), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("worker", sa.String(64), nullable=False),  # which `ivr callbacks run` placed it
    sa.Column("call_sid", sa.String(64), index=True),
    sa.Column("answered_by", sa.String(32)),  # Twilio's AnsweredBy: human, machine_start, fax, unknown
    # connected, not-connected, machine, busy, no-answer, failed, canceled, error, lost; NULL while it runs
    sa.Column("outcome", sa.String(16)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("detail", sa.Text),  # why placing it failed (Twilio's error), never the callee's words
)


def utc(moment: datetime) -> datetime:
    # SQLite drops offsets; keep every stored moment in UTC so comparisons hold everywhere.
    return moment.astimezone(UTC).replace(tzinfo=None)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """One answered webhook of a call, as the journal keeps it."""

    call_sid: str
    step: int
    at: datetime
    input: str
    path: str  # JSON list of node ids
    facts: str | None = None
    anonymous: bool = False
    revision: str | None = None


def insert_ignoring(table: sa.Table, dialect: str) -> Any:
    """An INSERT of `table` that leaves an existing row (the same key) as it is (each dialect's own
    ON CONFLICT DO NOTHING; only the dialect in use is imported)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


def event_values(event: Event) -> dict[str, Any]:
    """An event as the row of `events` it is stored as."""
    return {
        "call_sid": event.call_sid,
        "step": event.step,
        "at": utc(event.at),
        "input": event.input,
        "path": event.path,
        "facts": event.facts,
        "anonymous": event.anonymous,
        "revision": event.revision,
    }

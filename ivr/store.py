"""Persistent call state, cached turns, registered requests and allowance uses (SQLAlchemy Core)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .engine import EffectOutcome, RequestEffect, SpendEffect

metadata = sa.MetaData()

calls = sa.Table(
    "ivr_calls",
    metadata,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

turns = sa.Table(
    "ivr_turns",
    metadata,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("twiml", sa.Text, nullable=False),
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


closures = sa.Table(
    "ivr_closures",
    metadata,
    sa.Column("schedule", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)


def _utc(moment: datetime) -> datetime:
    # SQLite drops offsets; keep every stored moment in UTC so comparisons hold everywhere.
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def reference_for(number: int) -> str:
    """A reference number with a Luhn check digit, so a mistyped reference is caught: 1 -> '100017'."""
    body = str(10000 + number)  # no leading zeros for the caller to hear
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


@dataclass(frozen=True)
class SavedCall:
    """A call's stored step number and state."""

    step: int
    state: str


def make_engine(url: str) -> Engine:
    """An engine with sensible settings for SQLite (WAL, busy timeout) or any other database."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    """All reads and writes of the application; one short transaction per webhook."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        metadata.create_all(self.engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def load_call(self, conn: Connection, call_sid: str) -> SavedCall | None:
        row = conn.execute(sa.select(calls.c.step, calls.c.state).where(calls.c.call_sid == call_sid)).first()
        return SavedCall(row.step, row.state) if row else None

    def cached_turn(self, conn: Connection, call_sid: str, step: int) -> str | None:
        query = sa.select(turns.c.twiml).where(turns.c.call_sid == call_sid, turns.c.step == step)
        return conn.execute(query).scalar()

    def save_turn(
        self, conn: Connection, call_sid: str, step: int, state: str, twiml: str, now: datetime, new: bool
    ) -> None:
        """Store the call's new state and the TwiML of this step (the unique key rejects a racing twin)."""
        values = {"step": step, "state": state, "updated_at": _utc(now)}
        if new:
            conn.execute(calls.insert().values(call_sid=call_sid, **values))
        else:
            conn.execute(calls.update().where(calls.c.call_sid == call_sid).values(**values))
        conn.execute(turns.insert().values(call_sid=call_sid, step=step, twiml=twiml))

    def end_call(self, call_sid: str) -> None:
        """Forget a finished call's state and cached turns (requests stay)."""
        with self.begin() as conn:
            conn.execute(turns.delete().where(turns.c.call_sid == call_sid))
            conn.execute(calls.delete().where(calls.c.call_sid == call_sid))

    def register(self, conn: Connection, call_sid: str, effect: RequestEffect, now: datetime) -> str:
        """Insert a request and give it a reference number."""
        data = dict(effect.data)
        result = conn.execute(
            requests.insert().values(
                kind=effect.kind,
                call_sid=call_sid,
                policy=data.get("policy") or None,
                data=json.dumps(data, ensure_ascii=False, sort_keys=True),
                created_at=_utc(now),
            )
        )
        (row_id,) = result.inserted_primary_key or (0,)
        reference = reference_for(int(row_id))
        conn.execute(requests.update().where(requests.c.id == row_id).values(reference=reference))
        return reference

    def spend(self, conn: Connection, call_sid: str, effect: SpendEffect, now: datetime) -> EffectOutcome:
        """Spend one use and register the request in the caller's transaction, or refuse."""
        c = allowance_uses.c
        period = (c.allowance == effect.allowance) & (c.key == effect.key)
        period &= c.period_start == _utc(effect.period_start)
        mine = conn.execute(sa.select(c.reference).where(period & (c.call_sid == call_sid))).scalar()
        if mine is not None:
            return EffectOutcome(granted=True, reference=mine)
        used, last = conn.execute(sa.select(sa.func.count(), sa.func.max(c.created_at)).where(period)).one()
        if used >= effect.limit:
            return EffectOutcome(granted=False, used_at=_aware(last) if last else None)
        reference = self.register(conn, call_sid, effect.request, now)
        conn.execute(
            allowance_uses.insert().values(
                allowance=effect.allowance,
                key=effect.key,
                period_start=_utc(effect.period_start),
                seq=used + 1,
                reference=reference,
                call_sid=call_sid,
                created_at=_utc(now),
            )
        )
        return EffectOutcome(granted=True, reference=reference)

    def closures(self, conn: Connection) -> dict[str, str]:
        """Emergency closures in force: schedule name -> reason."""
        return {row.schedule: row.reason for row in conn.execute(sa.select(closures.c.schedule, closures.c.reason))}

    def close(self, schedule: str, reason: str, now: datetime) -> None:
        """Switch an emergency closure on (or change its reason)."""
        with self.begin() as conn:
            conn.execute(closures.delete().where(closures.c.schedule == schedule))
            conn.execute(closures.insert().values(schedule=schedule, reason=reason, since=_utc(now)))

    def reopen(self, schedule: str) -> bool:
        """Switch an emergency closure off; False when there was none."""
        with self.begin() as conn:
            return conn.execute(closures.delete().where(closures.c.schedule == schedule)).rowcount > 0

    def list_requests(self, kind: str | None = None) -> list[Mapping[str, Any]]:
        """Registered requests, oldest first."""
        query = sa.select(requests).order_by(requests.c.id)
        if kind:
            query = query.where(requests.c.kind == kind)
        with self.engine.connect() as conn:
            return [
                {**row._mapping, "data": json.loads(row.data), "created_at": _aware(row.created_at)}
                for row in conn.execute(query)
            ]

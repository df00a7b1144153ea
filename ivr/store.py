"""Persistent call state, cached turns, registered requests and allowance uses (SQLAlchemy Core)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import StoreUnavailable

try:  # not on Windows: there SQLite's own busy timeout does the waiting
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

metadata = sa.MetaData()

calls = sa.Table(
    "ivr_calls",
    metadata,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
    # The call's journal so far (JSON), written with the state and copied to ivr_journal at the end.
    sa.Column("path", sa.Text),
    sa.Column("facts", sa.Text),
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
)

closures = sa.Table(
    "ivr_closures",
    metadata,
    sa.Column("schedule", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)


def utc(moment: datetime) -> datetime:
    # SQLite drops offsets; keep every stored moment in UTC so comparisons hold everywhere.
    return moment.astimezone(UTC).replace(tzinfo=None)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SavedCall:
    """A call's stored step number, state and journal so far."""

    step: int
    state: str
    path: str | None = None
    facts: str | None = None


def make_engine(url: str, busy_timeout: float = 5.0) -> Engine:
    """An engine with sensible settings for SQLite (WAL, busy timeout) or any other database.

    Statement parameters never appear in error messages: they hold callers' personal data.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout}, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions, so that each begins IMMEDIATE below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows (a finished call's state, a psychologist call's journal) are overwritten,
            # not left readable in free pages of the file.
            cur.execute("PRAGMA secure_delete=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _immediate(conn: Connection) -> None:
            # Writers take the write lock at the start: two processes that read and then write the
            # same allowance are serialised instead of failing with "database is locked". Readers
            # (Store.read) begin a plain deferred transaction that never waits for writers (WAL).
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("ivr_read") else "BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "postgresql":

        @sa.event.listens_for(engine, "connect")
        def _utc_session(dbapi_conn: Any, _record: Any) -> None:
            # Moments are stored as UTC; the server's own time zone must never matter.
            with dbapi_conn.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
            dbapi_conn.commit()

    return engine


# The statements of every webhook, built once: building a statement costs more than running it.
_LOAD_CALL = sa.select(calls.c.step, calls.c.state, calls.c.path, calls.c.facts).where(
    calls.c.call_sid == sa.bindparam("sid")
)
_CACHED_TURN = sa.select(turns.c.twiml).where(
    turns.c.call_sid == sa.bindparam("sid"), turns.c.step == sa.bindparam("step")
)
_CALL_VALUES: dict[str, Any] = {
    "step": sa.bindparam("new_step"),
    "state": sa.bindparam("state"),
    "updated_at": sa.bindparam("updated_at"),
    "path": sa.bindparam("path"),
    "facts": sa.bindparam("facts"),
}
_INSERT_CALL = calls.insert().values(call_sid=sa.bindparam("sid"), **_CALL_VALUES)
_UPDATE_CALL = (
    calls.update()
    .where(calls.c.call_sid == sa.bindparam("sid"), calls.c.step == sa.bindparam("expected"))
    .values(**_CALL_VALUES)
)
_INSERT_TURN = turns.insert().values(
    call_sid=sa.bindparam("sid"), step=sa.bindparam("new_step"), twiml=sa.bindparam("twiml")
)


def forget_call(conn: Connection, call_sid: str) -> None:
    """Forget a finished call's state and cached turns (requests and the journal stay)."""
    conn.execute(turns.delete().where(turns.c.call_sid == call_sid))
    conn.execute(calls.delete().where(calls.c.call_sid == call_sid))


def migrate(engine: Engine) -> list[str]:
    """Bring the database up to this version's schema, the same way on SQLite and PostgreSQL: create
    missing tables and indexes, add missing (nullable) columns. Returns what it changed."""
    changes: list[str] = []
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        existing = set(inspector.get_table_names())
        for table in metadata.sorted_tables:
            if table.name not in existing:
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    if not column.nullable:
                        raise StoreUnavailable(f"{table.name}.{column.name} is missing and cannot be added")
                    kind = column.type.compile(dialect=conn.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                    changes.append(f"added {table.name}.{column.name}")
        metadata.create_all(conn)  # missing tables and indexes (checkfirst)
    return changes


class _WriterQueue:
    """Serialises SQLite transactions of all threads and processes on one database file.

    SQLite lets one writer in at a time; the others poll with growing sleeps (up to 100 ms each),
    which is what a caller hears as dead air under load. Threads of a process queue on a lock, and
    processes on a lock file polled every half millisecond, so a transaction starts within a
    millisecond of the previous one ending. Other databases (PostgreSQL) need none of this.
    """

    def __init__(self, engine: Engine, timeout: float) -> None:
        self.timeout = timeout
        self.path: str | None = None
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database and database != ":memory:" and fcntl is not None:
            self.path = database + ".lock"
        self.local = threading.Lock()
        self.fd: int | None = None

    def _lock(self, fd: int) -> None:
        # Fine-grained polling, bounded by the timeout: a stuck holder must not hold a caller forever.
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"the database stayed busy for {self.timeout} s") from None
                time.sleep(0.0005)

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self.path is None or fcntl is None:
            yield
            return
        if not self.local.acquire(timeout=self.timeout):
            raise StoreUnavailable(f"the database stayed busy for {self.timeout} s")
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._lock(self.fd)
            try:
                yield
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.local.release()


class Store:
    """All reads and writes of the application; one short transaction per webhook."""

    def __init__(self, url: str, busy_timeout: float = 5.0) -> None:
        self.engine = make_engine(url, busy_timeout)
        self.writers = _WriterQueue(self.engine, busy_timeout)
        migrate(self.engine)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One write transaction on a connection of its own."""
        with self.connection() as conn, self.writing(conn):
            yield conn

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """One connection for a webhook's read and then its write (one pool checkout, not two)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def reading(self, conn: Connection) -> Iterator[Connection]:
        """A read-only transaction on `conn` that waits for no writer."""
        conn.execution_options(ivr_read=True)
        with conn.begin():
            yield conn

    @contextmanager
    def writing(self, conn: Connection) -> Iterator[Connection]:
        """A write transaction on `conn`, queued behind other writers on a SQLite file."""
        conn.execution_options(ivr_read=False)
        with self.writers.turn(), conn.begin():
            yield conn

    def load_call(self, conn: Connection, call_sid: str) -> SavedCall | None:
        row = conn.execute(_LOAD_CALL, {"sid": call_sid}).first()
        return SavedCall(row.step, row.state, row.path, row.facts) if row else None

    def cached_turn(self, conn: Connection, call_sid: str, step: int) -> str | None:
        return conn.execute(_CACHED_TURN, {"sid": call_sid, "step": step}).scalar()

    def save_turn(
        self,
        conn: Connection,
        call_sid: str,
        step: int,
        saved: SavedCall | None,
        new_state: SavedCall,
        twiml: str,
        now: datetime,
    ) -> bool:
        """Store the call's new state and this step's TwiML, if the call is still as it was read.

        False when another webhook of the call changed it in between (the caller starts over);
        a racing twin of this very webhook is rejected by the unique key of the turn (IntegrityError).
        """
        values = {
            "sid": call_sid,
            "new_step": step,
            "state": new_state.state,
            "updated_at": utc(now),
            "path": new_state.path,
            "facts": new_state.facts,
        }
        if saved is None:
            conn.execute(_INSERT_CALL, values)
        elif conn.execute(_UPDATE_CALL, values | {"expected": saved.step}).rowcount != 1:
            return False
        conn.execute(_INSERT_TURN, {"sid": call_sid, "new_step": step, "twiml": twiml})
        return True

    def fork_call(self, source: str, target: str) -> None:
        """Copy a call's state and turns under another CallSid (the crawler explores branches so)."""
        with self.begin() as conn:
            row = conn.execute(sa.select(calls).where(calls.c.call_sid == source)).first()
            if row is None:
                return
            conn.execute(calls.insert().values({**row._mapping, "call_sid": target}))
            for turn in conn.execute(sa.select(turns).where(turns.c.call_sid == source)).all():
                conn.execute(turns.insert().values({**turn._mapping, "call_sid": target}))

    def closures(self, conn: Connection) -> dict[str, str]:
        """Emergency closures in force: schedule name -> reason."""
        return {row.schedule: row.reason for row in conn.execute(sa.select(closures.c.schedule, closures.c.reason))}

    def close(self, schedule: str, reason: str, now: datetime) -> None:
        """Switch an emergency closure on (or change its reason)."""
        with self.begin() as conn:
            conn.execute(closures.delete().where(closures.c.schedule == schedule))
            conn.execute(closures.insert().values(schedule=schedule, reason=reason, since=utc(now)))

    def reopen(self, schedule: str) -> bool:
        """Switch an emergency closure off; False when there was none."""
        with self.begin() as conn:
            return conn.execute(closures.delete().where(closures.c.schedule == schedule)).rowcount > 0

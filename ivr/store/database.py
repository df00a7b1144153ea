"""The store's connection to its database: one SQLAlchemy engine, its pool and its transactions.

Every write is a transaction of SQLAlchemy's own (`Store.begin`): on SQLite it takes the write lock
at once (BEGIN IMMEDIATE, set through the engine's `begin` event) and waits for it as long as
SQLite's own busy timeout says; on PostgreSQL a journal append need not wait for the WAL flush,
while a request or an allowance use does (`durable`). Reads never wait for a writer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ivr.errors import SchemaOutdated, StoreUnavailable
from ivr.store import schema
from ivr.store.checkpoint import Checkpointer
from ivr.store.sqlitefile import WatchedFile
from ivr.store.tables import (
    Event,
    closures,
    event_values,
    events,
    flow_revisions,
    insert_ignoring,
    journal,
    turns,
    utc,
)

_BROKEN = ("readonly database", "disk i/o error", "unable to open database", "no such table", "database disk image")


def is_broken(exc: BaseException) -> bool:
    """An error after which a SQLite connection must be replaced, not used again."""
    return isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and any(
        text in str(exc).lower() for text in _BROKEN
    )


def heal_sqlite_files(database: str | None) -> None:
    """Give the -wal and -shm files back the database file's mode when they were left read-only.

    SQLite creates them with the mode of the database file: a process that opened the database while
    the file was read-only leaves them read-only, and every connection keeps failing after the file
    is writable again. Only files of this process's user are changed, and only their mode: nothing
    written is removed.
    """
    if not database or database == ":memory:":
        return
    try:
        mode = os.stat(database).st_mode & 0o777
        if not os.access(database, os.W_OK):
            return  # still read-only: nothing to heal yet
        for suffix in ("-wal", "-shm"):
            path = database + suffix
            if os.path.exists(path) and not os.access(path, os.W_OK) and os.stat(path).st_uid == os.getuid():
                os.chmod(path, mode)
    except OSError:
        pass  # the next connection says what is wrong


def make_engine(url: str, busy_timeout: float = 5.0) -> Engine:
    """An engine with sensible settings for SQLite (WAL, a busy timeout, writers that take the lock
    at once) or any other database. Statement parameters never appear in error messages: they hold
    callers' personal data."""
    if not url.startswith("sqlite"):
        engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
        if engine.dialect.name == "postgresql":
            _postgresql_events(engine)
        return engine
    engine = sa.create_engine(url, connect_args={"timeout": busy_timeout}, pool_pre_ping=True, hide_parameters=True)
    memory = ":memory:" in url or url in ("sqlite://", "sqlite:///")

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so that each begins as `_begin` says.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            _into_wal(cur, busy_timeout)
        cur.execute("PRAGMA synchronous=NORMAL")
        # Deleted rows (a finished call's state, a psychologist call's journal) are overwritten,
        # not left readable in free pages of the file.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the write lock at the start: two processes that read and then write the same
        # allowance are serialised instead of failing with "database is locked". Readers begin a
        # deferred transaction that never waits for writers (WAL).
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("ivr_read") else "BEGIN IMMEDIATE")

    @sa.event.listens_for(engine, "handle_error")
    def _replace_broken(context: Any) -> None:
        # A pooled connection that met a read-only file, an I/O error or a vanished file is not
        # reused: the next webhook opens a new one, so a fault fixed meanwhile is behind it.
        if is_broken(context.original_exception):
            context.is_disconnect = True
            heal_sqlite_files(engine.url.database)

    return engine


def _into_wal(cursor: Any, timeout: float) -> None:
    """Switch a SQLite file to WAL. The switch needs the file's exclusive lock and, unlike every
    other statement, fails at once while another process holds a lock (SQLite's busy timeout is
    not consulted for it): so it is tried again, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _postgresql_events(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _session(dbapi_conn: Any, _record: Any) -> None:
        # Moments are stored as UTC; the server's own time zone must never matter. A journal line
        # need not wait for the WAL flush (a crash loses at most the last fraction of a second of
        # them, as with SQLite's synchronous NORMAL); a durable transaction says so (`_begin`).
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
            cur.execute("SET synchronous_commit TO off")
        dbapi_conn.commit()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        if conn.get_execution_options().get("ivr_durable", True) and not conn.get_execution_options().get("ivr_read"):
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")


class Store:
    """All reads and writes of the application; one short transaction per webhook."""

    def __init__(self, url: str, busy_timeout: float = 5.0, file_prepared: bool = False) -> None:
        self.engine = make_engine(url, busy_timeout)
        self.busy_timeout = busy_timeout
        self.sqlite = self.engine.dialect.name == "sqlite"
        self._ready = False  # the schema was found current (until the file is deleted or replaced)
        self._ready_lock = threading.Lock()
        # SQLite lets one writer in at a time. Threads of this process queue here for it, and the
        # next is woken the moment the last commits; left to SQLite's busy handler, each would
        # sleep 1, 2, 5 ... 100 ms between tries, the tail callers hear as a pause at load. Other
        # processes still meet SQLite's own lock (one contender per process, not one per thread).
        self._writer = threading.RLock() if self.sqlite else None
        database = self.engine.url.database
        # `file_prepared`: the SQLite file was made before this process started (gunicorn's master):
        # missing, it is a fault, never a first start.
        file_db = self.sqlite and bool(database) and database != ":memory:"
        self._file = WatchedFile(str(database), must_exist=file_prepared) if file_db else None
        if self._file is not None:
            self._file.install(self.engine)
        # A SQLite file's WAL is checkpointed by a thread, never inside a webhook's commit.
        self._checkpoints = Checkpointer(self.engine) if self._file is not None else None
        self._not_ready: tuple[float, str] | None = None  # when it was last found wanting, and why
        dialect = self.engine.dialect.name
        self._append = insert_ignoring(events, dialect)
        self._close = insert_ignoring(journal, dialect)

    def ready(self) -> None:
        """Raise unless the database is reachable and its schema current. An empty database is given
        the schema first (never a SQLite file that replaced the one served from); a schema older
        than the code raises SchemaOutdated (checked again at most every 2 s, so that the first
        webhook after `ivr db upgrade` is served); a SQLite file deleted or moved away raises
        StoreUnavailable until it is back."""
        moved = self._file.problem() if self._file is not None else ""
        if self._ready and not moved:
            return
        with self._ready_lock:
            moved = self._file.problem() if self._file is not None else ""
            if self._ready and not moved:
                return
            self._ready = False
            if moved and moved != "replaced":
                raise StoreUnavailable(moved)
            moment = time.monotonic()
            if self._not_ready is not None and moment - self._not_ready[0] < 2.0 and not moved:
                raise SchemaOutdated(self._not_ready[1])
            with self.engine.connect() as conn:
                conn.execution_options(ivr_read=True)  # a read: it must not take SQLite's write lock
                found = schema.revision(conn)
            if found.empty and self._file is not None and (self._file.served or moved == "replaced"):
                raise StoreUnavailable(
                    f"the database file {self._file.path} was replaced by one without the schema: put the "
                    "right file back (or `ivr db upgrade` to start anew on purpose)"
                )
            if found.empty:
                found = schema.upgrade(self.engine)[1]
            if not found.up_to_date:
                self._not_ready = (moment, found.describe())
                raise SchemaOutdated(found.describe())
            self._ready, self._not_ready = True, None
            if self._file is not None:
                self._file.seen, self._file.served = self._file.identity(), True

    @contextmanager
    def begin(self, durable: bool = True) -> Iterator[Connection]:
        """One write transaction, committed when the block ends and rolled back whole when it raises.
        `durable`: on PostgreSQL it waits for the WAL flush, as requests and allowance uses must."""
        self.ready()
        with self._writing(), self.engine.connect() as conn:
            conn.execution_options(ivr_read=False, ivr_durable=durable)
            with conn.begin():
                yield conn
        if self._checkpoints is not None:
            self._checkpoints.wrote()

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """This process's turn to write (SQLite); past the busy timeout, SQLite's own lock decides."""
        if self._writer is None:
            yield
            return
        turn = self._writer.acquire(timeout=self.busy_timeout)
        try:
            yield
        finally:
            if turn:
                self._writer.release()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A pooled connection of the schema-checked database (the caller begins what it needs)."""
        self.ready()
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def reading(self, conn: Connection) -> Iterator[Connection]:
        """A read-only transaction on `conn` that waits for no writer."""
        conn.execution_options(ivr_read=True)
        with conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction on a connection of its own."""
        with self.connection() as conn, self.reading(conn):
            yield conn

    def append(self, event: Event, conn: Connection | None = None) -> None:
        """Append one webhook to the journal, nothing if it is already there (a retried webhook): in
        the transaction `conn` when given (a webhook with an effect), else in one of its own."""
        if conn is not None:
            conn.execute(self._append, event_values(event))
            return
        with self.begin(durable=False) as own:
            own.execute(self._append, event_values(event))

    def forget(self, conn: Connection, call_sid: str) -> None:
        """Forget a call's appended events (its journal row, requests and turns stay)."""
        conn.execute(events.delete().where(events.c.call_sid == call_sid))

    def fold(self, call_sid: str, row: Callable[[list[Event], dict[str, Any] | None], dict[str, Any] | None]) -> bool:
        """Fold a call's events (oldest first) into its journal row and forget them, in one
        transaction that holds the events: of status callbacks racing for the same call exactly one
        folds (the others find nothing), anonymous calls too, whose rows carry no CallSid to refuse
        a second. `row` is given the call's row when there is one already (events that came after
        the call was closed, like a transfer's outcome) and returns its new values. False when the
        call had no events (nothing was written)."""
        with self.read() as conn:  # most repeats find nothing: they take no write lock
            if conn.execute(sa.select(events.c.step).where(events.c.call_sid == call_sid).limit(1)).first() is None:
                return False
        with self.begin(durable=False) as conn:
            held = sa.select(*events.c).where(events.c.call_sid == call_sid).with_for_update()
            taken = conn.execute(held).all()
            if not taken:
                return False
            found = sorted((Event(*r) for r in taken), key=lambda e: e.step)
            existing = conn.execute(sa.select(journal).where(journal.c.call_sid == call_sid)).first()
            values = row(found, dict(existing._mapping) if existing is not None else None)
            if values is not None and existing is None:
                conn.execute(self._close, {c.name: values.get(c.name) for c in journal.c if c.name != "id"})
            elif values is not None and existing is not None:
                changed = {k: v for k, v in values.items() if k in journal.c and k != "id"}
                conn.execute(journal.update().where(journal.c.id == existing.id).values(**changed))
            conn.execute(events.delete().where(events.c.call_sid == call_sid, events.c.step <= found[-1].step))
        return True

    def dispose(self) -> None:
        """Close every connection (a SQLite file is checkpointed and its WAL removed when the last
        one closes, so deleted rows do not linger there)."""
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self.engine.dispose()

    def turn(self, conn: Connection, call_sid: str, step: int) -> str | None:
        """The stored answer of a webhook that had an effect, or None."""
        found = conn.execute(sa.select(turns.c.twiml).where(turns.c.call_sid == call_sid, turns.c.step == step))
        return found.scalar()

    def save_turn(self, conn: Connection, call_sid: str, step: int, twiml: str, now: datetime) -> None:
        """Keep a webhook's answer; a racing twin of it fails here (IntegrityError) and is answered again."""
        conn.execute(turns.insert().values(call_sid=call_sid, step=step, twiml=twiml, created_at=utc(now)))

    def keep_revision(self, revision: str, name: str, source: str, now: datetime) -> None:
        """Keep a flow revision's text (once: a revision never changes)."""
        with self.begin() as conn:  # another instance may have kept it first: that row stays
            conn.execute(
                insert_ignoring(flow_revisions, self.engine.dialect.name),
                {"revision": revision, "name": name, "source": source, "created_at": utc(now)},
            )

    def revision_source(self, revision: str) -> str | None:
        """The text of a kept flow revision, or None."""
        with self.read() as conn:
            found = conn.execute(sa.select(flow_revisions.c.source).where(flow_revisions.c.revision == revision))
            return found.scalar()

    def closures(self) -> dict[str, str]:
        """Emergency closures in force: schedule name -> reason (read when a schedule branch asks)."""
        with self.read() as conn:
            return {str(s): str(r) for s, r in conn.execute(sa.select(closures.c.schedule, closures.c.reason))}

    def close(self, schedule: str, reason: str, now: datetime) -> None:
        """Switch an emergency closure on (or change its reason)."""
        with self.begin() as conn:
            conn.execute(closures.delete().where(closures.c.schedule == schedule))
            conn.execute(closures.insert().values(schedule=schedule, reason=reason, since=utc(now)))

    def reopen(self, schedule: str) -> bool:
        """Switch an emergency closure off; False when there was none."""
        with self.begin() as conn:
            return conn.execute(closures.delete().where(closures.c.schedule == schedule)).rowcount > 0

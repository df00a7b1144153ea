"""The store: journal events, stored answers of effect webhooks, the journal, requests, allowance uses, closures."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from ivr.errors import SchemaOutdated, StoreUnavailable
from ivr.store import schema as database
from ivr.store.compiled import Compiled
from ivr.store.groupcommit import GroupCommit

T = TypeVar("T")
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


_GROUP = 64  # events appended by one statement at most (8 values each: within SQLite's 999)

_LOCKED = ("database is locked", "database table is locked", "database is busy")


def is_locked(exc: BaseException) -> bool:
    """Whether `exc` is SQLite's write lock being taken (worth waiting for, not a failure)."""
    return isinstance(exc, sqlite3.OperationalError | sa.exc.OperationalError) and any(
        text in str(exc) for text in _LOCKED
    )


def until_free(attempt: Callable[[], T], timeout: float) -> T:
    """`attempt()`, tried again while SQLite's write lock is taken, for at most `timeout` seconds.

    SQLite's own busy handler sleeps 1 ms, then 2, 5, 10 ... up to 100 ms between tries, while a
    webhook holds the lock for well under a millisecond: under load that is dead air on the line.
    Polling from 50 µs, doubling to 1 ms, a writer starts right after the one before it ends.
    """
    deadline: float | None = None
    pause = 0.00005
    while True:
        try:
            return attempt()
        except (sqlite3.OperationalError, sa.exc.OperationalError) as exc:
            if not is_locked(exc):
                raise
            moment = time.monotonic()
            if deadline is None:
                deadline = moment + timeout
            elif moment > deadline:
                raise StoreUnavailable(f"the database stayed busy for {timeout} s") from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.001)


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
    """An engine with sensible settings for SQLite (WAL, our own busy waiting) or any other database.

    Statement parameters never appear in error messages: they hold callers' personal data.
    """
    if url.startswith("sqlite"):
        # SQLite's own busy handler is off (timeout 0): `until_free` waits instead, in finer steps.
        engine = sa.create_engine(url, connect_args={"timeout": 0}, hide_parameters=True)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions, so that each begins IMMEDIATE below.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                until_free(lambda: cur.execute("PRAGMA journal_mode=WAL"), busy_timeout)
            cur.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows (a finished call's state, a psychologist call's journal) are overwritten,
            # not left readable in free pages of the file.
            cur.execute("PRAGMA secure_delete=ON")
            cur.execute("PRAGMA busy_timeout=0")
            cur.close()

        @sa.event.listens_for(engine, "handle_error")
        def _replace_broken(context: Any) -> None:
            # A pooled connection that met a read-only file, an I/O error or a vanished file is not
            # reused: the next webhook opens a new one, so a fault fixed meanwhile is behind it.
            if is_broken(context.original_exception):
                context.is_disconnect = True
                heal_sqlite_files(engine.url.database)

        @sa.event.listens_for(engine, "begin")
        def _immediate(conn: Connection) -> None:
            # Writers take the write lock at the start: two processes that read and then write the
            # same allowance are serialised instead of failing with "database is locked". Readers
            # (Store.read) begin a plain deferred transaction that never waits for writers (WAL).
            if conn.get_execution_options().get("ivr_read"):
                conn.exec_driver_sql("BEGIN")
            else:
                until_free(lambda: conn.exec_driver_sql("BEGIN IMMEDIATE"), busy_timeout)

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


_TURN = sa.select(turns.c.twiml).where(turns.c.call_sid == sa.bindparam("sid"), turns.c.step == sa.bindparam("step"))
_INSERT_TURN = turns.insert().values(
    call_sid=sa.bindparam("sid"), step=sa.bindparam("step"), twiml=sa.bindparam("twiml"), created_at=sa.bindparam("at")
)


_BY_SID = events.c.call_sid == sa.bindparam("sid")
_FORGET = events.delete().where(_BY_SID)
_FORGET_UPTO = events.delete().where(_BY_SID, events.c.step <= sa.bindparam("upto"))
_SELECT = sa.select(*events.c).where(_BY_SID)
_CLOSURES = sa.select(closures.c.schedule, closures.c.reason)


class Transaction:
    """One write transaction on this thread's own DB-API connection (`Store.transaction`): SQLAlchemy
    Core statements, each compiled once per database (`Compiled`), run straight on its cursor. A
    unique key violated raises SQLAlchemy's IntegrityError, whatever the driver."""

    def __init__(self, store: Store, cursor: Any) -> None:
        self.cursor = cursor
        self.sqlite = store.sqlite
        self._store = store
        self._integrity = store.engine.dialect.loaded_dbapi.IntegrityError

    def run(self, statement: sa.sql.expression.ClauseElement, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute `statement`; the rows it returns (converted), for one that returns any."""
        compiled = self._store.compiled(statement)
        try:
            return compiled.run(self.cursor, values)
        except self._integrity as exc:
            raise sa.exc.IntegrityError(compiled.sql, None, exc) from exc

    def inserted(self, statement: sa.Insert, returning: sa.Insert, values: Mapping[str, Any]) -> int:
        """Execute an INSERT; the generated key of its row (`returning`: the same INSERT returning it)."""
        if self.sqlite:  # lastrowid: also on a SQLite older than RETURNING (3.35)
            self.run(statement, values)
            return int(self.cursor.lastrowid)
        ((found,),) = self.run(returning, values)
        return int(found)


def forget_call(tx: Transaction, call_sid: str) -> None:
    """Forget a finished call's appended events (its journal row, requests and turns stay)."""
    tx.run(_FORGET, {"sid": call_sid})


def written(table: sa.Table) -> tuple[str, ...]:
    """The columns an INSERT of `table` writes: all but a generated id."""
    return tuple(c.name for c in table.c if c.name != "id")


_JOURNAL_WRITTEN = written(journal)


def insert_ignoring(table: sa.Table, dialect: str, rows: int = 1) -> Any:
    """INSERT of every column but a generated id that leaves an existing row (same key) as it is;
    of `rows` rows, whose values are named `<column>_<row>` when there is more than one."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    names = written(table)
    if rows == 1:
        return insert(table).values({name: sa.bindparam(name) for name in names}).on_conflict_do_nothing()
    many: list[dict[str, Any]] = [{name: sa.bindparam(f"{name}_{row}") for name in names} for row in range(rows)]
    return insert(table).values(many).on_conflict_do_nothing()


def _event_values(event: Event) -> dict[str, Any]:
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


class Store:
    """All reads and writes of the application; one short transaction per webhook."""

    def __init__(self, url: str, busy_timeout: float = 5.0) -> None:
        self.engine = make_engine(url, busy_timeout)
        self.busy_timeout = busy_timeout
        self._appender = threading.local()
        self._appenders: list[Any] = []  # every thread's, so that dispose() closes them all
        self._appenders_lock = threading.Lock()
        self._ready = False  # the schema was found current (it never goes back)
        self._ready_lock = threading.Lock()
        self._not_ready: tuple[float, str] | None = None  # when it was last found wanting, and why
        dialect = self.engine.dialect
        self.sqlite = dialect.name == "sqlite"
        self._compiled: dict[Any, Compiled] = {}  # statement -> compiled for this database (`compiled`)
        self._append = insert_ignoring(events, dialect.name)
        self._append_rows: dict[int, Any] = {}  # rows -> the INSERT of that many events (`_append_group`)
        self._appends: GroupCommit[dict[str, Any]] = GroupCommit(self._append_group, _GROUP)
        self._close = insert_ignoring(journal, dialect.name)
        # On PostgreSQL a call's journal row is written and its events forgotten by one statement
        # (the INSERT as a CTE of the DELETE): one round trip, one transaction (`fold`).
        self._close_and_forget: sa.Delete | None = None
        if dialect.name == "postgresql":
            self._close_and_forget = _FORGET_UPTO.add_cte(self._close.cte("closed"))

    def compiled(self, statement: sa.sql.expression.ClauseElement) -> Compiled:
        """`statement` compiled for this database, once (the webhook path's statements run so)."""
        found = self._compiled.get(statement)
        if found is None:
            found = self._compiled.setdefault(statement, Compiled(statement, self.engine.dialect))
        return found

    def ready(self) -> None:
        """Raise unless the database is reachable and its schema current. An empty database is given
        the schema first; a schema older than the code raises SchemaOutdated (checked again at most
        every 2 s, so that the first webhook after `ivr db upgrade` is served)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            moment = time.monotonic()
            if self._not_ready is not None and moment - self._not_ready[0] < 2.0:
                raise SchemaOutdated(self._not_ready[1])
            with self.engine.connect() as conn:
                conn.execution_options(ivr_read=True)  # a read: it must not take SQLite's write lock
                found = database.revision(conn)
            if found.empty:
                found = database.upgrade(self.engine)[1]
            if not found.up_to_date:
                self._not_ready = (moment, found.describe())
                raise SchemaOutdated(found.describe())
            self._ready, self._not_ready = True, None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One write transaction on a connection of its own."""
        with self.connection() as conn, self.writing(conn):
            yield conn

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A pooled connection, for the admin side (the CLI, reports, call-backs placed); webhooks
        run on their thread's own connection (`transaction`, `append`, `fold`)."""
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
    def writing(self, conn: Connection) -> Iterator[Connection]:
        """A write transaction on `conn` (on SQLite it takes the write lock at once)."""
        conn.execution_options(ivr_read=False)
        with conn.begin():
            yield conn

    def append(self, event: Event) -> None:
        """Append one webhook to the journal: one short durable write, nothing if it is already there
        (a retried webhook). It returns once the row is committed; the rows that other threads of
        the process append meanwhile are committed with it, in one statement (`GroupCommit`)."""
        self._appends.submit(_event_values(event))

    def _append_group(self, rows: list[dict[str, Any]]) -> None:
        if len(rows) == 1:
            self._write(self._append, rows[0])
            return
        statement = self._append_rows.get(len(rows))
        if statement is None:
            statement = self._append_rows.setdefault(
                len(rows), insert_ignoring(events, self.engine.dialect.name, len(rows))
            )
        self._write(statement, {f"{name}_{n}": value for n, row in enumerate(rows) for name, value in row.items()})

    def fold(self, call_sid: str, row: Callable[[list[Event]], dict[str, Any] | None]) -> bool:
        """Write the journal row `row` makes of a call's events (oldest first), then forget them; a
        row already there (a late webhook of a call already closed) stays. False when the call had
        no events (nothing was written).

        Read, then on SQLite two single-statement writes, not one transaction: the write lock is
        then held only inside each statement, never while this thread waits for the GIL (every other
        webhook's append would wait as long). Nothing is lost between them: events still there after
        their row was written (the process died in between) are found by `ivr purge`, which keeps
        the row as it was written and forgets them. On PostgreSQL both writes are one statement.
        """
        taken = self._read(_SELECT, {"sid": call_sid})
        if not taken:
            return False
        events_ = sorted((Event(*r) for r in taken), key=lambda e: e.step)
        values = row(events_)
        forget = {"sid": call_sid, "upto": events_[-1].step}
        if values is None:
            self._write(_FORGET_UPTO, forget)
            return True
        closed = {name: values.get(name) for name in _JOURNAL_WRITTEN}
        if self._close_and_forget is not None:
            self._write(self._close_and_forget, closed | forget)
        else:
            self._write(self._close, closed)
            self._write(_FORGET_UPTO, forget)
        return True

    def _write(self, statement: sa.sql.expression.ClauseElement, values: Mapping[str, Any]) -> None:
        """One statement, committed on its own, on this thread's connection (it runs each statement
        on its own: no BEGIN before it, no COMMIT after it)."""
        compiled = self.compiled(statement)
        self._own(lambda cursor: compiled.run(cursor, values), self.sqlite)

    def _read(self, statement: sa.sql.expression.ClauseElement, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one query on this thread's connection (a read: it waits for no writer)."""
        compiled = self.compiled(statement)
        return self._own(lambda cursor: compiled.run(cursor, values), False)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Transaction]:
        """One write transaction on this thread's own connection, committed when the block ends and
        rolled back whole when it raises. On SQLite it takes the write lock at once (waiting for it
        as `until_free` does); on PostgreSQL a `durable` one waits for the WAL flush, as requests
        and allowance uses must (the journal's own writes need not, see `_open_raw`)."""

        def begin(cursor: Any) -> Any:
            if self.sqlite:
                cursor.execute("BEGIN IMMEDIATE")
            elif durable:  # the connection's own setting is off (`_open_raw`); one round trip for both
                cursor.execute("BEGIN; SET LOCAL synchronous_commit TO on")
            else:
                cursor.execute("BEGIN")
            return cursor

        cursor = self._own(begin, self.sqlite)
        try:
            yield Transaction(self, cursor)
            cursor.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                cursor.execute("ROLLBACK")
            if not isinstance(exc, sa.exc.IntegrityError):  # a conflict, rolled back: the connection is sound
                self._discard(exc)
            raise

    def _own(self, do: Callable[[Any], T], waits: bool) -> T:
        """`do(cursor)` on this thread's own DB-API connection (no pool checkout, no reset on return):
        the webhook path runs so. `waits`: SQLite's write lock taken is waited for (`until_free`).
        A connection that failed (read-only, locked too long, gone) is dropped, and the next call
        opens a new one; one found dead (the server restarted, an idle connection was cut) is
        replaced at once and `do` tried on the new one, since nothing was done on the old."""
        self.ready()
        own = self._appender
        for attempt in range(2):
            cursor = getattr(own, "cursor", None)
            reused = cursor is not None
            if cursor is None:
                cursor = self._open_raw()
            try:
                try:
                    return do(cursor)
                except sqlite3.OperationalError as exc:
                    if not waits or not is_locked(exc):
                        raise
                    return until_free(partial(do, cursor), self.busy_timeout)
            except BaseException as exc:
                dead = reused and not attempt and self._dead(exc, own.connection)
                self._discard(exc)
                if not dead:
                    raise
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _discard(self, exc: BaseException) -> None:
        """Drop this thread's connection after `exc`; the next call opens a new one."""
        raw = getattr(self._appender, "connection", None)
        self._appender.connection = self._appender.cursor = None
        if raw is not None:
            self._drop(raw)
        if is_broken(exc):
            heal_sqlite_files(self.engine.url.database)

    def _open_raw(self) -> Any:
        """A new connection of this thread's own; its cursor."""
        raw = self.engine.raw_connection()
        raw.detach()  # ours for good: the pool neither lends it out nor resets it
        if not self.sqlite:
            # One statement is one round trip: no BEGIN before it, no COMMIT after it (`transaction`
            # says BEGIN itself), as with SQLite, whose connections run so too (`make_engine`).
            driver = raw.dbapi_connection
            assert driver is not None  # just opened
            driver.autocommit = True
            # The journal's writes need not wait for the WAL flush: after a server crash the last
            # fraction of a second of journal events may be gone, as with SQLite's synchronous
            # NORMAL. A durable transaction (requests, allowance uses) waits for it (`transaction`).
        cursor = raw.cursor()  # kept with the connection: every statement of this thread runs on it
        if not self.sqlite:
            cursor.execute("SET synchronous_commit TO off")
        self._appender.connection, self._appender.cursor = raw, cursor
        with self._appenders_lock:
            self._appenders.append(raw)
        return cursor

    def _dead(self, exc: BaseException, raw: Any) -> bool:
        """Whether `exc` says the connection is gone (not that the statement was wrong)."""
        dialect = self.engine.dialect
        if not isinstance(exc, dialect.loaded_dbapi.Error):
            return False
        return bool(dialect.is_disconnect(exc, getattr(raw, "dbapi_connection", raw), None))

    def _drop(self, raw: Any) -> None:
        with self._appenders_lock:
            if raw in self._appenders:
                self._appenders.remove(raw)
        with contextlib.suppress(Exception):
            raw.close()

    def dispose(self) -> None:
        """Close every connection (a SQLite file is checkpointed and its WAL removed when the last
        one closes, so deleted rows do not linger there)."""
        with self._appenders_lock:
            appenders, self._appenders = self._appenders, []
        for raw in appenders:
            with contextlib.suppress(Exception):
                raw.close()
        self._appender = threading.local()
        self.engine.dispose()

    def append_in(self, tx: Transaction, event: Event) -> None:
        """`append` inside a transaction of the caller's (a webhook with an effect)."""
        tx.run(self._append, _event_values(event))

    def turn(self, tx: Transaction, call_sid: str, step: int) -> str | None:
        """The stored answer of a webhook that had an effect, or None."""
        found = tx.run(_TURN, {"sid": call_sid, "step": step})
        return str(found[0][0]) if found else None

    def save_turn(self, tx: Transaction, call_sid: str, step: int, twiml: str, now: datetime) -> None:
        """Keep a webhook's answer; a racing twin of it fails here (IntegrityError) and is answered again."""
        tx.run(_INSERT_TURN, {"sid": call_sid, "step": step, "twiml": twiml, "at": utc(now)})

    def keep_revision(self, revision: str, name: str, source: str, now: datetime) -> None:
        """Keep a flow revision's text (once: a revision never changes)."""
        with self.begin() as conn:  # another instance may have kept it first: that row stays
            conn.execute(
                insert_ignoring(flow_revisions, self.engine.dialect.name),
                {"revision": revision, "name": name, "source": source, "created_at": utc(now)},
            )

    def revision_source(self, revision: str) -> str | None:
        """The text of a kept flow revision, or None."""
        with self.connection() as conn, self.reading(conn):
            found = conn.execute(sa.select(flow_revisions.c.source).where(flow_revisions.c.revision == revision))
            return found.scalar()

    def closures(self) -> dict[str, str]:
        """Emergency closures in force: schedule name -> reason (read when a schedule branch asks)."""
        return dict(self._read(_CLOSURES, {}))

    def close(self, schedule: str, reason: str, now: datetime) -> None:
        """Switch an emergency closure on (or change its reason)."""
        with self.begin() as conn:
            conn.execute(closures.delete().where(closures.c.schedule == schedule))
            conn.execute(closures.insert().values(schedule=schedule, reason=reason, since=utc(now)))

    def reopen(self, schedule: str) -> bool:
        """Switch an emergency closure off; False when there was none."""
        with self.begin() as conn:
            return conn.execute(closures.delete().where(closures.c.schedule == schedule)).rowcount > 0

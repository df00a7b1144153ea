"""SQLite's WAL checkpoints, kept off the webhooks' path.

In WAL mode SQLite copies the log back into the database file (a checkpoint: with synchronous=NORMAL
the only moment it waits for the disk) inside whichever commit takes the log past 1,000 pages. That
webhook waits for the disk, and so does every thread of its process queued behind it for the write
lock: the tail callers hear as a pause. A store's connections switch that off (`wal_autocheckpoint=0`)
and one thread per store checkpoints instead, PASSIVE (it neither waits for nor blocks a reader or a
writer), at most once per `interval` while something was written. The thread starts with the first
write and ends after a while without any, so short commands and tests leave none behind; SQLite
still checkpoints and removes the log when the last connection closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger("ivr.store")

IDLE_ROUNDS = 10  # intervals without a write before the thread ends (it starts again with the next)


class Checkpointer:
    """Checkpoints one SQLite file's WAL from a thread of its own while the file is written."""

    def __init__(self, engine: Engine, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self._dirty = False
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

        @sa.event.listens_for(engine, "connect")
        def _manual(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.close()

    def wrote(self) -> None:
        """Something was committed: the log is checkpointed within `interval`."""
        self._dirty = True
        if self._running():
            return
        with self._lock:
            if self._running():
                return
            self._stopped = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stopped,), name="ivr-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def _running(self) -> bool:
        thread = self._thread  # not alive: never started, ended idle, or this is a forked child
        return thread is not None and thread.is_alive()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint now: (busy, pages in the log, pages copied), or None on failure
        (the next round tries again; a broken file is the store's to report, not this thread's)."""
        try:
            # On the driver's connection: outside any transaction, which a checkpoint cannot be in.
            with self.engine.connect() as conn:
                driver: sqlite3.Connection = conn.connection.dbapi_connection  # type: ignore[assignment]
                row = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except (sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
            log.debug("WAL checkpoint failed: %s", exc)
            return None
        return int(row[0]), int(row[1]), int(row[2])

    def _run(self, stopped: threading.Event) -> None:
        idle = 0
        while not stopped.wait(self.interval):
            if not self._dirty:
                idle += 1
                if idle >= IDLE_ROUNDS:
                    return
                continue
            idle, self._dirty = 0, False
            self.checkpoint()

    def stop(self) -> None:
        """End the thread (the store is being disposed; a later write starts another). The last
        checkpoint is SQLite's own, when the last connection closes."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

"""The queue of a SQLite file's writers: threads and processes take turns, the next one at once.

SQLite lets one writer in at a time. Left to SQLite, a writer that finds the lock taken sleeps in
its busy handler, 1, 2, 5, 10 ... 100 ms between tries, and while the writers of one busy process
hand the lock to each other, another process's writer goes on sleeping longer: the tail callers
hear as a pause at load. Here the threads of a process queue on a lock of the process, and the
processes on an advisory lock (flock) of a file beside the database, `<file>-writers`: the next
thread goes in the moment the last one leaves, the next process within half a millisecond. Past
the busy timeout a writer goes in anyway, and SQLite's own lock decides; when the lock file cannot
be opened (a read-only folder), threads still queue and processes meet at SQLite's lock, as before.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

log = logging.getLogger("ivr.store")

POLL = 0.0005  # seconds between two tries for another process's turn


class Writers:
    """Turns at writing one SQLite file, for the threads of this process and for other processes."""

    def __init__(self, database: str | None, timeout: float) -> None:
        self.path = f"{database}-writers" if database else None
        self.timeout = timeout
        self._threads = threading.RLock()
        self._depth = 0  # turns the owning thread holds (a turn within a turn takes no second lock)
        self._fd: int | None = None
        self._pid = 0  # the process that opened `_fd`: a forked child opens its own

    @contextmanager
    def turn(self) -> Iterator[None]:
        """This thread's turn to write; after `timeout` seconds of waiting it goes on regardless."""
        deadline = time.monotonic() + self.timeout
        mine = self._threads.acquire(timeout=self.timeout)
        held = False
        try:
            if mine:
                self._depth += 1
                held = self._depth == 1 and self._lock_file(deadline)
            yield
        finally:
            if mine:
                if held:
                    self._unlock_file()
                self._depth -= 1
                self._threads.release()

    def _file(self) -> int | None:
        if self.path is None:
            return None
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        try:
            self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        except OSError:
            try:  # a file that is there but read-only still takes the lock
                self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
            except OSError as exc:
                log.debug("no writers' lock file %s: %s", self.path, exc)
                self.path = None
                return None
        return self._fd

    def _lock_file(self, deadline: float) -> bool:
        fd = self._file()
        if fd is None:
            return False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(POLL)
            except OSError as exc:
                log.debug("writers' lock file %s: %s", self.path, exc)
                return False

    def _unlock_file(self) -> None:
        if self._fd is not None:
            with suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (a later turn opens it again)."""
        with self._threads:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

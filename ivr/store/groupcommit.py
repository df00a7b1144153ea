"""Group commit: the rows that many threads append at once, written by one of them in one statement.

Every webhook appends one row to the journal and may answer only once that row is committed. Each
commit on its own costs little in the database but a lot in the process: the driver lets go of the
GIL around every call into the database, and with several threads per worker each of those
hand-offs costs more CPU than the write itself (`benchmarks/README.md`). So the rows that arrive
while a write is in progress wait, and the next write takes them all: the first thread to arrive
writes (the leader), the others sleep until their row is committed or failed, and a waiting one
leads the next group. No thread of its own, nothing buffered past a write: a thread returns only
when its row is committed, exactly as if it had written alone, and alone (no other thread
appending) it writes at once.
"""

from __future__ import annotations

import copy
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Waiting(Generic[T]):
    __slots__ = ("error", "lead", "row", "woken")

    def __init__(self, row: T) -> None:
        self.row = row
        self.woken = threading.Lock()
        self.woken.acquire()  # released when the row is written, failed, or its thread is to lead
        self.lead = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """Rows of many threads, committed in groups by `write(rows)` (all or none of a group)."""

    def __init__(self, write: Callable[[list[T]], None], most: int = 64) -> None:
        self._write = write
        self._most = most
        self._lock = threading.Lock()
        self._queue: list[_Waiting[T]] = []
        self._leading = False  # a thread is writing a group (the queue is never left without one)
        self.groups = 0  # groups written, and rows in them (what the tests look at)
        self.rows = 0
        _EVERY.add(self)

    def _forked(self) -> None:
        # A child process has only the thread that forked: a write another thread was making, and
        # the rows waiting for it, are the parent's. The child starts with no group in progress.
        self._lock = threading.Lock()
        self._queue = []
        self._leading = False

    def submit(self, row: T) -> None:
        """Return once `row` is committed; raise what its group's write raised."""
        waiting: _Waiting[T] | None = None
        with self._lock:
            if self._leading:  # a write is in progress: wait, then be written with the next group
                waiting = _Waiting(row)
                self._queue.append(waiting)
            else:
                self._leading = True
        if waiting is None:  # the queue was empty: write alone, at once
            self._lead([row], [])
            return
        waiting.woken.acquire()
        if not waiting.lead:
            if waiting.error is not None:
                raise _again(waiting.error)
            return
        # This thread leads the next group: its own row is the first of the queue.
        with self._lock:
            group, self._queue = self._queue[: self._most], self._queue[self._most :]
        self._lead([w.row for w in group], group[1:])

    def _lead(self, rows: list[T], others: list[_Waiting[T]]) -> None:
        error: BaseException | None = None
        try:
            self._write(rows)
        except BaseException as exc:
            error = exc
        for waiting in others:
            waiting.error = error
            waiting.woken.release()
        with self._lock:
            self.groups += 1
            self.rows += len(rows)
            if self._queue:  # rows came meanwhile: the first of them leads the next group
                head = self._queue[0]
                head.lead = True
                head.woken.release()
            else:
                self._leading = False
        if error is not None:
            raise error


_EVERY: weakref.WeakSet[GroupCommit[Any]] = weakref.WeakSet()


def _after_fork() -> None:
    for group in list(_EVERY):
        group._forked()


os.register_at_fork(after_in_child=_after_fork)


def _again(error: BaseException) -> BaseException:
    """The leader's error, for another thread to raise (each with its own traceback)."""
    try:
        again = copy.copy(error)
    except Exception:  # an exception that cannot be copied: say what happened, from it
        again = RuntimeError(f"the group's write failed: {error!r}")
    again.__traceback__ = None
    again.__cause__ = error
    return again

"""Group commit: rows that arrive while a write is in progress are written together, next, and each
thread returns only once its own row is committed (or raises what its group's write raised)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ivr.store.database import Event, Store, aware, events
from ivr.store.database import _event_values as _values
from ivr.store.groupcommit import GroupCommit


class Watched(list[Any]):
    """The queue of waiting rows, telling the test how many are waiting (no sleeping in tests)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def append(self, item: Any) -> None:
        with self.changed:
            super().append(item)
            self.changed.notify_all()

    def until(self, length: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self) >= length, timeout=10)


class Writer:
    """A `write` whose first group is held until the test lets it go; it can fail a chosen group."""

    def __init__(self, fail_group: int | None = None) -> None:
        self.groups: list[list[str]] = []
        self.entered, self.gate = threading.Event(), threading.Event()
        self.fail_group = fail_group

    def __call__(self, rows: list[str]) -> None:
        if not self.groups:
            self.entered.set()
            assert self.gate.wait(timeout=10)
        if len(self.groups) == self.fail_group:
            self.groups.append([])
            raise sqlite3.OperationalError("disk I/O error")
        self.groups.append(list(rows))


def held(most: int = 64, fail_group: int | None = None) -> tuple[GroupCommit[str], Writer, Watched]:
    writer = Writer(fail_group)
    group: GroupCommit[str] = GroupCommit(writer, most)
    group._queue = watched = Watched()
    return group, writer, watched


def submitting(group: GroupCommit[str], row: str, outcomes: dict[str, Any], writer: Writer) -> threading.Thread:
    def run() -> None:
        try:
            group.submit(row)
        except Exception as exc:
            outcomes[row] = exc
        else:  # returned: its row must be written by then
            outcomes[row] = any(row in rows for rows in writer.groups)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def held_then_queued(group: GroupCommit[str], writer: Writer, queue: Watched, rows: str) -> dict[str, Any]:
    """Row "a" written and held, `rows` queued behind it in order, then all let go; the outcomes
    (True: returned with the row written; or what was raised), once every thread is done."""
    outcomes: dict[str, Any] = {}
    threads = [submitting(group, "a", outcomes, writer)]
    assert writer.entered.wait(timeout=10)  # "a" is being written, and held
    for number, row in enumerate(rows, start=1):
        threads.append(submitting(group, row, outcomes, writer))
        queue.until(number)  # in this order
    assert outcomes == {}  # nobody returned before its row was written
    writer.gate.set()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes


def test_a_row_alone_is_written_at_once_by_its_own_thread() -> None:
    written: list[list[str]] = []
    group: GroupCommit[str] = GroupCommit(written.append)
    group.submit("a")
    assert written == [["a"]] and (group.groups, group.rows) == (1, 1)
    group.submit("b")
    assert written == [["a"], ["b"]]


def test_rows_that_arrive_during_a_write_are_written_together_next_and_each_returns_once_written() -> None:
    group, writer, queue = held()
    outcomes = held_then_queued(group, writer, queue, "bcd")
    assert writer.groups == [["a"], ["b", "c", "d"]]
    assert outcomes == {"a": True, "b": True, "c": True, "d": True}
    assert (group.groups, group.rows) == (2, 4) and not group._queue and not group._leading


def test_a_group_holds_at_most_its_size_and_the_rest_leads_the_next() -> None:
    group, writer, queue = held(most=2)
    outcomes = held_then_queued(group, writer, queue, "bcd")
    assert writer.groups == [["a"], ["b", "c"], ["d"]]
    assert all(outcomes[row] is True for row in "abcd")


def test_every_thread_of_a_failed_group_raises_its_error_and_the_next_group_is_still_written() -> None:
    group, writer, queue = held(fail_group=1)  # the second group's write fails
    outcomes = held_then_queued(group, writer, queue, "bc")
    assert outcomes["a"] is True
    for row in "bc":  # the leader raised the error itself, the other one a copy caused by it
        assert isinstance(outcomes[row], sqlite3.OperationalError) and "disk I/O error" in str(outcomes[row])
    assert outcomes["b"] is not outcomes["c"]
    assert outcomes["c"].__cause__ is outcomes["b"]
    group.submit("d")  # the store is not left stuck: the next row is written alone
    assert writer.groups[-1] == ["d"] and not group._leading


def test_many_threads_appending_to_the_store_commit_every_row_once(ivr_databases: Any) -> None:
    store = Store(ivr_databases())
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

    def call(number: int) -> None:
        for step in range(40):
            store.append(Event(f"CA{number:032d}", step, at, "digits", '["main"]'))
        store.append(Event(f"CA{number:032d}", 0, at, "digits", '["main"]'))  # a retried webhook: nothing

    callers = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join(timeout=60)
    with store.connection() as conn:
        counted = conn.execute(sa.select(events.c.call_sid, sa.func.count()).group_by(events.c.call_sid)).all()
    assert sorted(counted) == [(f"CA{n:032d}", 40) for n in range(8)]
    assert store._appends.rows == 8 * 41
    store.dispose()


def test_a_group_of_events_is_one_statement_that_leaves_rows_already_there(ivr_databases: Any) -> None:
    store = Store(ivr_databases())
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    store.append(Event("CA1", 0, at, "new", '["main"]', revision="r1"))
    rows = [
        Event("CA1", 0, at, "digits", '["other"]'),  # already there (a retried webhook): it stays
        Event("CA1", 1, at, "digits", '["main", "desk"]', '["closed:rep"]', False, "r1"),
        Event("CA2", 0, at, "speech", '["main"]', None, True, None),
        Event("CA2", 0, at, "digits", '["twin"]'),  # its twin in the same group: the first stays
    ]
    store._append_group([_values(e) for e in rows])
    with store.connection() as conn:
        found = conn.execute(sa.select(events).order_by(events.c.call_sid, events.c.step)).all()
    assert [(*r[:2], aware(r[2]), *r[3:]) for r in found] == [
        ("CA1", 0, at, "new", '["main"]', None, False, "r1"),
        ("CA1", 1, at, "digits", '["main", "desk"]', '["closed:rep"]', False, "r1"),
        ("CA2", 0, at, "speech", '["main"]', None, True, None),
    ]
    store.dispose()


def test_a_process_forked_during_a_write_starts_with_no_group_in_progress() -> None:
    parent = os.getpid()
    written: list[list[str]] = []
    entered, gate = threading.Event(), threading.Event()

    def write(rows: list[str]) -> None:
        if os.getpid() == parent and not written:
            entered.set()
            assert gate.wait(timeout=10)
        written.append(rows)

    group: GroupCommit[str] = GroupCommit(write)
    leader = threading.Thread(target=group.submit, args=("a",))
    leader.start()
    assert entered.wait(timeout=10)  # the parent's thread is writing "a": a group is in progress
    child = os.fork()
    if child == 0:  # the child: its first row is written at once, not queued behind the parent's
        signal.alarm(10)  # a child stuck behind the parent's write fails the test instead of hanging it
        try:
            group.submit("b")
            os._exit(0 if written == [["b"]] and not group._leading else 1)
        finally:
            os._exit(2)
    gate.set()
    leader.join(timeout=10)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert written == [["a"]]

"""The schema: created on an empty database, upgraded only as a deploy step, readiness said plainly."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from freezegun import freeze_time

from ivr import create_app
from ivr.cli import main
from ivr.store import make_engine
from ivr.store import schema as database
from ivr.store.tables import metadata
from tests.conftest import MONDAY_10, SignedClient

CLOCK = {"ivr.clock": MONDAY_10}

FIRST_RELEASE = [  # the tables as the first release created them, before revisions
    "CREATE TABLE ivr_calls (call_sid VARCHAR(64) PRIMARY KEY, step INTEGER NOT NULL, state TEXT NOT NULL, "
    "updated_at TIMESTAMP NOT NULL)",
    "CREATE TABLE ivr_turns (call_sid VARCHAR(64) NOT NULL, step INTEGER NOT NULL, twiml TEXT NOT NULL, "
    "PRIMARY KEY (call_sid, step))",
    "INSERT INTO ivr_turns VALUES ('CAold', 3, '<Response/>')",
]


def test_an_empty_database_is_given_the_schema_at_start_up(ivr_databases: Any) -> None:
    url = ivr_databases()
    create_app({"DATABASE_URL": url})
    engine = make_engine(url)
    with engine.connect() as conn:
        assert database.revision(conn).up_to_date
    engine.dispose()


def test_the_revisions_build_exactly_the_tables_the_code_uses(ivr_databases: Any) -> None:
    engine = make_engine(ivr_databases())
    database.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, metadata) if "ivr_schema_version" not in str(d)]
    engine.dispose()
    assert differences == []


def _schema_of(engine: sa.Engine) -> dict[str, Any]:
    """Everything the database says of its ivr tables: columns, keys, indexes, and on SQLite each
    table's storage (WITHOUT ROWID or not)."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        found: dict[str, Any] = {}
        for name in sorted(n for n in inspector.get_table_names() if n.startswith("ivr_")):
            found[name] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
                "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), i["unique"]) for i in inspector.get_indexes(name)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
            }
            if conn.dialect.name == "sqlite":
                sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).scalar()
                found[name]["without rowid"] = "WITHOUT ROWID" in str(sql).upper()
        found["revision"] = database.revision(conn).current
    return found


def test_the_head_this_code_needs_is_the_newest_revision_shipped() -> None:
    assert database.scripts().get_current_head() == database.HEAD


def test_a_new_database_made_at_once_is_the_one_the_revisions_build(ivr_databases: Any) -> None:
    created, migrated = make_engine(ivr_databases()), make_engine(ivr_databases())
    with created.begin() as conn:
        database.create(conn)
    with migrated.begin() as conn:
        database.migrate(conn)
    made, replayed = _schema_of(created), _schema_of(migrated)
    created.dispose()
    migrated.dispose()
    assert made["revision"] == database.HEAD
    assert made["ivr_events"]["primary key"] == ["call_sid", "step"]
    assert made == replayed


def test_an_older_schema_is_refused_until_ivr_db_upgrade_then_served_without_a_restart(
    ivr_databases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = ivr_databases()
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in FIRST_RELEASE:
            conn.exec_driver_sql(statement)
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    runner = CliRunner()
    with freeze_time("2026-01-01 00:00:00") as frozen:
        app = create_app({"DATABASE_URL": url})
        client = SignedClient(app)
        refused = client.post("/voice", data={"CallSid": "CA1"}, environ_base=CLOCK)
        assert "технический сбой".encode() in refused.data and b"<Dial" in refused.data  # the desk, never silence
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503 and "run `ivr db upgrade`" in ready.json["reason"]
        check = runner.invoke(main, ["db", "check"])
        assert check.exit_code == 1 and "this code needs revision 0006: run `ivr db upgrade`" in check.output

        upgraded = runner.invoke(main, ["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        assert upgraded.output == "upgraded from revision (before revisions) to revision 0006\n"
        assert runner.invoke(main, ["db", "upgrade"]).output == "already at revision 0006: nothing to do\n"
        frozen.tick(3)  # the running app looks again
        served = client.post("/voice", data={"CallSid": "CA2"}, environ_base=CLOCK)
        assert b"<Gather" in served.data and app.test_client().get("/readyz").status_code == 200
    with engine.connect() as conn:  # what the old release kept is still there, the schema is complete
        assert conn.exec_driver_sql("SELECT twiml FROM ivr_turns WHERE call_sid = 'CAold'").scalar() == "<Response/>"
        assert "ivr_calls" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    ready = runner.invoke(main, ["db", "check"])
    assert ready.exit_code == 0 and ready.output == "schema current (revision 0006)\n", ready.output


@pytest.mark.slow
def test_two_instances_upgrading_at_once_both_succeed_and_one_does_the_work(ivr_databases: Any, tmp_path: Path) -> None:
    url = ivr_databases()
    env = {"IVR_DATABASE_URL": url, "PATH": "", "HOME": str(tmp_path)}
    command = [sys.executable, "-m", "ivr", "db", "upgrade"]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [(run.wait(timeout=120), run.stdout.read(), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    assert [code for code, _, _ in outputs] == [0, 0], outputs
    said = sorted(out for _, out, _ in outputs)
    assert said == ["already at revision 0006: nothing to do\n", "upgraded from an empty database to revision 0006\n"]


def test_db_check_says_why_an_unreachable_database_is_not_ready(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "folder.sqlite3").mkdir()  # there, but not a database file
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'folder.sqlite3'}")
    result = CliRunner().invoke(main, ["db", "check"])
    assert result.exit_code == 1 and result.output.startswith("ivr: cannot reach the database: unable to open")


def test_healthz_answers_without_the_database_and_without_a_signature(ivr_databases: Any, tmp_path: Path) -> None:
    (tmp_path / "folder.sqlite3").mkdir()  # a database that cannot be opened
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'folder.sqlite3'}"})
    probe = app.test_client()
    assert probe.get("/healthz").status_code == 200
    not_ready = probe.get("/readyz")
    assert not_ready.status_code == 503 and "unable to open" in not_ready.json["reason"]


def test_db_check_reads_without_waiting_for_a_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    path = tmp_path / "x.sqlite3"
    create_app({"DATABASE_URL": f"sqlite:///{path}"})
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{path}")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a webhook's write transaction in progress
    try:
        result = CliRunner().invoke(main, ["db", "check"])
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 0 and result.output == "schema current (revision 0006)\n"


@pytest.mark.parametrize(
    "command", [["requests", "list"], ["report"], ["purge"], ["allowance", "show", "1"], ["hours"]]
)
def test_an_admin_command_on_a_failing_database_says_so_in_one_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'x.sqlite3'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2  # a wrong URL is the user's input
    assert result.output == (
        f"ivr: IVR_DATABASE_URL={url!r}: the folder {tmp_path / 'missing'} does not exist: "
        "create it, or point IVR_DATABASE_URL elsewhere\n"
    )
    (tmp_path / "folder.sqlite3").mkdir()  # a database that cannot be opened for another reason
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'folder.sqlite3'}")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1
    assert (
        result.output
        == "ivr: the database failed: unable to open database file (--debug or IVR_DEBUG=1 shows the traceback)\n"
    )


def test_wal_files_left_read_only_get_the_database_file_s_mode_back(tmp_path: Path, monkeypatch: Any) -> None:
    """SQLite makes -wal and -shm with the database file's mode: opened while the file was read-only,
    they stay read-only after it is writable again, and every connection fails. (Seen as a user
    other than root; root is never refused, so the test stands in for that user's view.)"""
    import os

    from ivr.store.database import heal_sqlite_files

    database = tmp_path / "ivr.sqlite3"
    database.write_bytes(b"")
    database.chmod(0o640)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").write_bytes(b"")
        Path(f"{database}{suffix}").chmod(0o440)
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: os.stat(path).st_mode & 0o200 != 0 if mode == os.W_OK else real_access(path, mode),
    )

    heal_sqlite_files(str(database))
    assert [oct(os.stat(f"{database}{s}").st_mode & 0o777) for s in ("-wal", "-shm")] == ["0o640", "0o640"]

    database.chmod(0o440)  # while the database file itself is still read-only, nothing is touched
    Path(f"{database}-wal").chmod(0o400)
    heal_sqlite_files(str(database))
    assert oct(os.stat(f"{database}-wal").st_mode & 0o777) == "0o400"


def test_a_webhook_connection_that_died_is_replaced_and_the_effect_is_made_once(
    sim: Any, app: Any, requests_of: Any
) -> None:
    store = app.extensions["ivr"].handler.store
    store.dispose()
    opened: list[Any] = []  # every DB-API connection the pool opens from now on
    sa.event.listen(store.engine, "connect", lambda dbapi, _record: opened.append(dbapi))
    call = sim.call(at=MONDAY_10)
    call.press("1").press("123456#").press("1").say("Иванов").press("1").say("кашель")
    assert opened
    if store.sqlite:
        for raw in opened:
            raw.close()  # as if it were cut under us
    else:  # the server ends the sessions, as a restart or an idle-connection timeout does
        admin = sa.create_engine(store.engine.url, poolclass=sa.pool.NullPool)
        with admin.begin() as conn:
            for raw in opened:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": raw.info.backend_pid})
        admin.dispose()
    dead = len(opened)
    call.press("1")  # confirms the phone: registers the desk request on a new connection
    assert "Заявка зарегистрирована" in call.heard and call.dialed == ["+78002001441"]
    assert len(requests_of("desk")) == 1
    assert len(opened) > dead


def test_on_postgresql_requests_wait_for_the_wal_flush_and_journal_appends_do_not(ivr_databases: Any) -> None:
    from ivr.store import Store

    store = Store(ivr_databases())
    if store.sqlite:
        pytest.skip("PostgreSQL's synchronous_commit (SQLite's synchronous is NORMAL for every write)")
    with store.begin() as conn:  # a webhook's effect: a request, an allowance use
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
    with store.begin(durable=False) as conn:  # a journal line
        assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
    store.dispose()


def test_appends_from_many_threads_at_once_are_each_stored_once(ivr_databases: Any) -> None:
    import threading
    from datetime import UTC, datetime

    from ivr.store import Store
    from ivr.store.tables import Event, events

    store = Store(ivr_databases())
    at = datetime(2021, 3, 1, 7, tzinfo=UTC)

    def append(thread: int) -> None:
        for step in range(25):
            event = Event(f"CA{thread}", step, at, "digits", '["main"]')
            store.append(event)
            store.append(event)  # a retried webhook appends nothing new

    threads = [threading.Thread(target=append, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 8 * 25
    store.dispose()


def test_upgrading_to_events_without_rowid_keeps_every_event(ivr_databases: Any) -> None:
    from alembic import command

    engine = make_engine(ivr_databases())
    with engine.begin() as conn:
        command.upgrade(database._config(conn), "0004")
        conn.execute(
            sa.text(
                "INSERT INTO ivr_events (call_sid, step, at, input, path, facts, anonymous, revision) "
                "VALUES ('CA1', 0, '2026-12-01 07:00:00.000000', 'new', '[\"main\"]', NULL, false, 'r1'), "
                "('CA1', 1, '2026-12-01 07:00:05.000000', 'digits', '[\"desk\"]', '[\"x\"]', false, 'r1')"
            )
        )
    before, after = database.upgrade(engine)
    assert before.current == "0004" and after.up_to_date
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT call_sid, step, input, path, facts FROM ivr_events ORDER BY step")).all()
        assert [tuple(r) for r in rows] == [
            ("CA1", 0, "new", '["main"]', None),
            ("CA1", 1, "digits", '["desk"]', '["x"]'),
        ]
        if engine.dialect.name == "sqlite":  # one B-tree keyed by (call_sid, step): no rowid to select
            with pytest.raises(sa.exc.OperationalError, match="no such column: rowid"):
                conn.execute(sa.text("SELECT rowid FROM ivr_events"))
    engine.dispose()


def test_a_worker_booting_after_its_prepared_sqlite_file_was_deleted_does_not_make_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gunicorn's master prepares the SQLite file before forking (IVR_SQLITE_PREPARED); a worker
    started later, after the file was deleted, finds it missing: a fault, not a first start."""
    from ivr.web.config import PREPARED

    url = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    monkeypatch.setenv(PREPARED, url)
    app = create_app({"DATABASE_URL": url, "LOG_LEVEL": "ERROR"})
    reply = app.test_client().get("/readyz")
    assert reply.status_code == 503 and "is gone" in reply.json["reason"]
    assert not (tmp_path / "ivr.sqlite3").exists()
    monkeypatch.delenv(PREPARED)
    create_app({"DATABASE_URL": url, "LOG_LEVEL": "ERROR"})  # not prepared by a master: a first start
    assert (tmp_path / "ivr.sqlite3").exists()


def test_a_sqlite_stores_wal_is_checkpointed_by_its_thread_never_inside_a_commit(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ivr.store import Store
    from ivr.store.tables import Event

    url = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    store = Store(url)
    checkpoints = store._checkpoints
    assert checkpoints is not None
    checkpoints.interval = 3600  # its thread must not checkpoint while the test writes: the test does
    with store.read() as conn:  # a commit never copies the log back: the thread does
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    plain = make_engine(url)  # an engine of a command's own keeps SQLite's default
    with plain.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    plain.dispose()
    at = datetime(2021, 3, 1, 7, tzinfo=UTC)
    for step in range(1200):  # well past the 1,000 pages that would have checkpointed inside a commit
        store.append(Event("CA1", step, at, "digits", '["main"]' + " " * 4000))
    wal = tmp_path / "ivr.sqlite3-wal"
    assert wal.stat().st_size > 1000 * 4096  # no commit copied it back
    worker = checkpoints._thread
    assert worker is not None and worker.is_alive() and worker.name == "ivr-wal-checkpoint"
    busy, logged, copied = checkpoints.checkpoint() or (1, 0, -1)
    assert busy == 0 and logged >= 1000 and copied == logged  # everything is in the database file now
    store.dispose()
    assert not worker.is_alive()  # disposing the store ends its thread
    with store.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ivr_events").scalar() == 1200
    store.dispose()

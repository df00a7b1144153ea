"""Faults made real: workers killed by PID, files made read-only, PostgreSQL stopped and restarted.
Each test asserts what callers heard and what is stored, and that the service recovers by itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.engine import speech
from ivr.simulator import Simulator
from tests.conftest import AUTH_TOKEN, MONDAY_10
from tests.servers import Gunicorn, Postgres, postgres_bin, wait_for

GRANTED = "Заявка на второе медицинское мнение зарегистрирована"
APOLOGY = "технический сбой"
DESK = "+78002001441"


def env_for(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "IVR_DATABASE_URL": database_url,
        "IVR_SIMULATED_DATABASE_URL": database_url,  # the server's database is the test's: calls are kept there
        "IVR_ALLOW_SIMULATED_CLOCK": "1",
        "IVR_LOG_LEVEL": "WARNING",
        **extra,
    }


def simulator(server: Gunicorn) -> Simulator:
    return Simulator(
        url=f"{server.url}/voice",
        auth_token=AUTH_TOKEN,
        status_callback=f"{server.url}/voice/status",
        fallback_url=f"{server.url}/voice/fallback",
    )


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Gunicorn]]:
    started: list[Gunicorn] = []
    yield started
    for server in started:
        server.stop()


def stored(url: str, query: str) -> list[Any]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(query).all()
    engine.dispose()
    return list(rows)


# ---------------------------------------------------------------- a worker killed mid-webhook


def test_a_worker_killed_after_committing_a_grant_the_fallback_repeats_it(
    tmp_path: Path, servers: list[Gunicorn]
) -> None:
    database = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    marker = tmp_path / "hanging-worker"
    server = Gunicorn(env_for(database, IVR_FAULT_MARKER=str(marker)), tmp_path / "gunicorn.log", "tests.fault_app:app")
    servers.append(server)
    call = simulator(server).call(at=MONDAY_10, call_sid="CAhang" + "0" * 28)
    call.press("5").press("2").press("4455667#").press("1")
    pressing = threading.Thread(target=call.press, args=("1",))  # "I have a first opinion": the grant
    pressing.start()
    worker = int(wait_for(lambda: marker.exists() and marker.read_text(), 20, "the grant to be committed"))
    os.kill(worker, 9)  # the worker dies between the commit and the answer
    pressing.join(timeout=30)
    assert not pressing.is_alive()

    (reference,) = [row[0] for row in stored(database, "SELECT reference FROM ivr_requests")]
    assert GRANTED in call.heard and speech.digits(reference) in call.heard and call.dialed == [DESK]
    errors = [e for e in call.transcript if e["type"] == "error"]
    assert errors and errors[0]["fallback"] is True  # Twilio's error, then its fallback request
    assert len(stored(database, "SELECT * FROM ivr_allowance_uses")) == 1  # spent once
    wait_for(lambda: worker not in server.workers(), 20, "the master to replace the killed worker")
    assert server.alive()


# ---------------------------------------------------------------- read-only, then writable again


def make_read_only(path: Path, read_only: bool) -> None:
    """Read-only even for root: the immutable attribute (ext4) when root, the mode otherwise."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i" if read_only else "-i", str(path)], capture_output=True, text=True)
        if done.returncode != 0 and read_only:
            pytest.skip(f"cannot make a file read-only for root here: {done.stderr.strip()}")
    else:
        path.chmod(0o444 if read_only else 0o644)


def test_a_database_read_only_then_writable_is_served_again_without_a_restart(
    tmp_path: Path, servers: list[Gunicorn]
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    file = folder / "ivr.sqlite3"
    database = f"sqlite:///{file}"
    server = Gunicorn(env_for(database), tmp_path / "gunicorn.log")
    servers.append(server)
    assert "Здравствуйте" in simulator(server).call(at=MONDAY_10).heard
    make_read_only(file, True)
    try:
        server.kill_workers()  # workers (re)started while the file is read-only
        during = simulator(server).call(at=MONDAY_10)
        assert APOLOGY in during.heard and during.dialed == [DESK]  # never silence: the desk
        workers = server.workers()
    finally:
        make_read_only(file, False)
    writable = time.monotonic()

    def served() -> Any:
        call = simulator(server).call(at=MONDAY_10, call_sid="CAafter" + "0" * 27)
        return call if "Здравствуйте" in call.heard else None

    after = wait_for(served, 10, "the next call to be served")
    print(f"served {time.monotonic() - writable:.2f} s after the file was writable again")
    assert after.transcript[-1]["type"] != "error" and server.workers() == workers  # no restart needed
    steps = stored(database, "SELECT call_sid FROM ivr_events WHERE call_sid = 'CAafter' || '" + "0" * 27 + "'")
    assert len(steps) == 1


# ---------------------------------------------------------------- PostgreSQL stopped, started, restarted


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL's server programs are not installed")
    # Not under pytest's own temporary folder: the server's user must be able to reach this one.
    folder = Path(tempfile.mkdtemp(prefix="ivr-pg-"))
    server = Postgres(folder)
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


def test_workers_started_before_the_database_exists_serve_once_it_does(
    tmp_path: Path, servers: list[Gunicorn], postgres: Postgres
) -> None:
    server = Gunicorn(env_for(postgres.url), tmp_path / "gunicorn.log")  # PostgreSQL is not even running
    servers.append(server)
    server.kill_workers()  # and workers respawned while it is down do not halt the master
    assert server.alive()
    during = simulator(server).call(at=MONDAY_10)
    assert APOLOGY in during.heard and during.dialed == [DESK]
    postgres.start()
    postgres.create_database()  # empty: the first worker that needs it gives it the schema
    created = time.monotonic()

    def served() -> Any:
        call = simulator(server).call(at=MONDAY_10)
        return call if "Здравствуйте" in call.heard else None

    call = wait_for(served, 15, "a call to be served")
    print(f"served {time.monotonic() - created:.2f} s after the database was created")
    call.press("1").press("7700123456#").press("1").say("Иванов Иван").press("1").say("кашель").press("1")
    assert "Заявка зарегистрирована" in call.heard
    assert len(stored(postgres.url, "SELECT * FROM ivr_requests")) == 1


def test_postgres_restarted_under_load_loses_and_duplicates_nothing(
    tmp_path: Path, servers: list[Gunicorn], postgres: Postgres
) -> None:
    postgres.start()
    postgres.create_database()
    server = Gunicorn(env_for(postgres.url), tmp_path / "gunicorn.log")
    servers.append(server)
    heard: dict[str, str] = {}
    errors: list[str] = []
    stop = threading.Event()

    def caller(number: int) -> None:
        attempt = 0
        while not stop.is_set() and attempt < 500:
            attempt += 1
            sid = f"CA{number:02d}{attempt:04d}" + "0" * 26
            call = simulator(server).call(at=MONDAY_10, call_sid=sid)
            for token in ("1", "7700123456#", "1", "say:Иванов", "1", "say:кашель", "1"):
                if call.ended or call.waiting is None or call.waiting.verb != "gather":
                    break
                call.say(token[4:]) if token.startswith("say:") else call.press(token)
            heard[sid] = call.heard
            errors.extend(e["message"] for e in call.transcript if e["type"] == "error")

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in callers:
        thread.start()
    try:
        wait_for(lambda: sum("Заявка зарегистрирована" in t for t in heard.values()) >= 4, 60, "calls before")
        postgres.restart()  # while calls are in flight
        restarted = time.monotonic()
        served_before = sum("Заявка зарегистрирована" in t for t in list(heard.values()))
        wait_for(
            lambda: sum("Заявка зарегистрирована" in t for t in list(heard.values())) > served_before, 60, "recovery"
        )
        print(f"recovered {time.monotonic() - restarted:.2f} s after PostgreSQL was back")
        wait_for(
            lambda: sum("Заявка зарегистрирована" in t for t in list(heard.values())) >= served_before + 8,
            60,
            "calls served after the restart",
        )
    finally:
        stop.set()
        for thread in callers:
            thread.join(timeout=120)
    print(f"{len(heard)} calls, {sum(APOLOGY in t for t in heard.values())} heard the apology and the desk")
    assert errors == []  # no caller heard Twilio's application error
    registered = stored(postgres.url, "SELECT call_sid, reference FROM ivr_requests ORDER BY id")
    by_call = [sid for sid, _ in registered]
    assert len(by_call) == len(set(by_call))  # nothing registered twice
    for sid, reference in registered:  # everyone registered heard their reference
        assert speech.digits(reference) in heard[sid]
    promised = [sid for sid, text in heard.items() if "Заявка зарегистрирована" in text]
    assert sorted(promised) == sorted(by_call)  # nobody heard a reference that is not stored
    assert server.alive()


def test_four_workers_booting_together_on_an_empty_database_all_come_up(
    tmp_path: Path, servers: list[Gunicorn], postgres: Postgres
) -> None:
    postgres.start()
    postgres.create_database()
    server = Gunicorn(env_for(postgres.url), tmp_path / "gunicorn.log", workers=4)  # all four race for the schema
    servers.append(server)
    assert server.alive() and len(server.workers()) == 4
    assert "Здравствуйте" in simulator(server).call(at=MONDAY_10).heard
    assert [row[0] for row in stored(postgres.url, "SELECT version_num FROM ivr_schema_version")] == ["0006"]
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()

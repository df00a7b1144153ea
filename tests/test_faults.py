"""Faults made real: workers killed by PID, files made read-only, PostgreSQL stopped and restarted.
Each test asserts what callers heard and what is stored, and that the service recovers by itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.engine import speech
from ivr.simulator import Simulator
from tests.conftest import AUTH_TOKEN, MONDAY_10
from tests.servers import Gunicorn, Postgres, postgres_bin, wait_for

pytestmark = pytest.mark.slow  # gunicorn, PostgreSQL servers, killed workers: `.ci/run` runs them

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
    for server in started:  # every assertion is made: no need to wait for a graceful stop
        server.stop(graceful=False)


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


# ---------------------------------------------------------------- stopping: refused, never reset


def _knock(url: str) -> str:
    """One webhook on a new connection: "ok", "refused" at once, or what else happened."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=10)
    try:
        connection.request("GET", "/healthz")
        return "ok" if connection.getresponse().status == 200 else "status"
    except ConnectionRefusedError:
        return "refused"
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__  # reset, cut off, timed out: Twilio waits and then hears nothing
    finally:
        connection.close()


def test_while_gunicorn_stops_new_connections_are_refused_at_once_not_reset(
    tmp_path: Path, servers: list[Gunicorn]
) -> None:
    database = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    marker = tmp_path / "hanging-worker"
    env = env_for(database, IVR_FAULT_MARKER=str(marker), GUNICORN_CMD_ARGS="--graceful-timeout 4")
    server = Gunicorn(env, tmp_path / "gunicorn.log", "tests.fault_app:app")
    servers.append(server)
    call = simulator(server).call(at=MONDAY_10, call_sid="CAhang" + "1" * 28)
    call.press("5").press("2").press("4455667#").press("1")
    hanging = threading.Thread(target=call.press, args=("1",), daemon=True)  # in flight during the stop
    hanging.start()
    wait_for(lambda: marker.exists(), 20, "a request in flight")
    server.process.terminate()  # SIGTERM: a graceful stop, waiting for the request in flight
    outcomes: list[str] = []
    while server.alive() and len(outcomes) < 2000:
        outcomes.append(_knock(server.url))
    server.process.wait(timeout=30)
    assert outcomes and "refused" in outcomes
    assert set(outcomes) <= {"ok", "refused"}, sorted(set(outcomes))


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


# ---------------------------------------------------------------- the SQLite file deleted while serving


def _register_desk_requests(server: Gunicorn, stop: threading.Event, calls: list[dict[str, Any]], who: int) -> None:
    """One caller after another asks the desk for help until `stop`; each call is noted with when it
    started and what the caller heard last (the promise, or the apology and the desk)."""
    number = 0
    while not stop.is_set():
        number += 1
        started = time.monotonic()
        call = simulator(server).call(at=MONDAY_10, call_sid=f"CA{who:02d}{number:030d}")
        steps = [("1", None), ("7700123456#", None), ("1", None), (None, "Иванов Иван"), ("1", None)]
        steps += [(None, "кашель"), ("1", None)]  # the last press registers the request
        for keys, words in steps:
            if call.dialed or call.ended:  # put through to the desk instead
                break
            call.press(keys) if keys else call.say(words or "")
        calls.append({"started": started, "heard": call.heard, "dialed": call.dialed})
        if not call.ended:
            call.hangup()


def test_a_database_file_deleted_while_serving_promises_nothing_and_is_not_made_anew(
    tmp_path: Path, servers: list[Gunicorn]
) -> None:
    import sqlite3

    folder = tmp_path / "db"
    folder.mkdir()
    file = folder / "ivr.sqlite3"
    server = Gunicorn(env_for(f"sqlite:///{file}"), tmp_path / "gunicorn.log")
    servers.append(server)
    workers = server.workers()
    stop, calls = threading.Event(), []  # type: ignore[var-annotated]
    callers = [threading.Thread(target=_register_desk_requests, args=(server, stop, calls, who)) for who in range(4)]
    for caller in callers:
        caller.start()
    try:
        wait_for(lambda: len(calls) >= 4, 60, "requests to be registered")
        backup = tmp_path / "backup.sqlite3"
        with sqlite3.connect(file) as source, sqlite3.connect(backup) as copy:
            source.backup(copy)  # what an operator would restore
        for name in (file.name, file.name + "-wal", file.name + "-shm"):
            (folder / name).unlink(missing_ok=True)
        deleted = time.monotonic()
        wait_for(lambda: len([c for c in calls if c["started"] > deleted]) >= 8, 60, "calls after the deletion")
        readiness = urllib.request.Request(f"{server.url}/readyz")
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(readiness, timeout=5)
        assert not_ready.value.code == 503
        assert not file.exists()  # never made anew, empty, in its place
    finally:
        stop.set()
        for caller in callers:
            caller.join(timeout=60)
    after = [c for c in calls if c["started"] > deleted]
    assert after and all("Заявка зарегистрирована" not in c["heard"] for c in after)  # nothing promised...
    assert all(APOLOGY in c["heard"] and c["dialed"] == [DESK] for c in after)  # ...the desk instead
    shutil.copy(backup, file)  # the operator restores the file: served again, no restart

    def served() -> Any:
        call = simulator(server).call(at=MONDAY_10, call_sid="CArestored" + "0" * 24)
        return call if "Здравствуйте" in call.heard else None

    wait_for(served, 15, "calls to be served from the restored file")
    assert server.workers() == workers
    assert urllib.request.urlopen(f"{server.url}/readyz", timeout=5).status == 200


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

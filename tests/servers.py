"""Servers the fault tests start themselves: gunicorn with the production settings, and PostgreSQL."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Any, seconds: float, what: str) -> Any:
    """Poll `check()` until it returns something true, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


class Gunicorn:
    """`gunicorn -c gunicorn.conf.py "ivr:create_app()"` (or another target) on a free loopback port."""

    def __init__(
        self, env: dict[str, str], log: Path, target: str = "ivr:create_app()", workers: int = 2, threads: int = 8
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        command += ["-b", f"127.0.0.1:{self.port}", "-w", str(workers), "--threads", str(threads), target]
        self.log = log
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: status_of(f"{self.url}/healthz") == 200, 30, f"gunicorn on {self.url} (log: {log})")
        wait_for(lambda: len(self.workers()) == workers, 30, "its workers")

    def workers(self) -> list[int]:
        """The PIDs of the master's workers, from /proc."""
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in text.split()]

    def kill_workers(self) -> None:
        """Kill every worker (SIGKILL, by PID) and wait for the master to start new ones."""
        before = set(self.workers())
        for pid in before:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: set(self.workers()) and not set(self.workers()) & before, 30, "new workers")
        wait_for(lambda: len(self.workers()) == len(before), 30, "all new workers")
        wait_for(lambda: status_of(f"{self.url}/healthz") == 200, 30, "the new workers to answer")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, graceful: bool = True) -> None:
        """Stop it as a deploy does (SIGTERM: requests in flight finish, a few seconds), or at once
        (SIGQUIT: gunicorn's quick shutdown) where the test has seen what it came for."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM if graceful else signal.SIGQUIT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def postgres_bin() -> Path | None:
    """Where PostgreSQL's server programs are (Debian's layout), or None."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class Postgres:
    """A PostgreSQL server of the test's own (initdb into a temporary folder), which it may stop,
    start and restart without disturbing any other server on the machine."""

    def __init__(self, folder: Path) -> None:
        programs = postgres_bin()
        if programs is None:
            raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        self.programs = programs
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/ivr"
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            folder.chmod(0o755)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.programs / program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def create_database(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE ivr")
        engine.dispose()

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        log = str(self.folder / "server.log")  # the server must not keep our pipes open
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-l", log, "-w", "restart")

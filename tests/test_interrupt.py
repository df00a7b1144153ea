"""Ctrl-C stops at once: exit status 130, one line, no traceback (a signal sent to a child process,
as a terminal sends it to the whole foreground process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT, wait_for


def _started(command: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env["IVR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'ivr.sqlite3'}"
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a foreground job of a terminal
        # Ctrl-C as at a terminal, even when this test runs where SIGINT is ignored (a background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


@pytest.mark.slow
def test_ctrl_c_during_ivr_test_stops_it_with_130_and_one_line(tmp_path: Path) -> None:
    run = _started([sys.executable, "-m", "ivr", "test", "calls/"], tmp_path)
    assert run.stdout is not None
    first = run.stdout.readline()  # the first script has run: the command is busy with the second
    assert first.startswith("PASS ")
    os.killpg(run.pid, signal.SIGINT)
    rest, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert err.strip().splitlines() == ["ivr: interrupted"]
    assert "passed" not in rest  # no summary: the run did not go on to the end


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to see the callers start")
def test_ctrl_c_during_the_concurrent_second_opinion_script_stops_every_caller(tmp_path: Path) -> None:
    script = [sys.executable, str(ROOT / "scripts" / "concurrent_second_opinion.py"), "--callers", "4"]
    script += ["--database-url", f"sqlite:///{tmp_path / 'race.sqlite3'}"]
    run = _started(script, tmp_path)
    callers = wait_for(lambda: len(_children(run.pid)) >= 4 and _children(run.pid), 60, "the callers to start")
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130
    assert err.strip().splitlines() == ["interrupted"] and out == ""
    assert not [pid for pid in callers if Path(f"/proc/{pid}").exists() and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"

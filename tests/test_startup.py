"""A start-up mistake is one line naming the variable, the value and the fix: for every command,
and under gunicorn from its master, once, before any worker starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivr.cli import main
from tests.servers import ROOT, Gunicorn, free_port

URLS = "use sqlite:///path/to/ivr.sqlite3 or postgresql+psycopg://user@host/database"


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("IVR_DATABASE_URL", "foo", f"IVR_DATABASE_URL='foo': is not a database URL; {URLS}\n"),
        ("IVR_DATABASE_URL", "foo://x", f"IVR_DATABASE_URL='foo://x': 'foo' is not a database ivr runs on; {URLS}\n"),
        (
            "IVR_DATABASE_URL",
            "mysql://u@h/d",
            f"IVR_DATABASE_URL='mysql://u@h/d': 'mysql' is not a database ivr runs on; {URLS}\n",
        ),
        (
            "IVR_DATABASE_URL",
            "postgresql+psycopg2://u@h/d",
            "IVR_DATABASE_URL='postgresql+psycopg2://u@h/d': needs the psycopg2 driver, which is not installed: "
            "use postgresql+psycopg:// and `pip install 'ivr[postgres]'`\n",
        ),
        (
            "IVR_DATABASE_URL",
            "sqlite:////nonexistent/x.db",
            "IVR_DATABASE_URL='sqlite:////nonexistent/x.db': the folder /nonexistent does not exist: "
            "create it, or point IVR_DATABASE_URL elsewhere\n",
        ),
        ("IVR_LOG_LEVEL", "LOUD", "IVR_LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR\n"),
        (
            "IVR_STATE_KEYS",
            "garbage",
            "IVR_STATE_KEYS='key 1 of 1': must be 32 bytes in URL-safe base64 (make one with `ivr keys new`)\n",
        ),
        (
            "IVR_PUBLIC_URL",
            "ngrok.app",
            "IVR_PUBLIC_URL='ngrok.app': must be an https:// address, like the one ngrok prints (Forwarding https://...)\n",
        ),
    ],
)
@pytest.mark.parametrize("command", [["report"], ["simulate", "1"], ["db", "check"], ["requests", "list"]])
def test_a_wrong_variable_is_one_line_for_every_command(
    monkeypatch: pytest.MonkeyPatch, command: list[str], variable: str, value: str, said: str
) -> None:
    if "psycopg2" in value and _installed("psycopg2"):
        pytest.skip("psycopg2 is installed here")
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, command)
    assert (result.exit_code, result.output) == (2, "ivr: " + said)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_simulate_names_its_own_option_for_a_database_in_a_missing_folder() -> None:
    result = CliRunner().invoke(
        main, ["simulate", "--database-url", "sqlite:////nonexistent/x.db", "1"], prog_name="ivr"
    )
    assert result.exit_code == 2
    assert result.output == (
        "ivr simulate: Invalid value for --database-url: 'sqlite:////nonexistent/x.db': the folder /nonexistent "
        "does not exist: create it, or point --database-url elsewhere (see `ivr simulate --help`)\n"
    )


def test_db_upgrade_on_a_missing_folder_says_which(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/ivr.sqlite3"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 2
    assert result.output == (
        f"ivr: IVR_DATABASE_URL={url!r}: the folder {tmp_path}/missing does not exist: "
        "create it, or point IVR_DATABASE_URL elsewhere\n"
    )


def _gunicorn(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
    command += ["-b", f"127.0.0.1:{free_port()}", "ivr:create_app()"]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    env = {"IVR_DATABASE_URL": f"sqlite:///{tmp_path}/ivr.sqlite3", **env}
    return subprocess.run(command, cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "code", "said"),
    [
        ({"IVR_DATABASE_URL": "foo"}, 2, f"ivr: IVR_DATABASE_URL='foo': is not a database URL; {URLS}"),
        (
            {"TWILIO_AUTH_TOKEN": "secret"},
            2,
            "ivr: IVR_STATE_KEYS='': is not set: every instance needs the same key ring to read calls in progress; "
            "make one with `ivr keys new` and set it in the environment of every instance",
        ),
        ({"IVR_FLOW": "/nonexistent/flow.yaml"}, 1, "ivr: /nonexistent/flow.yaml: cannot read the file"),
        ({"IVR_LOG_LEVEL": "LOUD"}, 2, "ivr: IVR_LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR"),
    ],
    ids=["database", "key ring", "flow", "log level"],
)
def test_gunicorn_refuses_to_start_with_one_line_and_no_worker(
    tmp_path: Path, env: dict[str, str], code: int, said: str
) -> None:
    done = _gunicorn(env, tmp_path)
    ours = [line for line in done.stderr.splitlines() if line.startswith("ivr: ")]
    assert done.returncode == code, done.stderr
    assert len(ours) == 1 and ours[0].startswith(said), done.stderr
    assert "Traceback" not in done.stderr and "Booting worker" not in done.stderr


def test_a_development_key_file_the_server_cannot_read_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr.engine.seal import KeyRing
    from ivr.errors import ConfigError

    (tmp_path / "state-keys").write_text("made by another user\n")
    real = Path.read_text

    def refused(path: Path, *args: object, **kwargs: object) -> str:
        if path.name == "state-keys":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", refused)
    with pytest.raises(ConfigError) as caught:
        KeyRing.for_development(tmp_path)
    assert str(caught.value) == (
        f"IVR_STATE_KEYS='': is not set, and the development key file {tmp_path}/state-keys cannot be used "
        "(Permission denied): set IVR_STATE_KEYS (`ivr keys new` makes one), or give that file to the user serving"
    )


@pytest.mark.slow
def test_gunicorn_writes_one_json_line_per_webhook_and_time_and_level_on_every_line(tmp_path: Path) -> None:
    log = tmp_path / "gunicorn.log"
    env = {"IVR_DATABASE_URL": f"sqlite:///{tmp_path}/ivr.sqlite3", "TWILIO_AUTH_TOKEN": ""}
    server = Gunicorn(env, log, workers=1)
    try:
        request = urllib.request.Request(f"{server.url}/voice", data=b"CallSid=CA1&From=%2B79161234567")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
    finally:
        server.stop()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    webhooks = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(webhooks) == 1
    (webhook,) = webhooks
    assert (webhook["level"], webhook["event"], webhook["node"], webhook["outcome"]) == (
        "INFO",
        "webhook",
        "main",
        "new",
    )
    assert webhook["time"].endswith("+00:00")
    others = [line for line in lines if not line.startswith("{")]
    assert others and all(" [INFO] " in line or " [WARNING] " in line for line in others), others


def test_serve_says_where_its_database_and_the_simulated_calls_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flask import Flask

    monkeypatch.setattr(Flask, "run", lambda *args, **kwargs: None)  # everything up to serving
    monkeypatch.setattr("ivr.cli.server._reload_on_sighup", lambda revisions: None)
    monkeypatch.delenv("IVR_SIMULATED_DATABASE_URL")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path}/data/ivr.sqlite3")
    (tmp_path / "data").mkdir()
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Database: ready, data/ivr.sqlite3" in lines
    assert "Simulated calls (`ivr calls --simulated`): data/ivr-simulated.sqlite3" in lines
    monkeypatch.setenv("IVR_DATABASE_URL", "postgresql+psycopg://ivr:secret@127.0.0.1:1/ivr")
    down = CliRunner().invoke(main, ["serve"])
    assert "secret" not in down.output
    assert "), postgresql+psycopg://ivr:***@127.0.0.1:1/ivr; callers reach the operator until it is" in down.output


def test_the_production_recipe_keeps_gunicorn_on_loopback_behind_the_proxy() -> None:
    import runpy

    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert settings["bind"] == ["127.0.0.1:8000"]
    assert "server 127.0.0.1:8000;" in (ROOT / "deploy" / "nginx.conf").read_text()
    for page in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        assert "0.0.0.0" not in page.read_text(encoding="utf-8"), page  # no recipe puts gunicorn on the network


_HEAVY = ("ivr.engine", "ivr.flow", "ivr.store", "ivr.web.app", "sqlalchemy", "pydantic", "flask", "holidays")


@pytest.mark.parametrize(
    "args",
    [["--help"], ["simulate", "--at", "2021-02-30T10:00", "1"], ["check", "--no-such-option"], ["keys", "--help"]],
)
def test_help_and_a_misuse_are_answered_before_the_engine_the_flow_and_the_database_load(args: list[str]) -> None:
    # What a command needs is imported when it runs; listing commands or refusing an option needs none
    # of it. (The environment is a newcomer's: a database URL or keys set in it are checked first, and
    # checking them loads SQLAlchemy or the seal.)
    probe = (
        "import sys\n"
        "from ivr.cli import run\n"
        f"sys.argv = ['ivr', *{args!r}]\n"
        "try:\n    run()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print(code, sorted({{m.split('.')[0] if m.split('.')[0] != 'ivr' else m for m in sys.modules"
        f" if m.startswith({_HEAVY!r})}}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IVR_", "TWILIO_"))}
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    code, _, loaded = run.stdout.strip().rpartition("\n")[2].partition(" ")
    assert code in ("0", "2") and loaded == "[]", (run.stdout[-300:], run.stderr[-300:])

"""The environment's settings, checked in one place for every entry point: the `ivr` commands
(`check_environment`), the app factory (`check_database_url`, `check_public_url`) and gunicorn's
master before it starts any worker (`preflight`). A wrong value is one line naming the variable,
the value and the fix (`ConfigError`), never a traceback from deep inside a library."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from ivr import settings
from ivr.errors import ConfigError

# The databases the store runs on, and the DB-API driver each URL form needs.
_DRIVERS = {
    "sqlite": "sqlite3",
    "sqlite+pysqlite": "sqlite3",
    "postgresql": "psycopg2",
    "postgresql+psycopg2": "psycopg2",
    "postgresql+psycopg": "psycopg",
}
_EXAMPLES = "sqlite:///path/to/ivr.sqlite3 or postgresql+psycopg://user@host/database"


def check_database_url(url: str, key: str = "IVR_DATABASE_URL") -> None:
    """Raise ConfigError unless `url` is a database the store can open: a known scheme, its driver
    installed, and for a SQLite file a folder that exists and can be written."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(key, url, f"is not a database URL; use {_EXAMPLES}") from None
    scheme = parsed.drivername
    if scheme not in _DRIVERS:
        raise ConfigError(key, url, f"{scheme!r} is not a database ivr runs on; use {_EXAMPLES}")
    driver = _DRIVERS[scheme]
    if importlib.util.find_spec(driver) is None:
        fix = "use postgresql+psycopg:// and `pip install 'ivr[postgres]'`"
        raise ConfigError(key, url, f"needs the {driver} driver, which is not installed: {fix}")
    if driver == "sqlite3":
        _check_sqlite_file(parsed.database or "", url, key)


def _check_sqlite_file(database: str, url: str, key: str) -> None:
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    # A file that exists but is read-only for now is a fault the running app rides out (callers hear
    # the apology and reach the desk); a missing or closed folder is a mistake in the setting.
    path = Path(database)
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(key, url, f"the folder {folder} does not exist: create it, or point {key} elsewhere")
    if not path.exists() and not os.access(folder, os.W_OK):
        raise ConfigError(key, url, f"the folder {folder} is not writable by this user, so the file cannot be made")


def public_url_problem(url: str) -> str:
    """Why `url` is not a base address Twilio can call (the tunnel's or the host's); "" when it is."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.netloc:
        return "must be an https:// address, like the one ngrok prints (Forwarding https://...)"
    if parts.query or parts.fragment:
        return "must be a base address without ?query or #fragment"
    if parts.path.rstrip("/").endswith("/voice"):
        base = url.strip().rstrip("/").removesuffix("/voice")
        return f"must be the base address, without /voice (give {base!r}; /voice is added)"
    return ""


def check_public_url(url: str) -> None:
    """Raise ConfigError unless `url` is a base address Twilio can call."""
    problem = public_url_problem(url)
    if problem:
        raise ConfigError("IVR_PUBLIC_URL", url, problem)


def check_environment(env: Mapping[str, str]) -> None:
    """Check every IVR_* variable set in `env` that needs no flow and no database connection (the
    `ivr` commands do this first, whichever command runs and whatever it overrides)."""
    for setting in settings.SETTINGS:
        raw = env.get(f"IVR_{setting.name}")
        if raw is not None:
            setting.read(raw)
    for key in ("IVR_DATABASE_URL", "IVR_SIMULATED_DATABASE_URL"):
        if env.get(key):
            check_database_url(env[key], key)
    if env.get("IVR_PUBLIC_URL"):
        check_public_url(env["IVR_PUBLIC_URL"])
    if env.get("IVR_STATE_KEYS"):
        from ivr.engine.seal import KeyRing  # the engine loads with it: only when keys are given

        KeyRing.parse(env["IVR_STATE_KEYS"])


def preflight(env: Mapping[str, str]) -> str | None:
    """Everything a server needs before its workers start: the environment, the flow file, and
    in production (an auth token set) the key ring every instance shares; then a SQLite database
    gets its file and schema. Returns that database's URL when it is ready (the master tells its
    workers, PREPARED), else None. Raises ConfigError or FlowError; gunicorn's master runs this
    (`gunicorn.conf.py`)."""
    from ivr.flow.loader import load

    check_environment(env)
    load(env.get("IVR_FLOW") or None, env)
    if env.get("TWILIO_AUTH_TOKEN") and not env.get("IVR_STATE_KEYS"):
        raise ConfigError(
            "IVR_STATE_KEYS",
            "",
            "is not set: every instance needs the same key ring to read calls in progress; "
            "make one with `ivr keys new` and set it in the environment of every instance",
        )
    database = env.get("IVR_DATABASE_URL", "")
    return database if _prepare_sqlite(database) else None


# Set by gunicorn's master for the workers it forks: the SQLite database it prepared. A worker
# then never makes that file itself, not even when it boots after the file was deleted.
PREPARED = "IVR_SQLITE_PREPARED"


def _prepare_sqlite(url: str) -> bool:
    """A SQLite database gets its file and schema here, in the master, before the workers start:
    they then all know the file must be there (see ivr.store.sqlitefile), and do not race to create
    it. True when it is ready; any problem is left to the workers, which start without it."""
    if not url.startswith("sqlite:///") or ":memory:" in url:
        return False
    from ivr.store import Store

    store = Store(url)
    try:
        store.ready()
    except Exception:  # said by every worker at its start, and retried per webhook
        return False
    finally:
        store.dispose()
    return True

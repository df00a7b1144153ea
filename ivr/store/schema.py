"""The schema's revision: what a database is at, what this code needs, and the upgrade (Alembic).

Upgrading is a deploy step (`ivr db upgrade`), safe to run from several instances at once: on
PostgreSQL an advisory lock lets one run it while the others wait and then find nothing to do; on
SQLite the upgrade holds the database's write lock. An empty database is given the schema by the
first process that needs it, under the same lock: the tables as this code declares them, created
at once and stamped with the head revision (Alembic's own recipe for a new database), instead of
replaying every revision; tests/test_database.py proves the two give the same schema. A schema
older than the code is never upgraded as a side effect of booting: the app refuses to serve it and
says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

VERSION_TABLE = "ivr_schema_version"
_LOCK = 7_117_001  # the advisory lock key of upgrades on PostgreSQL
_MIGRATIONS = Path(__file__).parent / "migrations"


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@cache
def _scripts() -> ScriptDirectory:
    """The revisions shipped with this code (read once: they do not change while it runs)."""
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The revision this code needs."""
    found = _scripts().get_current_head()
    assert found is not None
    return found


@dataclass(frozen=True)
class Revision:
    """Where a database stands: its revision (None before Alembic or when empty) and whether it is empty."""

    current: str | None
    empty: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == head()

    def describe(self) -> str:
        if self.up_to_date:
            return f"schema current (revision {self.current})"
        if self.empty:
            return f"the database is empty: `ivr db upgrade` creates the schema (revision {head()})"
        at = f"revision {self.current}" if self.current else "the schema from before revisions"
        return f"the database is at {at}, this code needs revision {head()}: run `ivr db upgrade`"


def revision(conn: Connection) -> Revision:
    """The revision of the database `conn` is connected to."""
    current = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    if current is not None:
        return Revision(current, empty=False)
    tables = sa.inspect(conn).get_table_names()
    return Revision(None, empty=not any(name.startswith("ivr_") for name in tables))


def upgrade(engine: Engine) -> tuple[Revision, Revision]:
    """Bring the database to this code's revision; (before, after). Safe to run concurrently."""
    with engine.begin() as conn:  # on SQLite this transaction holds the write lock throughout
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
        before = revision(conn)
        if before.empty:
            create(conn)
        elif not before.up_to_date:
            migrate(conn)
        after = revision(conn)
    return before, after


def migrate(conn: Connection) -> None:
    """Run every revision the database lacks, in `conn`'s transaction."""
    command.upgrade(_config(conn), "head")


def create(conn: Connection) -> None:
    """Give an empty database this code's schema in `conn`'s transaction: the tables and indexes as
    declared, stamped with the head revision so that later upgrades start from there."""
    from ivr.store.tables import metadata

    metadata.create_all(conn)
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    context.stamp(_scripts(), "head")

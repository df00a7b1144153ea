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
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

if TYPE_CHECKING:  # Alembic is imported only to create or upgrade a schema, never to serve one
    from alembic.config import Config
    from alembic.script import ScriptDirectory

VERSION_TABLE = "ivr_schema_version"
# The revision this code needs: the newest of migrations/versions (tests/test_database.py holds the
# two together). Known without reading the revisions, so that starting on a current database never
# imports Alembic.
HEAD = "0006"
_LOCK = 7_117_001  # the advisory lock key of upgrades on PostgreSQL
# Alembic's version table, as Alembic makes it (tests/test_database.py compares the two).
_VERSION = sa.Table(
    VERSION_TABLE,
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)
_MIGRATIONS = Path(__file__).parent / "migrations"


def _config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def scripts() -> ScriptDirectory:
    """The revisions shipped with this code (what `HEAD` must name)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


@dataclass(frozen=True)
class Revision:
    """Where a database stands: its revision (None before Alembic or when empty) and whether it is empty."""

    current: str | None
    empty: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == HEAD

    def describe(self) -> str:
        if self.up_to_date:
            return f"schema current (revision {self.current})"
        if self.empty:
            return f"the database is empty: `ivr db upgrade` creates the schema (revision {HEAD})"
        at = f"revision {self.current}" if self.current else "the schema from before revisions"
        return f"the database is at {at}, this code needs revision {HEAD}: run `ivr db upgrade`"


def revision(conn: Connection) -> Revision:
    """The revision of the database `conn` is connected to (read from Alembic's version table)."""
    tables = sa.inspect(conn).get_table_names()
    if VERSION_TABLE in tables:
        current = conn.execute(sa.select(_VERSION.c.version_num)).scalar()
        if current is not None:
            return Revision(str(current), empty=False)
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
    from alembic import command

    command.upgrade(_config(conn), "head")


def create(conn: Connection) -> None:
    """Give an empty database this code's schema in `conn`'s transaction: the tables and indexes as
    declared, stamped with the head revision so that later upgrades start from there (what Alembic's
    `stamp` writes, without importing Alembic into every fresh start)."""
    from ivr.store.tables import metadata

    metadata.create_all(conn)
    _VERSION.create(conn)
    conn.execute(_VERSION.insert().values(version_num=HEAD))

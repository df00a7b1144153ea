"""The database: its schema revision (`ivr db`) and the journal's retention (`ivr purge`)."""

from __future__ import annotations

import click

from ivr.cli.base import _admin_app, _database_engine, _fail, _simulated_option
from ivr.errors import reason


@click.group()
def db() -> None:
    """The database's schema: upgrade it (a deploy step), or check that it is ready."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Bring the database (IVR_DATABASE_URL) to this version's schema; safe on several instances at once."""
    from ivr.store import schema as database

    engine = _database_engine()
    try:
        before, after = database.upgrade(engine)
    except Exception as exc:
        _fail(f"cannot upgrade the database: {reason(exc)}")
    finally:
        engine.dispose()
    if before.current == after.current:
        click.echo(f"already at revision {after.current}: nothing to do")
    else:
        was = "an empty database" if before.empty else f"revision {before.current or '(before revisions)'}"
        click.echo(f"upgraded from {was} to revision {after.current}")


@db.command("check")
def db_check() -> None:
    """Exit 0 when the database is reachable and its schema current (a readiness check), else say why."""
    from ivr.store import schema as database

    engine = _database_engine()
    try:
        with engine.connect() as conn:
            conn.execution_options(ivr_read=True)  # a read: it must not wait for, or block, writers
            found = database.revision(conn)
    except Exception as exc:
        _fail(f"cannot reach the database: {reason(exc)}")
    finally:
        engine.dispose()
    if not found.up_to_date:
        _fail(found.describe())
    click.echo(found.describe())


@click.command()
@_simulated_option
@click.option(
    "--days", type=click.IntRange(1, 36_500), default=None, help="Keep this many days (default IVR_JOURNAL_DAYS, 90)."
)
def purge(days: int | None) -> None:
    """Delete journal rows past the retention; close calls silent for a day; drop day-old stored answers."""
    from ivr import clock
    from ivr.store import journal

    app = _admin_app()
    keep = days or int(app.config.get("JOURNAL_DAYS", 90))
    handler = app.extensions["ivr"].handler
    deleted = journal.purge(handler.store, handler.flow, clock.now(), keep)
    click.echo(f"deleted {deleted} journal rows older than {keep} days")

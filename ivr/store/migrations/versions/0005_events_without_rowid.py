"""Journal events on SQLite are one B-tree, keyed by (CallSid, step): a table WITHOUT ROWID.

Every webhook appends an event and every status callback forgets a call's events. As a rowid table
with a composite primary key, each event lived twice (the table and the key's index), so each
append wrote two pages and each forget searched the index and then the table. Measured on the
project's 2-core machine, an append takes a fifth less time and a forget two thirds less. The rows
are copied as they are; PostgreSQL keeps its table (it has no rowid).

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_COLUMNS = "call_sid, step, at, input, path, facts, anonymous, revision"


def _events(name: str, with_rowid: bool) -> None:
    op.create_table(
        name,
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("facts", sa.Text),
        sa.Column("anonymous", sa.Boolean, nullable=False, default=False),
        sa.Column("revision", sa.String(16)),
        sqlite_with_rowid=with_rowid,
    )


def _rebuild(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _events("ivr_events_rebuilt", with_rowid)
    op.execute(f"INSERT INTO ivr_events_rebuilt ({_COLUMNS}) SELECT {_COLUMNS} FROM ivr_events")
    op.drop_table("ivr_events")
    op.rename_table("ivr_events_rebuilt", "ivr_events")


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)

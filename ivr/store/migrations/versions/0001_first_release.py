"""The schema of the releases before Alembic, brought complete.

Databases made by those releases were created at start-up and grown by adding missing tables,
indexes and nullable columns. This revision does the same, so it brings any of them (or an empty
database) to that schema; the tables are written out here as they were, not taken from today's code.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_old = sa.MetaData()
sa.Table(
    "ivr_calls",
    _old,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("path", sa.Text),
    sa.Column("facts", sa.Text),
)
sa.Table(
    "ivr_turns",
    _old,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("twiml", sa.Text, nullable=False),
)
sa.Table(
    "ivr_requests",
    _old,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reference", sa.String(16), unique=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("call_sid", sa.String(64), nullable=False, index=True),
    sa.Column("policy", sa.String(64), index=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
sa.Table(
    "ivr_allowance_uses",
    _old,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("allowance", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("reference", sa.String(16), nullable=False),
    sa.Column("call_sid", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("allowance", "key", "period_start", "seq", name="uq_allowance_use"),
)
sa.Table(
    "ivr_allowance_audit",
    _old,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("allowance", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), nullable=False, index=True),
    sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("reference", sa.String(16)),
    sa.Column("reason", sa.Text, nullable=False),
)
sa.Table(
    "ivr_journal",
    _old,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.String(64), unique=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("duration", sa.Integer),
    sa.Column("anonymous", sa.Boolean, nullable=False, default=False),
    sa.Column("branch", sa.String(64)),
    sa.Column("path", sa.Text),
    sa.Column("last_node", sa.String(64)),
    sa.Column("end", sa.String(32)),
    sa.Column("facts", sa.Text),
)
sa.Table(
    "ivr_closures",
    _old,
    sa.Column("schedule", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)


def upgrade() -> None:
    conn = op.get_bind()
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    for table in _old.sorted_tables:
        if table.name not in existing:
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:  # the releases before added only nullable columns
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
    _old.create_all(conn)  # missing tables and indexes


def downgrade() -> None:
    raise NotImplementedError("the schema before Alembic is not restored")

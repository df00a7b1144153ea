"""Calls stay on the flow revision they started on: revisions kept, events and journal rows carry theirs.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ivr_flow_revisions",
        sa.Column("revision", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("ivr_events") as events:
        events.add_column(sa.Column("revision", sa.String(16)))
    with op.batch_alter_table("ivr_journal") as journal:
        journal.add_column(sa.Column("revision", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("ivr_journal") as journal:
        journal.drop_column("revision")
    with op.batch_alter_table("ivr_events") as events:
        events.drop_column("revision")
    op.drop_table("ivr_flow_revisions")

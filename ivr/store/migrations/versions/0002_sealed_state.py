"""The call's state travels sealed in the action URL: events are appended, turns kept with their time.

The per-call state table goes (a call in progress during the upgrade is answered as a lost call,
politely, and goes on from the main menu); each webhook appends to ivr_events; the stored answers of
effect webhooks carry when they were made, so they are kept for a grace period after the call.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ivr_events",
        sa.Column("call_sid", sa.String(64), primary_key=True),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("input", sa.String(16), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("facts", sa.Text),
        sa.Column("anonymous", sa.Boolean, nullable=False, default=False),
    )
    with op.batch_alter_table("ivr_turns") as turns:
        turns.add_column(sa.Column("created_at", sa.DateTime(timezone=True)))
        turns.create_index("ix_ivr_turns_created_at", ["created_at"])
    op.drop_table("ivr_calls")


def downgrade() -> None:
    raise NotImplementedError("calls in progress cannot be given back their state: restore a backup")

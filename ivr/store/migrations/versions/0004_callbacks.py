"""Call-backs placed: each call-back request's state and its attempts.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ivr_callbacks",
        sa.Column("reference", sa.String(16), primary_key=True),
        sa.Column("line", sa.String(64), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_at", sa.DateTime(timezone=True), index=True),
        sa.Column("claim_until", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ivr_callback_attempts",
        sa.Column("reference", sa.String(16), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("call_sid", sa.String(64), index=True),
        sa.Column("answered_by", sa.String(32)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("detail", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("ivr_callback_attempts")
    op.drop_table("ivr_callbacks")

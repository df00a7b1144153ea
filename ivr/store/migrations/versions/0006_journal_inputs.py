"""A finished call's journal row keeps the kind of each input it took (keys, speech, silence, a
transfer's outcome), one per webhook, so `ivr calls CALLSID` can show how the caller moved through
the menus after the call's events are folded away. Kinds only, never what was typed or said.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ivr_journal") as journal:
        journal.add_column(sa.Column("inputs", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("ivr_journal") as journal:
        journal.drop_column("inputs")

"""Console notes a call-taker keeps on a live call.

Revision ID: 0005_console_notes
Revises: 0002_staff_accounts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_console_notes"
down_revision = "0002_staff_accounts"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "call_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("live_call_id", sa.Integer, nullable=False),
        sa.Column("staff_id", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_call_notes_live_call_id", "call_notes", ["live_call_id"])


def downgrade() -> None:
    op.drop_table("call_notes")

"""Conference status callbacks waiting to be applied by a worker (ivr.flows.conference_inbox).

Revision ID: 0011_conference_inbox
Revises: 0004_handoffs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TS = sa.DateTime(timezone=True)

revision = "0011_conference_inbox"
down_revision = "0004_handoffs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conference_inbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("live_call_id", sa.Integer, nullable=False),
        sa.Column("form", sa.Text, nullable=False),
        sa.Column("token", sa.String(128)),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("claimed_at", TS),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("applied_at", TS),
    )
    op.create_index("ix_conference_inbox_claimed_at", "conference_inbox", ["claimed_at"])
    op.create_index("ix_conference_inbox_applied_at", "conference_inbox", ["applied_at"])
    op.create_index(
        "ix_conference_inbox_live_call_id_received_at",
        "conference_inbox",
        ["live_call_id", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_conference_inbox_live_call_id_received_at", table_name="conference_inbox")
    op.drop_index("ix_conference_inbox_applied_at", table_name="conference_inbox")
    op.drop_index("ix_conference_inbox_claimed_at", table_name="conference_inbox")
    op.drop_table("conference_inbox")

"""Callback worker: attempts, event history, and bookkeeping columns on callbacks.

Revision ID: 0003_callback_attempts
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_callback_attempts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("attempts_made", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", TS))
        batch.add_column(sa.Column("last_outcome", sa.String(32)))
        batch.add_column(sa.Column("opted_out_at", TS))
        batch.add_column(sa.Column("escalated_at", TS))
        batch.add_column(sa.Column("overdue_at", TS))
        batch.add_column(sa.Column("closed_at", TS))
        batch.add_column(sa.Column("closed_by", sa.String(64)))
        batch.add_column(sa.Column("close_note", sa.Text))
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "callback_id",
            sa.Integer,
            sa.ForeignKey(
                "callbacks.id",
                ondelete="CASCADE",
                name="fk_callback_attempts_callback_id_callbacks",
            ),
            nullable=False,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("scheduled_for", TS, nullable=False),
        sa.Column("claimed_at", TS),
        sa.Column("claim_token", sa.String(32)),
        sa.Column("call_sid", sa.String(64)),
        sa.Column("call_status", sa.String(32)),
        sa.Column("answered_by", sa.String(32)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("counted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("helper_member_id", sa.String(64)),
        sa.Column("error", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.UniqueConstraint("callback_id", "number", name="uq_callback_attempts_callback_number"),
        sa.UniqueConstraint("call_sid", name="uq_callback_attempts_call_sid"),
    )
    op.create_index("ix_callback_attempts_callback_id", "callback_attempts", ["callback_id"])
    op.create_index("ix_callback_attempts_status", "callback_attempts", ["status"])
    op.create_table(
        "callback_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("callback_id", sa.Integer),
        sa.Column("attempt_id", sa.Integer),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(255)),
        sa.Column("by_staff_id", sa.String(64)),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_callback_events_callback_id", "callback_events", ["callback_id"])
    op.create_index("ix_callback_events_attempt_id", "callback_events", ["attempt_id"])
    op.create_index("ix_callback_events_at", "callback_events", ["at"])


def downgrade() -> None:
    op.drop_table("callback_events")
    op.drop_table("callback_attempts")
    with op.batch_alter_table("callbacks") as batch:
        for name in (
            "close_note",
            "closed_by",
            "closed_at",
            "overdue_at",
            "escalated_at",
            "opted_out_at",
            "last_outcome",
            "next_attempt_at",
            "attempts_made",
        ):
            batch.drop_column(name)

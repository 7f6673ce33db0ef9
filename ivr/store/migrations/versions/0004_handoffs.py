"""Warm handoffs: live calls, handoff records, handoff event history, desk sign-in failures.

Revision ID: 0004_handoffs
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_handoffs"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "live_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("conference_name", sa.String(80), nullable=False, unique=True),
        sa.Column("conference_sid", sa.String(64)),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("call_sid", sa.String(64), nullable=False, unique=True),
        sa.Column("callback_number", sa.String(32)),
        sa.Column("call_taker_staff_id", sa.String(32)),
        sa.Column("call_taker_call_sid", sa.String(64)),
        sa.Column("call_taker_attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.String(24), nullable=False, index=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("ended_at", TS),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column(
            "live_call_id",
            sa.Integer,
            sa.ForeignKey(
                "live_calls.id", name="fk_handoffs_live_call_id_live_calls", ondelete="CASCADE"
            ),
            nullable=False,
            index=True,
        ),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("call_taker_staff_id", sa.String(32)),
        sa.Column("helper_type", sa.String(64), nullable=False, index=True),
        sa.Column("answers", sa.Text, nullable=False),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("callback_number", sa.String(32)),
        sa.Column("status", sa.String(24), nullable=False, index=True),
        sa.Column("reason_code", sa.String(40)),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("member_id", sa.String(64), index=True),
        sa.Column("helper_call_sid", sa.String(64)),
        sa.Column("outcome", sa.String(40)),
        sa.Column("outcome_note", sa.Text),
        sa.Column("follow_up_at", TS),
        sa.Column("outcome_by", sa.String(32)),
        sa.Column("outcome_at", TS),
        sa.Column("callback_id", sa.Integer),
        sa.Column("created_at", TS, nullable=False, index=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("accepted_at", TS),
        sa.Column("connected_at", TS),
        sa.Column("ended_at", TS),
    )
    op.create_table(
        "handoff_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "handoff_id",
            sa.Integer,
            sa.ForeignKey(
                "handoffs.id", name="fk_handoff_events_handoff_id_handoffs", ondelete="CASCADE"
            ),
            nullable=False,
            index=True,
        ),
        sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
        sa.Column("idempotency_token", sa.String(128), unique=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer),
        sa.Column("member_id", sa.String(64)),
        sa.Column("call_sid", sa.String(64)),
        sa.Column("sequence", sa.Integer),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("detail", sa.String(200)),
    )
    op.create_table(
        "desk_sign_in_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_sid", sa.String(64), nullable=False, index=True),
        sa.Column("staff_id", sa.String(32), nullable=False),
        sa.Column("caller_tag", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index(
        "ix_desk_sign_in_failures_staff_id_at", "desk_sign_in_failures", ["staff_id", "at"]
    )
    op.create_index(
        "ix_desk_sign_in_failures_caller_tag_at", "desk_sign_in_failures", ["caller_tag", "at"]
    )


def downgrade() -> None:
    op.drop_table("desk_sign_in_failures")
    op.drop_table("handoff_events")
    op.drop_table("handoffs")
    op.drop_table("live_calls")

"""QA review: calls flagged for review and the findings recorded on them.

Revision ID: 0003_qa_review
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_qa_review"
down_revision = "0001_foundation"
branch_labels = ("qa_review",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "qa_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_ref", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("call_sid", sa.String(64)),
        sa.Column("jurisdiction", sa.String(64)),
        sa.Column("helper_type", sa.String(64)),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("flagged_at", TS, nullable=False),
        sa.UniqueConstraint("subject_kind", "subject_ref", "reason", name="uq_qa_items_subject"),
    )
    op.create_index("ix_qa_items_occurred_at", "qa_items", ["occurred_at"])
    op.create_table(
        "qa_findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "item_id",
            sa.Integer,
            sa.ForeignKey("qa_items.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("reviewer", sa.String(32), nullable=False),
        sa.Column("compliant", sa.Boolean, nullable=False),
        sa.Column("not_offered_reason", sa.String(32)),
        sa.Column("coaching_note", sa.Text),
        sa.Column("reviewed_at", TS, nullable=False),
    )
    # The dashboard counts self-service events by kind over a date range.
    op.create_index("ix_self_service_events_at_event", "self_service_events", ["at", "event"])
    op.create_index("ix_callbacks_created_at", "callbacks", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_created_at", table_name="callbacks")
    op.drop_index("ix_self_service_events_at_event", table_name="self_service_events")
    op.drop_table("qa_findings")
    op.drop_table("qa_items")

"""Covering indexes for the dashboard's aggregates (read from the index, not the wide rows).

Revision ID: 0006_report_indexes
Revises: 0003_qa_review
Depends on: 0004_handoffs
"""

from __future__ import annotations

from alembic import op

revision = "0006_report_indexes"
down_revision = "0003_qa_review"
branch_labels = None
depends_on = "0004_handoffs"

HANDOFF_COLUMNS = [
    "created_at",
    "helper_type",
    "connected_at",
    "accepted_at",
    "ended_at",
    "reason_code",
    "outcome",
    "live_call_id",
]
"""Every handoff column the dashboard reads, the range column first."""


def upgrade() -> None:
    op.create_index("ix_handoffs_report", "handoffs", HANDOFF_COLUMNS)
    op.drop_index("ix_self_service_events_at_event", table_name="self_service_events")
    op.create_index(
        "ix_self_service_events_report",
        "self_service_events",
        ["at", "event", "detail", "call_sid"],
    )


def downgrade() -> None:
    op.drop_index("ix_self_service_events_report", table_name="self_service_events")
    op.create_index("ix_self_service_events_at_event", "self_service_events", ["at", "event"])
    op.drop_index("ix_handoffs_report", table_name="handoffs")

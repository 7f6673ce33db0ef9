"""The jurisdiction a live call and its handoffs belong to (config/program.yaml), for reports.

Revision ID: 0009_handoff_jurisdiction
Revises: 0008_report_rollups
Depends on: 0004_handoffs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_handoff_jurisdiction"
down_revision = "0008_report_rollups"
branch_labels = None
depends_on = "0004_handoffs"


def upgrade() -> None:
    op.add_column("live_calls", sa.Column("jurisdiction", sa.String(64)))
    op.add_column("handoffs", sa.Column("jurisdiction", sa.String(64)))
    op.create_index(
        "ix_handoffs_jurisdiction_created_at", "handoffs", ["jurisdiction", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_handoffs_jurisdiction_created_at", table_name="handoffs")
    op.drop_column("handoffs", "jurisdiction")
    op.drop_column("live_calls", "jurisdiction")

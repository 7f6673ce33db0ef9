"""Hourly rollups of the dashboard figures, and an index to find what changed since.

Revision ID: 0008_report_rollups
Revises: 0006_report_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_report_rollups"
down_revision = "0006_report_indexes"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report_buckets",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("bucket", sa.String(13), primary_key=True),
        sa.Column("helper_type", sa.String(64), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "report_watermarks",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("seen_until", TS, nullable=False),
    )
    op.create_index("ix_handoffs_updated_at", "handoffs", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_handoffs_updated_at", table_name="handoffs")
    op.drop_table("report_watermarks")
    op.drop_table("report_buckets")

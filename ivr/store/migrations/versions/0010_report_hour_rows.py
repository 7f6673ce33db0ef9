"""Dashboard rollups as rows the database sums: per hour, helper type and jurisdiction.

Replaces the per-hour JSON documents of 0008 (decoding and merging them in Python took most
of a year-long view). The watermarks are cleared so the next refresh rebuilds every hour.

Revision ID: 0010_report_hour_rows
Revises: 0009_handoff_jurisdiction
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_report_hour_rows"
down_revision = "0009_handoff_jurisdiction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("report_buckets")
    op.execute("DELETE FROM report_watermarks")
    op.create_table(
        "report_handoff_hours",
        sa.Column("jurisdiction", sa.String(64), primary_key=True),
        sa.Column("hour", sa.Integer, primary_key=True),
        sa.Column("helper_type", sa.String(64), primary_key=True),
        sa.Column("requested", sa.Integer, nullable=False),
        sa.Column("connected", sa.Integer, nullable=False),
        sa.Column("no_helper", sa.Integer, nullable=False),
        sa.Column("diverted_type", sa.Integer, nullable=False),
        sa.Column("diverted_call", sa.Integer, nullable=False),
        sa.Column("answers", sa.Text),
        sa.Column("durations", sa.Text),
        sa.Column("reasons", sa.Text),
        sa.Column("outcomes", sa.Text),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_report_handoff_hours_hour", "report_handoff_hours", ["hour"])
    op.create_table(
        "report_self_service_hours",
        sa.Column("hour", sa.Integer, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("resolved", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "report_self_service_events",
        sa.Column("hour", sa.Integer, primary_key=True),
        sa.Column("event", sa.String(64), primary_key=True),
        sa.Column("detail", sa.String(128), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("report_self_service_events")
    op.drop_table("report_self_service_hours")
    op.drop_index("ix_report_handoff_hours_hour", table_name="report_handoff_hours")
    op.drop_table("report_handoff_hours")
    op.execute("DELETE FROM report_watermarks")
    op.create_table(
        "report_buckets",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("bucket", sa.String(13), primary_key=True),
        sa.Column("helper_type", sa.String(64), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
    )

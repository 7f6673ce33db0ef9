"""Dashboard histograms per 8-day and 64-day span, as (value, count) rows the database sums.

At 10,000,000 handoff events a year's view concatenated and counted ~5M hourly list entries
(answer times, durations, reasons, outcomes: one per handoff). The spans hold the same
histograms over whole UTC spans of hours, kept current by adding each rebuilt hour's change,
so a year reads a few spans plus the hourly lists at its edges. The watermarks are cleared
so the next refresh rebuilds every hour and fills the spans. The hourly counts get an index of
their own, so a view sums them without reading the hourly lists.

Revision ID: 0017_report_handoff_spans
Revises: 0010_report_hour_rows
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_report_handoff_spans"
down_revision = "0010_report_hour_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_handoff_spans",
        sa.Column("span", sa.Integer, primary_key=True),
        sa.Column("start", sa.Integer, primary_key=True),
        sa.Column("jurisdiction", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(1), primary_key=True),
        sa.Column("helper_type", sa.String(64), primary_key=True),
        sa.Column("utc_hour", sa.Integer, primary_key=True),
        sa.Column("value", sa.String(64), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_report_handoff_hours_counts",
        "report_handoff_hours",
        [
            "jurisdiction",
            "hour",
            "helper_type",
            "requested",
            "connected",
            "no_helper",
            "diverted_type",
            "diverted_call",
        ],
    )
    op.execute("DELETE FROM report_watermarks WHERE kind = 'handoffs'")


def downgrade() -> None:
    op.drop_index("ix_report_handoff_hours_counts", table_name="report_handoff_hours")
    op.drop_table("report_handoff_spans")

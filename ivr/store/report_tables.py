"""SQL tables of the dashboard's hourly rollups: figures per UTC hour, refreshed as data changes."""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, metadata

report_buckets = sa.Table(
    "report_buckets",
    metadata,
    # 'handoffs' or 'self_service'
    sa.Column("kind", sa.String(16), primary_key=True),
    # The UTC hour, 'YYYY-MM-DD HH' (sorts as time).
    sa.Column("bucket", sa.String(13), primary_key=True),
    # '' for now: an hour's figures for every helper type are in one row's data.
    sa.Column("helper_type", sa.String(64), primary_key=True),
    # The hour's figures as JSON (counts and histograms; see ivr.rollups).
    sa.Column("data", sa.Text, nullable=False),
)

report_watermarks = sa.Table(
    "report_watermarks",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    # Records changed after this instant (less a safety margin) are folded in at the next view.
    sa.Column("seen_until", Timestamp, nullable=False),
)

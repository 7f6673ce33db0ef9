"""SQL tables of the dashboard's hourly rollups: figures per UTC hour, refreshed as data changes.

Hours are whole UTC hours since 1970-01-01 (an integer, so SQL maps them to local hours and
weekdays with integer arithmetic). Counts are columns the database sums; answer times,
call durations, no-helper reasons and outcomes are lists (one entry per handoff) the database
concatenates, so a year's view is one scan of tens of thousands of rows, and the medians and
percentiles stay exact.
"""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, metadata

report_handoff_hours = sa.Table(
    "report_handoff_hours",
    metadata,
    # config/program.yaml jurisdiction id; '' when the handoff recorded none; '*' = all of them.
    sa.Column("jurisdiction", sa.String(64), primary_key=True),
    # UTC hours since 1970-01-01 of the handoffs' created_at.
    sa.Column("hour", sa.Integer, primary_key=True),
    sa.Column("helper_type", sa.String(64), primary_key=True),
    sa.Column("requested", sa.Integer, nullable=False),
    # handoffs that reached a helper
    sa.Column("connected", sa.Integer, nullable=False),
    # handoffs that did not, with a reason code
    sa.Column("no_helper", sa.Integer, nullable=False),
    # handoffs that were the first of their call to reach a helper of this type / of any type
    sa.Column("diverted_type", sa.Integer, nullable=False),
    sa.Column("diverted_call", sa.Integer, nullable=False),
    # comma-separated whole seconds, one per accepted handoff (NULL when none)
    sa.Column("answers", sa.Text),
    # comma-separated whole seconds, one per ended connected handoff (NULL when none)
    sa.Column("durations", sa.Text),
    # comma-separated reason codes, one per no-helper handoff ('%' and ',' %-escaped)
    sa.Column("reasons", sa.Text),
    # comma-separated outcomes, one per handoff with one ('%' and ',' %-escaped)
    sa.Column("outcomes", sa.Text),
    sa.Index("ix_report_handoff_hours_hour", "hour"),
    # the counts alone, so a year's view sums them without reading the lists (index only)
    sa.Index(
        "ix_report_handoff_hours_counts",
        "jurisdiction",
        "hour",
        "helper_type",
        "requested",
        "connected",
        "no_helper",
        "diverted_type",
        "diverted_call",
    ),
    sqlite_with_rowid=False,
)

report_self_service_hours = sa.Table(
    "report_self_service_hours",
    metadata,
    sa.Column("hour", sa.Integer, primary_key=True),
    # calls whose first event is in this hour, and those of them no person took
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("resolved", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

report_self_service_events = sa.Table(
    "report_self_service_events",
    metadata,
    sa.Column("hour", sa.Integer, primary_key=True),
    sa.Column("event", sa.String(64), primary_key=True),
    # '' when the event has no detail
    sa.Column("detail", sa.String(128), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

report_watermarks = sa.Table(
    "report_watermarks",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    # Records changed after this instant (less a safety margin) are folded in at the next view.
    sa.Column("seen_until", Timestamp, nullable=False),
)

report_handoff_spans = sa.Table(
    "report_handoff_spans",
    metadata,
    # A span of whole UTC hours: `span` hours (8 or 64 days) from `start` (a multiple of span).
    sa.Column("span", sa.Integer, primary_key=True),
    sa.Column("start", sa.Integer, primary_key=True),
    # as in report_handoff_hours ('*' = all of them)
    sa.Column("jurisdiction", sa.String(64), primary_key=True),
    # 'a' answer seconds, 'A' answer seconds by UTC hour of day over every helper type,
    # 'T' the same per helper type, 'd' duration seconds, 'r' no-helper reason, 'o' outcome
    sa.Column("kind", sa.String(1), primary_key=True),
    # '*' for kind 'A'
    sa.Column("helper_type", sa.String(64), primary_key=True),
    # the UTC hour of day (0-23) for kinds 'A' and 'T'; -1 for the others
    sa.Column("utc_hour", sa.Integer, primary_key=True),
    # whole seconds in decimal, or the reason / outcome name
    sa.Column("value", sa.String(64), primary_key=True),
    # how many handoffs of the span had it
    sa.Column("count", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)

"""Tables of the callback worker: one row per attempt, and the callback's event history.

Columns added to `callbacks` itself (attempts, next attempt, outcome, escalation, closing by
hand) are declared on that table here too, so queries see them; migration
0003_callback_attempts creates all of it.
"""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, callbacks, metadata

CALLBACK_COLUMNS = (
    sa.Column("attempts_made", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp),
    sa.Column("last_outcome", sa.String(32)),
    sa.Column("opted_out_at", Timestamp),
    sa.Column("escalated_at", Timestamp),
    sa.Column("overdue_at", Timestamp),
    sa.Column("closed_at", Timestamp),
    sa.Column("closed_by", sa.String(64)),
    sa.Column("close_note", sa.Text),
    # The handoff's jurisdiction for a dropped handoff or a follow-up (migration 0012); none
    # for self-service callbacks, which belong to program.yaml's self_service_jurisdiction.
    sa.Column("jurisdiction", sa.String(64)),
)
"""Columns added to `callbacks` after 0001 (0003_callback_attempts; jurisdiction: 0012)."""

for _column in CALLBACK_COLUMNS:
    if _column.name not in callbacks.c:
        callbacks.append_column(_column)

callback_attempts = sa.Table(
    "callback_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "callback_id",
        sa.Integer,
        sa.ForeignKey("callbacks.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("scheduled_for", Timestamp, nullable=False),
    sa.Column("claimed_at", Timestamp),
    sa.Column("claim_token", sa.String(32)),
    sa.Column("call_sid", sa.String(64), unique=True),
    sa.Column("call_status", sa.String(32)),
    sa.Column("answered_by", sa.String(32)),
    sa.Column("outcome", sa.String(32)),
    sa.Column("counted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("helper_member_id", sa.String(64)),
    sa.Column("error", sa.String(255)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("finished_at", Timestamp),
    sa.UniqueConstraint("callback_id", "number", name="uq_callback_attempts_callback_number"),
)

callback_events = sa.Table(
    "callback_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("callback_id", sa.Integer, index=True),
    sa.Column("attempt_id", sa.Integer, index=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("detail", sa.String(255)),
    sa.Column("by_staff_id", sa.String(64)),
    sa.Column("at", Timestamp, nullable=False, index=True),
)

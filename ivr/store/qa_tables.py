"""SQL tables for quality assurance: calls flagged for review and the reviewers' findings."""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, metadata

qa_items = sa.Table(
    "qa_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # What is reviewed: a handoff (its id), a callback (its id) or a self-service call (CallSid).
    sa.Column("subject_kind", sa.String(16), nullable=False),
    sa.Column("subject_ref", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("jurisdiction", sa.String(64)),
    sa.Column("helper_type", sa.String(64)),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("flagged_at", Timestamp, nullable=False),
    sa.UniqueConstraint("subject_kind", "subject_ref", "reason", name="uq_qa_items_subject"),
    sa.Index("ix_qa_items_occurred_at", "occurred_at"),
)

qa_findings = sa.Table(
    "qa_findings",
    metadata,
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
    # Why a crisis team was not offered (a code from ivr.reporting.qa.NotOfferedReason), when it was not.
    sa.Column("not_offered_reason", sa.String(32)),
    sa.Column("coaching_note", sa.Text),
    sa.Column("reviewed_at", Timestamp, nullable=False),
)

"""Foundation: service requests, callbacks, outbound SMS, self-service events.

Revision ID: 0001_foundation
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("reference", sa.String(16), nullable=False, unique=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("call_sid", sa.String(64), nullable=False, index=True),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("caller_number", sa.String(32)),
        sa.Column("recording_sid", sa.String(64)),
        sa.Column("recording_url", sa.String(512)),
        sa.Column("recording_duration", sa.Integer),
        sa.Column("recording_status", sa.String(32)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("call_sid", sa.String(64), index=True),
        sa.Column("phone_number", sa.String(32)),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("helper_type", sa.String(64)),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("consent", sa.Boolean, nullable=False),
        sa.Column("consent_at", TS),
        sa.Column("due_at", TS),
        sa.Column("deadline_at", TS),
        sa.Column("note", sa.Text),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "outbound_sms",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("to_number", sa.String(32), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(32), nullable=False, index=True),
        sa.Column("twilio_sid", sa.String(64)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS),
    )
    op.create_table(
        "self_service_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("idempotency_key", sa.String(160), nullable=False, unique=True),
        sa.Column("call_sid", sa.String(64), nullable=False, index=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("detail", sa.String(128)),
        sa.Column("language", sa.String(8)),
        sa.Column("at", TS, nullable=False, index=True),
    )


def downgrade() -> None:
    for table in ("self_service_events", "outbound_sms", "callbacks", "service_requests"):
        op.drop_table(table)

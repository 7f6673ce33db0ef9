"""SQL tables for durable records. Migrations in ivr/store/migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

service_requests = sa.Table(
    "service_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("reference", sa.String(16), nullable=False, unique=True),
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("call_sid", sa.String(64), index=True),  # None for a partner's request
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("caller_number", sa.String(32)),
    sa.Column("recording_sid", sa.String(64)),
    sa.Column("recording_url", sa.String(512)),
    sa.Column("recording_duration", sa.Integer),
    sa.Column("recording_status", sa.String(32)),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # since migration 0014: where the report came from, where the problem is, who has it
    sa.Column("source", sa.String(16), nullable=False, server_default="phone"),
    sa.Column("partner_id", sa.Integer),
    sa.Column("jurisdiction", sa.String(64)),
    sa.Column("address", sa.String(400)),
    sa.Column("address_id", sa.String(64)),
    sa.Column("latitude", sa.Float),
    sa.Column("longitude", sa.Float),
    sa.Column("description", sa.Text),
    sa.Column("transcript", sa.Text),
    sa.Column("tags", sa.String(255)),
    sa.Column("media_url", sa.String(1024)),
    sa.Column("contact_name", sa.String(201)),
    sa.Column("contact_email", sa.String(254)),
    sa.Column("contact_phone", sa.String(32)),
    sa.Column("account_id", sa.String(128)),
    sa.Column("device_id", sa.String(128)),
    sa.Column("status_note", sa.Text),
    sa.Column("status_changed_at", Timestamp),
    sa.Column("assigned_to", sa.String(120)),
    sa.Column("notify_sms", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("notify_consent_at", Timestamp),
    # since migration 0015: how Twilio's transcription went, and whether crisis screening of
    # the transcript flagged the report for urgent review
    sa.Column("transcript_status", sa.String(16)),
    sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()),
)

service_request_changes = sa.Table(
    "service_request_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "request_id",
        sa.Integer,
        sa.ForeignKey("service_requests.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("previous_status", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("public_note", sa.Text),
    sa.Column("internal_note", sa.Text),
    sa.Column("assigned_to", sa.String(120)),
    sa.Column("notify", sa.String(16), nullable=False, index=True),
    sa.Column("sms_id", sa.Integer),
)

callbacks = sa.Table(
    "callbacks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("call_sid", sa.String(64), index=True),
    sa.Column("phone_number", sa.String(32)),
    sa.Column("language", sa.String(8), nullable=False),
    sa.Column("helper_type", sa.String(64)),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("consent", sa.Boolean, nullable=False, default=False),
    sa.Column("consent_at", Timestamp),
    sa.Column("due_at", Timestamp),
    sa.Column("deadline_at", Timestamp),
    sa.Column("note", sa.Text),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

outbound_sms = sa.Table(
    "outbound_sms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("to_number", sa.String(32), nullable=False),
    sa.Column("from_number", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("twilio_sid", sa.String(64)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.String(255)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp),
    # since 0014: sent only inside the quiet-hours window (texts nobody asked for right now)
    sa.Column("quiet_hours", sa.Boolean, nullable=False, server_default=sa.false()),
)

self_service_events = sa.Table(
    "self_service_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String(160), nullable=False, unique=True),
    sa.Column("call_sid", sa.String(64), nullable=False, index=True),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("detail", sa.String(128)),
    sa.Column("language", sa.String(8)),
    sa.Column("at", Timestamp, nullable=False, index=True),
)

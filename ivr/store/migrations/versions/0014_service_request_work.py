"""311 reports as work items: where the problem is, who has it, its status history, texts.

service_requests gains the address the resident spoke (or a partner sent), its jurisdiction,
where it came from (the phone line or an Open311 partner), the public status note, who it is
assigned to, and the resident's consent to a text when its status changes. Each status change
is a row of service_request_changes (public and internal note, who made it, whether the
resident's text went out), so the phone, the texts and Open311 read the same history.
outbound_sms gains `quiet_hours`: such a text waits for 8 a.m. to 9 p.m. local time.

Revision ID: 0014_service_request_work
Revises: 0013_partners
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_service_request_work"
down_revision = "0013_partners"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("service_requests") as batch:
        batch.alter_column("call_sid", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="phone"))
        batch.add_column(sa.Column("partner_id", sa.Integer))
        batch.add_column(sa.Column("jurisdiction", sa.String(64)))
        batch.add_column(sa.Column("address", sa.String(400)))
        batch.add_column(sa.Column("address_id", sa.String(64)))
        batch.add_column(sa.Column("latitude", sa.Float))
        batch.add_column(sa.Column("longitude", sa.Float))
        batch.add_column(sa.Column("description", sa.Text))
        batch.add_column(sa.Column("transcript", sa.Text))
        batch.add_column(sa.Column("tags", sa.String(255)))
        batch.add_column(sa.Column("media_url", sa.String(1024)))
        batch.add_column(sa.Column("contact_name", sa.String(201)))
        batch.add_column(sa.Column("contact_email", sa.String(254)))
        batch.add_column(sa.Column("contact_phone", sa.String(32)))
        batch.add_column(sa.Column("account_id", sa.String(128)))
        batch.add_column(sa.Column("device_id", sa.String(128)))
        batch.add_column(sa.Column("status_note", sa.Text))
        batch.add_column(sa.Column("status_changed_at", TS))
        batch.add_column(sa.Column("assigned_to", sa.String(120)))
        batch.add_column(
            sa.Column("notify_sms", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("notify_consent_at", TS))
    op.create_index(
        "ix_service_requests_jurisdiction_created_at",
        "service_requests",
        ["jurisdiction", "created_at"],
    )
    op.create_index("ix_service_requests_status", "service_requests", ["status"])
    op.create_index("ix_service_requests_created_at", "service_requests", ["created_at"])
    op.execute(
        "UPDATE service_requests SET status_changed_at = updated_at WHERE status_changed_at IS NULL"
    )
    op.create_table(
        "service_request_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("service_requests.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("previous_status", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("public_note", sa.Text),
        sa.Column("internal_note", sa.Text),
        sa.Column("assigned_to", sa.String(120)),
        # none: nothing to send; pending: a text is owed; queued: in the outbox; skipped: could not
        sa.Column("notify", sa.String(16), nullable=False, index=True),
        sa.Column("sms_id", sa.Integer),
    )
    # A text sent only inside the quiet-hours window (status texts; not texts asked for now).
    with op.batch_alter_table("outbound_sms") as batch:
        batch.add_column(
            sa.Column("quiet_hours", sa.Boolean, nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("outbound_sms") as batch:
        batch.drop_column("quiet_hours")
    op.drop_table("service_request_changes")
    op.drop_index("ix_service_requests_created_at", table_name="service_requests")
    op.drop_index("ix_service_requests_status", table_name="service_requests")
    op.drop_index("ix_service_requests_jurisdiction_created_at", table_name="service_requests")
    with op.batch_alter_table("service_requests") as batch:
        for name in (
            "notify_consent_at", "notify_sms", "assigned_to", "status_changed_at", "status_note",
            "device_id", "account_id", "contact_phone", "contact_email", "contact_name",
            "media_url", "tags", "transcript", "description", "longitude", "latitude",
            "address_id", "address", "jurisdiction", "partner_id", "source",
        ):  # fmt: skip
            batch.drop_column(name)
        batch.alter_column("call_sid", existing_type=sa.String(64), nullable=False)

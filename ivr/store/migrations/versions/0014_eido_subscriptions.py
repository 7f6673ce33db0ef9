"""Partner subscriptions to handoff EIDOs, and the outbox of deliveries a worker pushes.

Revision ID: 0014_eido_subscriptions
Revises: 0013_partners
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_eido_subscriptions"
down_revision = "0013_partners"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partner_subscriptions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "partner_id",
            sa.Integer,
            sa.ForeignKey("partners.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("signing_secret", sa.String(128), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("cursor_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "eido_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "subscription_id",
            sa.Integer,
            sa.ForeignKey("partner_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("handoff_id", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.String(255)),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("claimed_at", TS),
        sa.Column("delivered_at", TS),
    )
    op.create_index(
        "ix_eido_deliveries_stream", "eido_deliveries", ["subscription_id", "handoff_id", "id"]
    )
    op.create_index(
        "ix_eido_deliveries_status_next", "eido_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("eido_deliveries")
    op.drop_table("partner_subscriptions")

"""Indexes for the EIDO push sweep: it looks for calls and callbacks changed since a moment.

(handoffs.updated_at is indexed since 0008.)

Also joins the two 0014 branches (EIDO subscriptions, service request work) into one head.

Revision ID: 0015_change_scan_indexes
Revises: 0014_eido_subscriptions, 0014_service_request_work
"""

from __future__ import annotations

from alembic import op

revision = "0015_change_scan_indexes"
down_revision = ("0014_eido_subscriptions", "0014_service_request_work")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_live_calls_updated_at", "live_calls", ["updated_at"])
    op.create_index("ix_callbacks_updated_at", "callbacks", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_updated_at", table_name="callbacks")
    op.drop_index("ix_live_calls_updated_at", table_name="live_calls")

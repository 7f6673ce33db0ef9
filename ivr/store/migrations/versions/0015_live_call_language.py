"""The language the caller speaks (en/es), so a dropped handoff's callback is made in it.

Revision ID: 0015_live_call_language
Revises: 0014_eido_subscriptions
Depends on: 0004_handoffs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_live_call_language"
down_revision = "0014_eido_subscriptions"
branch_labels = None
depends_on = "0004_handoffs"


def upgrade() -> None:
    op.add_column(
        "live_calls",
        sa.Column("language", sa.String(8), nullable=False, server_default="en"),
    )


def downgrade() -> None:
    op.drop_column("live_calls", "language")

"""The jurisdiction a callback belongs to (its handoff's), for the dashboard's filter.

Callbacks recorded for a dropped handoff before this migration take their handoff's
jurisdiction; self-service callbacks keep none (they belong to the self-service line's
jurisdiction, config/program.yaml).

Revision ID: 0012_callback_jurisdiction
Revises: 0003_callback_attempts
Depends on: 0009_handoff_jurisdiction
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_callback_jurisdiction"
down_revision = "0003_callback_attempts"
branch_labels = None
depends_on = "0009_handoff_jurisdiction"


def upgrade() -> None:
    op.add_column("callbacks", sa.Column("jurisdiction", sa.String(64)))
    op.create_index(
        "ix_callbacks_jurisdiction_created_at", "callbacks", ["jurisdiction", "created_at"]
    )
    op.execute(
        "UPDATE callbacks SET jurisdiction = (SELECT handoffs.jurisdiction FROM handoffs"
        " WHERE handoffs.callback_id = callbacks.id)"
        " WHERE callbacks.id IN (SELECT callback_id FROM handoffs WHERE callback_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_index("ix_callbacks_jurisdiction_created_at", table_name="callbacks")
    op.drop_column("callbacks", "jurisdiction")

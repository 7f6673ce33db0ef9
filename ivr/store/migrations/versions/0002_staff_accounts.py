"""Staff accounts: staff, their roles, login attempts.

Revision ID: 0002_staff_accounts
Revises: 0001_foundation
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_staff_accounts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("staff_id", sa.String(32), nullable=False, unique=True),
        sa.Column("display_name", sa.String(120), nullable=False),
        sa.Column("helper_type", sa.String(64)),
        sa.Column("password_hash", sa.String(255)),
        sa.Column("pin_hash", sa.String(255)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("session_epoch", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "staff_roles",
        sa.Column(
            "staff_pk",
            sa.Integer,
            sa.ForeignKey("staff.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("role", sa.String(32), primary_key=True),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("succeeded", sa.Boolean, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_login_attempts_staff_id_at", "login_attempts", ["staff_id", "at"])
    op.create_index(
        "ix_login_attempts_client_address_at", "login_attempts", ["client_address", "at"]
    )


def downgrade() -> None:
    op.drop_table("login_attempts")
    op.drop_table("staff_roles")
    op.drop_table("staff")

"""Partners: systems that read Bridgeline's records (Open311, EIDO) with hashed, scoped keys.

Revision ID: 0013_partners
Revises: 0012_callback_jurisdiction
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_partners"
down_revision = "0012_callback_jurisdiction"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "partner_scopes",
        sa.Column(
            "partner_id",
            sa.Integer,
            sa.ForeignKey("partners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("scope", sa.String(32), primary_key=True),
    )
    op.create_table(
        "partner_jurisdictions",
        sa.Column(
            "partner_id",
            sa.Integer,
            sa.ForeignKey("partners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("jurisdiction", sa.String(64), primary_key=True),
    )
    op.create_table(
        "partner_rate_windows",
        sa.Column(
            "partner_id",
            sa.Integer,
            sa.ForeignKey("partners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("minute", sa.BigInteger, nullable=False),
        sa.Column("uses", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("partner_rate_windows")
    op.drop_table("partner_jurisdictions")
    op.drop_table("partner_scopes")
    op.drop_table("partners")

"""Partner systems that read Bridgeline's records (Open311, EIDO): keys kept only as hashes."""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, metadata

partners = sa.Table(
    "partners",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    # The key's first part: not secret, names the key in logs and the audit trail, finds the row.
    sa.Column("key_prefix", sa.String(16), nullable=False, unique=True),
    # sha256 of the whole key (the key is 256 random bits: a slow hash buys nothing).
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

partner_scopes = sa.Table(
    "partner_scopes",
    metadata,
    sa.Column(
        "partner_id", sa.Integer, sa.ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("scope", sa.String(32), primary_key=True),
)

partner_jurisdictions = sa.Table(
    "partner_jurisdictions",
    metadata,
    sa.Column(
        "partner_id", sa.Integer, sa.ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    ),
    # "*" means every jurisdiction.
    sa.Column("jurisdiction", sa.String(64), primary_key=True),
)

partner_rate_windows = sa.Table(
    "partner_rate_windows",
    metadata,
    sa.Column(
        "partner_id", sa.Integer, sa.ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    ),
    # The minute being counted (epoch seconds // 60) and the uses counted in it so far.
    sa.Column("minute", sa.BigInteger, nullable=False),
    sa.Column("uses", sa.Integer, nullable=False),
)

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

partner_subscriptions = sa.Table(
    "partner_subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "partner_id", sa.Integer, sa.ForeignKey("partners.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("url", sa.String(500), nullable=False),
    # The HMAC key pushes are signed with: the partner holds a copy to verify, so it is kept as
    # given (a hash could not sign). Shown once when the subscription is made.
    sa.Column("signing_secret", sa.String(128), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    # Handoffs changed after this moment are looked at for this subscription (never history).
    sa.Column("cursor_at", Timestamp, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

eido_deliveries = sa.Table(
    "eido_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "subscription_id",
        sa.Integer,
        sa.ForeignKey("partner_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("handoff_id", sa.Integer, nullable=False),
    # subscription:handoff:sha256 of the document: one delivery per change, sent as the
    # Idempotency-Key header so the partner can drop a repeat.
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("last_error", sa.String(255)),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("claimed_at", Timestamp),
    sa.Column("delivered_at", Timestamp),
    sa.Index("ix_eido_deliveries_stream", "subscription_id", "handoff_id", "id"),
    sa.Index("ix_eido_deliveries_status_next", "status", "next_attempt_at"),
)

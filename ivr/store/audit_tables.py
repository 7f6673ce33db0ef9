"""The audit trail table: append-only, each entry carrying the hash of the one before."""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, metadata

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # seq is unique and prev_hash is unique: two writers racing for the same place in the chain
    # cannot both succeed, so the chain never forks.
    sa.Column("seq", sa.Integer, nullable=False, unique=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
)

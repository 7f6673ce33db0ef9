"""SQL tables for staff accounts, their roles, login attempts (rate limiting), console notes."""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, metadata

staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("staff_id", sa.String(32), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("helper_type", sa.String(64)),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("pin_hash", sa.String(255)),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    # Bumped when the password changes or the account is disabled: older sessions stop working.
    sa.Column("session_epoch", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

staff_roles = sa.Table(
    "staff_roles",
    metadata,
    sa.Column(
        "staff_pk", sa.Integer, sa.ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("role", sa.String(32), primary_key=True),
)

login_attempts = sa.Table(
    "login_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # What was typed as the staff ID (normalised), whether or not such an account exists.
    sa.Column("staff_id", sa.String(64), nullable=False),
    sa.Column("client_address", sa.String(64), nullable=False),
    sa.Column("succeeded", sa.Boolean, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_login_attempts_staff_id_at", "staff_id", "at"),
    sa.Index("ix_login_attempts_client_address_at", "client_address", "at"),
)

call_notes = sa.Table(
    "call_notes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # The live call (ivr.store.handoff_tables.live_calls.id); no foreign key, so the two
    # migration branches stay independent.
    sa.Column("live_call_id", sa.Integer, nullable=False, index=True),
    sa.Column("staff_id", sa.String(32), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("at", Timestamp, nullable=False),
)

"""SQL tables for warm handoffs: live calls, handoff records, their append-only event history,
and failed transfer-desk sign-ins. Created by migration 0004_handoffs."""

from __future__ import annotations

import sqlalchemy as sa

from ivr.store.tables import Timestamp, metadata

live_calls = sa.Table(
    "live_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # The conference the call waits in: "bl-<caller CallSid>", unique per call.
    sa.Column("conference_name", sa.String(80), nullable=False, unique=True),
    sa.Column("conference_sid", sa.String(64)),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("call_sid", sa.String(64), nullable=False, unique=True),
    sa.Column("callback_number", sa.String(32)),
    sa.Column("call_taker_staff_id", sa.String(32)),
    sa.Column("call_taker_call_sid", sa.String(64)),
    # Which intake call-taker (1-based, roster order; past the last: the fallback line) is dialed.
    sa.Column("call_taker_attempt", sa.Integer, nullable=False, default=0),
    # config/program.yaml call_jurisdictions, set when the call starts (migration 0009).
    sa.Column("jurisdiction", sa.String(64)),
    # The caller's language, en or es (migration 0015): a dropped handoff's callback uses it.
    sa.Column("language", sa.String(8), nullable=False, server_default="en"),
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp),
)

handoffs = sa.Table(
    "handoffs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("idempotency_key", sa.String(128), nullable=False, unique=True),
    sa.Column(
        "live_call_id",
        sa.Integer,
        sa.ForeignKey("live_calls.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("call_taker_staff_id", sa.String(32)),
    sa.Column("helper_type", sa.String(64), nullable=False, index=True),
    # JSON: {"weapon": false, ...} as answered; the members to try, in order, frozen at start.
    sa.Column("answers", sa.Text, nullable=False),
    sa.Column("chain", sa.Text, nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Column("callback_number", sa.String(32)),
    # Derived from handoff_events by ivr.flows.handoffs.derive (the one state machine).
    sa.Column("status", sa.String(24), nullable=False, index=True),
    sa.Column("reason_code", sa.String(40)),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("member_id", sa.String(64), index=True),
    sa.Column("helper_call_sid", sa.String(64)),
    sa.Column("outcome", sa.String(40)),
    sa.Column("outcome_note", sa.Text),
    sa.Column("follow_up_at", Timestamp),
    sa.Column("outcome_by", sa.String(32)),
    sa.Column("outcome_at", Timestamp),
    sa.Column("callback_id", sa.Integer),
    # Copied from the live call when the handoff is recorded (migration 0009).
    sa.Column("jurisdiction", sa.String(64)),
    sa.Column("created_at", Timestamp, nullable=False, index=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("accepted_at", Timestamp),
    sa.Column("connected_at", Timestamp),
    sa.Column("ended_at", Timestamp),
    sa.Index("ix_handoffs_jurisdiction_created_at", "jurisdiction", "created_at"),
)

handoff_events = sa.Table(
    "handoff_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "handoff_id",
        sa.Integer,
        sa.ForeignKey("handoffs.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    # CallSid + event + SequenceNumber/Timestamp, or our own key: a retried webhook adds nothing.
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    sa.Column("idempotency_token", sa.String(128), unique=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer),
    sa.Column("member_id", sa.String(64)),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("sequence", sa.Integer),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("received_at", Timestamp, nullable=False),
    sa.Column("reason", sa.String(40)),
    sa.Column("detail", sa.String(200)),
)

desk_sign_in_failures = sa.Table(
    "desk_sign_in_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("call_sid", sa.String(64), nullable=False, index=True),
    # What was keyed as the staff ID (digits only), and a one-way tag of the calling number.
    sa.Column("staff_id", sa.String(32), nullable=False),
    sa.Column("caller_tag", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Index("ix_desk_sign_in_failures_staff_id_at", "staff_id", "at"),
    sa.Index("ix_desk_sign_in_failures_caller_tag_at", "caller_tag", "at"),
)

conference_inbox = sa.Table(
    "conference_inbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # Twilio's idempotency token, else conference + participant + event + sequence: a callback
    # Twilio sends twice is kept once (migration 0011_conference_inbox).
    sa.Column("dedupe_key", sa.String(200), nullable=False, unique=True),
    sa.Column("live_call_id", sa.Integer, nullable=False),
    # JSON of the callback's fields that ivr.flows.desk.TransferDesk.conference_event reads.
    sa.Column("form", sa.Text, nullable=False),
    sa.Column("token", sa.String(128)),
    sa.Column("received_at", Timestamp, nullable=False),
    # When a web process's spool moved it into this table: a worker applies it only once
    # every other web process has had time to add what it took in before (migration 0020).
    sa.Column("inboxed_at", Timestamp),
    # Which apply job holds the row, since when; a claim older than a few minutes is retaken.
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", Timestamp, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # Set once applied; the row is kept a day so a late Twilio retry is still a duplicate.
    sa.Column("applied_at", Timestamp, index=True),
    sa.Index("ix_conference_inbox_live_call_id_received_at", "live_call_id", "received_at"),
)
"""Conference status callbacks received, applied to their live call and handoffs in order per
call by a worker (ivr.flows.conference_inbox)."""

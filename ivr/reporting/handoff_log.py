"""The handoff log export: one row per handoff, in the program's columns and local time.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.reporting.handoff_figures import _handoff_where
from ivr.reporting.measures import Filters, _utc
from ivr.store.db import seconds_between as seconds_between

# ------------------------------------------------------------------ handoff log and review facts


HANDOFF_LOG_COLUMNS = (
    "handoff_id",
    "created_at_utc",
    "local_time",
    "helper_type",
    "origin",
    "status",
    "reason_code",
    "attempt",
    "member_id",
    "call_taker_staff_id",
    "answer_seconds",
    "duration_seconds",
    "outcome",
    "outcome_by",
    "follow_up_at_utc",
    "callback_id",
)
"""Handoff log columns in a CSV export: no phone number, no free text."""

HANDOFF_NOTE_COLUMNS = ("handoff_reason_text", "outcome_note")
"""Free-text columns added only when the supervisor asks for notes."""


def handoff_log(
    engine: sa.Engine, program: ProgramConfig, filters: Filters, *, with_notes: bool = False
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The handoffs in the filters, oldest first, as CSV columns and rows."""
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    where, _, _ = _handoff_where(engine, program, filters)
    answer = seconds_between(engine, h.accepted_at, h.created_at)
    duration = seconds_between(engine, h.ended_at, h.connected_at)
    columns = [
        h.id,
        h.created_at,
        h.helper_type,
        h.origin,
        h.status,
        h.reason_code,
        h.attempt,
        h.member_id,
        h.call_taker_staff_id,
        answer,
        duration,
        h.outcome,
        h.outcome_by,
        h.follow_up_at,
        h.callback_id,
    ]
    if with_notes:
        columns += [h.reason, h.outcome_note]
    zone = program.zone
    out: list[tuple[Any, ...]] = []
    with engine.connect() as conn:
        for row in conn.execute(sa.select(*columns).where(*where).order_by(h.created_at, h.id)):
            created = _utc(row[1])
            local = created.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %a") if created else ""
            follow = _utc(row[13])
            out.append(
                (
                    row[0],
                    created.isoformat() if created else "",
                    local,
                    *row[2:13],
                    follow.isoformat() if follow else "",
                    row[14],
                    *row[15:],
                )
            )
    names = HANDOFF_LOG_COLUMNS + (HANDOFF_NOTE_COLUMNS if with_notes else ())
    return names, out

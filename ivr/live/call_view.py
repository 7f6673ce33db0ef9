"""A live call as a supervisor reads it: status, handoffs with their history, notes (no numbers)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ivr.decisions.handoffs import EventRecord, EventSource, HandoffEvent, LiveCall
from ivr.reporting.labels import Labels
from ivr.store.account_tables import call_notes
from ivr.store.callback_records import as_utc


@dataclass(frozen=True)
class EventLine:
    """One line of a handoff's history, in words."""

    at: datetime
    what: str
    who: str
    why: str


@dataclass(frozen=True)
class HandoffView:
    """A handoff of the call."""

    handoff_id: int
    helper_type: str
    status: str
    reason_given: str
    no_helper_reason: str
    member: str
    asked_at: datetime
    answers: tuple[tuple[str, str], ...]
    outcome: str
    events: tuple[EventLine, ...]
    outcome_note: str = ""
    call_taker: str = ""


@dataclass(frozen=True)
class NoteView:
    """A call-taker's note."""

    at: datetime
    staff_id: str
    body: str


@dataclass(frozen=True)
class CallView:
    """Everything the read-only call page shows."""

    call_id: int
    title: str
    status: str
    origin: str
    jurisdiction: str
    started: datetime
    ended: datetime | None
    call_taker: str
    handoffs: tuple[HandoffView, ...]
    notes: tuple[NoteView, ...]

    def version(self) -> str:
        """A short hash of the content (the page's ETag; the dataclasses' repr is stable)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:32]


def read_notes(engine: sa.Engine, live_call_id: int) -> list[NoteView]:
    """The call-takers' notes on a call, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(call_notes.c.at, call_notes.c.staff_id, call_notes.c.body)
            .where(call_notes.c.live_call_id == live_call_id)
            .order_by(call_notes.c.at, call_notes.c.id)
        ).all()
    return [NoteView(as_utc(r.at) or r.at, r.staff_id, r.body) for r in rows]


def _event_lines(events: Sequence[EventRecord], labels: Labels) -> tuple[EventLine, ...]:
    # Twilio's callbacks name the attempt, not the helper: say who each attempt dialed.
    dialed = {
        e.attempt: e.member_id
        for e in events
        if e.event is HandoffEvent.DIALING and e.attempt is not None and e.member_id
    }
    lines = []
    for e in events:
        if e.source is EventSource.STAFF:
            who = e.member_id or ""
        else:
            member_id = e.member_id or (dialed.get(e.attempt) if e.attempt is not None else None)
            who = labels.member(member_id) if member_id else ""
        lines.append(
            EventLine(
                at=e.occurred_at,
                what=labels.handoff_event(e.event.value),
                who=who,
                why=labels.reason(e.reason) if e.reason else "",
            )
        )
    return tuple(lines)


def build(
    live: LiveCall,
    history: Mapping[int, Sequence[EventRecord]],
    notes: Sequence[NoteView],
    questions: Mapping[str, str],
    labels: Labels,
) -> CallView:
    """The read-only view of `live`, newest handoff first."""
    views = []
    for h in live.handoffs:
        order = [q for q in questions if q in h.answers]
        order += [q for q in h.answers if q not in questions]
        answers = tuple(
            (questions.get(q) or q.replace("_", " "), "yes" if h.answers[q] else "no")
            for q in order
        )
        views.append(
            HandoffView(
                handoff_id=h.id,
                helper_type=labels.helper_type(h.helper_type),
                status=labels.handoff_status(h.status.value),
                reason_given=h.reason or "",
                no_helper_reason=labels.reason(h.reason_code) if h.reason_code else "",
                member=labels.member(h.member_id) if h.member_id else "",
                asked_at=h.created_at,
                answers=answers,
                outcome=labels.outcome(h.outcome) if h.outcome else "",
                events=_event_lines(history.get(h.id, ()), labels),
                outcome_note=h.outcome_note or "",
                call_taker=h.call_taker_staff_id or "",
            )
        )
    return CallView(
        call_id=live.id,
        title=f"Call #{live.id}",
        status=labels.live_call_status(live.status.value),
        origin=labels.origin(live.origin.value),
        jurisdiction=labels.jurisdiction(live.jurisdiction),
        started=live.created_at,
        ended=live.ended_at,
        call_taker=live.call_taker_staff_id or "",
        handoffs=tuple(views),
        notes=tuple(notes),
    )

"""Handoffs and live calls in SQL: rows to objects, live-call queries, and recording an event
(inserted once, the handoff's derived columns refreshed under a row lock).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ivr.decisions.handoffs import (
    TERMINAL,
    Derived,
    EventRecord,
    EventSource,
    Handoff,
    HandoffEvent,
    HandoffStatus,
    LiveCall,
    LiveCallStatus,
    Origin,
    _opt_utc,
    _order,
    _utc,
    conference_name_for,
    derive,
)
from ivr.store.db import insert_skipping_duplicates
from ivr.store.handoff_tables import handoff_events as events_table
from ivr.store.handoff_tables import handoffs, live_calls

log = logging.getLogger(__name__)


def _handoff(row: Any) -> Handoff:
    return Handoff(
        id=row.id,
        live_call_id=row.live_call_id,
        origin=Origin(row.origin),
        call_taker_staff_id=row.call_taker_staff_id,
        helper_type=row.helper_type,
        answers=json.loads(row.answers),
        chain=tuple(json.loads(row.chain)),
        reason=row.reason,
        callback_number=row.callback_number,
        status=HandoffStatus(row.status),
        reason_code=row.reason_code,
        attempt=row.attempt,
        member_id=row.member_id,
        helper_call_sid=row.helper_call_sid,
        outcome=row.outcome,
        outcome_note=row.outcome_note,
        follow_up_at=_opt_utc(row.follow_up_at),
        outcome_by=row.outcome_by,
        callback_id=row.callback_id,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        accepted_at=_opt_utc(row.accepted_at),
        connected_at=_opt_utc(row.connected_at),
        ended_at=_opt_utc(row.ended_at),
        jurisdiction=row.jurisdiction,
    )


def _event(row: Any) -> EventRecord:
    return EventRecord(
        id=row.id,
        handoff_id=row.handoff_id,
        event=HandoffEvent(row.event),
        source=EventSource(row.source),
        occurred_at=_utc(row.occurred_at),
        attempt=row.attempt,
        member_id=row.member_id,
        call_sid=row.call_sid,
        sequence=row.sequence,
        reason=row.reason,
        detail=row.detail,
    )


def _live_call(row: Any, items: tuple[Handoff, ...] = ()) -> LiveCall:
    return LiveCall(
        id=row.id,
        conference_name=row.conference_name,
        conference_sid=row.conference_sid,
        origin=Origin(row.origin),
        call_sid=row.call_sid,
        callback_number=row.callback_number,
        call_taker_staff_id=row.call_taker_staff_id,
        call_taker_call_sid=row.call_taker_call_sid,
        call_taker_attempt=row.call_taker_attempt,
        status=LiveCallStatus(row.status),
        created_at=_utc(row.created_at),
        ended_at=_opt_utc(row.ended_at),
        handoffs=items,
        jurisdiction=row.jurisdiction,
        language=row.language or "en",
    )


# --------------------------------------------------------------------------- live calls


def open_live_call(
    engine: sa.Engine,
    *,
    call_sid: str,
    origin: Origin,
    callback_number: str | None,
    call_taker_staff_id: str | None,
    now: datetime,
    round_: int = 1,
    jurisdiction: str | None = None,
    language: str = "en",
) -> LiveCall:
    """Record a call held in a conference (idempotent on CallSid); later values fill gaps.

    A desk call that comes back for another round after its conference ended (nobody took the
    first handoff) is reopened in a new conference, `bl-<CallSid>-<round>`, so late callbacks
    from the old conference cannot touch it.
    """
    values = {
        "conference_name": conference_name_for(call_sid),
        "origin": origin.value,
        "call_sid": call_sid,
        "callback_number": callback_number,
        "call_taker_staff_id": call_taker_staff_id,
        "status": LiveCallStatus.WAITING.value,
        "call_taker_attempt": 0,
        "jurisdiction": jurisdiction,
        "language": language,
        "created_at": now,
        "updated_at": now,
    }
    try:
        with engine.begin() as conn:
            conn.execute(live_calls.insert().values(**values))
    except sa.exc.IntegrityError:
        updates: dict[str, Any] = {}
        if callback_number:
            updates["callback_number"] = callback_number
        if call_taker_staff_id:
            updates["call_taker_staff_id"] = call_taker_staff_id
        if language != "en":
            updates["language"] = language
        existing = live_call_by_sid(engine, call_sid)
        if jurisdiction and existing is not None and existing.jurisdiction is None:
            updates["jurisdiction"] = jurisdiction
        if existing is not None and existing.status is LiveCallStatus.ENDED and round_ > 1:
            updates.update(
                status=LiveCallStatus.WAITING.value,
                ended_at=None,
                conference_sid=None,
                conference_name=f"{conference_name_for(call_sid)}-{round_}"[:80],
            )
        if updates:
            with engine.begin() as conn:
                conn.execute(
                    live_calls.update()
                    .where(live_calls.c.call_sid == call_sid)
                    .values(updated_at=now, **updates)
                )
    found = live_call_by_sid(engine, call_sid)
    assert found is not None
    return found


def live_call_by_sid(engine: sa.Engine, call_sid: str) -> LiveCall | None:
    """The live call held for a caller leg."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(live_calls).where(live_calls.c.call_sid == call_sid)).first()
    return _live_call(row) if row else None


def get_live_call(engine: sa.Engine, live_call_id: int) -> LiveCall | None:
    """A live call by id, with its handoffs (newest first)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(live_calls).where(live_calls.c.id == live_call_id)).first()
        if row is None:
            return None
        rows = conn.execute(
            sa.select(handoffs)
            .where(handoffs.c.live_call_id == live_call_id)
            .order_by(handoffs.c.id.desc())
        ).all()
    return _live_call(row, tuple(_handoff(r) for r in rows))


_LIVE_CALL_BY_ID = sa.select(live_calls).where(live_calls.c.id == sa.bindparam("live_call_id"))
"""Built once: the conference status callback reads its live call on every request."""


def get_live_call_only(engine: sa.Engine, live_call_id: int) -> LiveCall | None:
    """A live call by id without its handoffs (one round trip, for the conference callbacks)."""
    with engine.connect() as conn:
        row = conn.execute(_LIVE_CALL_BY_ID, {"live_call_id": live_call_id}).first()
    return _live_call(row) if row is not None else None


def list_live_calls(engine: sa.Engine) -> list[LiveCall]:
    """Calls still held in a conference, oldest first, each with its handoffs (newest first)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(live_calls)
            .where(live_calls.c.status != LiveCallStatus.ENDED.value)
            .order_by(live_calls.c.created_at, live_calls.c.id)
        ).all()
        ids = [r.id for r in rows]
        by_call: dict[int, list[Handoff]] = {i: [] for i in ids}
        if ids:
            for h in conn.execute(
                sa.select(handoffs)
                .where(handoffs.c.live_call_id.in_(ids))
                .order_by(handoffs.c.id.desc())
            ).all():
                by_call[h.live_call_id].append(_handoff(h))
    return [_live_call(r, tuple(by_call[r.id])) for r in rows]


def update_live_call(engine: sa.Engine, live_call_id: int, now: datetime, **values: Any) -> None:
    """Set conference SID, call-taker leg or status of a live call."""
    allowed = {"conference_sid", "call_taker_call_sid", "call_taker_staff_id", "status", "ended_at"}
    values = {k: v for k, v in values.items() if k in allowed}
    with engine.begin() as conn:
        conn.execute(
            live_calls.update()
            .where(live_calls.c.id == live_call_id)
            # A late callback (a join applied after the conference ended) never reopens a call.
            .where(live_calls.c.status != LiveCallStatus.ENDED.value)
            .values(updated_at=now, **values)
        )


def claim_call_taker_attempt(
    engine: sa.Engine, live_call_id: int, attempt: int, now: datetime
) -> bool:
    """Move a waiting intake call to call-taker attempt `attempt`; False if it already moved on."""
    with engine.begin() as conn:
        result = conn.execute(
            live_calls.update()
            .where(live_calls.c.id == live_call_id)
            .where(live_calls.c.call_taker_attempt == attempt - 1)
            .where(live_calls.c.status == LiveCallStatus.WAITING.value)
            .values(call_taker_attempt=attempt, updated_at=now)
        )
    return result.rowcount == 1


def end_live_call(engine: sa.Engine, live_call_id: int, now: datetime) -> None:
    """Mark a live call ended (its conference is over)."""
    with engine.begin() as conn:
        conn.execute(
            live_calls.update()
            .where(live_calls.c.id == live_call_id)
            .where(live_calls.c.status != LiveCallStatus.ENDED.value)
            .values(status=LiveCallStatus.ENDED.value, ended_at=now, updated_at=now)
        )


def end_live_call_if_idle(engine: sa.Engine, call_sid: str, now: datetime) -> None:
    """End a live call none of whose handoffs is still going (e.g. a refused desk transfer)."""
    live = live_call_by_sid(engine, call_sid)
    if live is not None and not active_handoffs(engine, live.id):
        end_live_call(engine, live.id, now)


def get_handoff(engine: sa.Engine, handoff_id: int) -> Handoff | None:
    """One handoff record."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(handoffs).where(handoffs.c.id == handoff_id)).first()
    return _handoff(row) if row else None


def handoff_events(engine: sa.Engine, handoff_id: int) -> list[EventRecord]:
    """A handoff's history in the order it happened (Twilio's timestamps)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events_table).where(events_table.c.handoff_id == handoff_id)
        ).all()
    return sorted((_event(r) for r in rows), key=_order)


def handoffs_for_call(engine: sa.Engine, live_call_id: int) -> list[Handoff]:
    """Every handoff of one live call, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(handoffs)
            .where(handoffs.c.live_call_id == live_call_id)
            .order_by(handoffs.c.id)
        ).all()
    return [_handoff(r) for r in rows]


# --------------------------------------------------------------------------- recording events


_NEW_EVENT = {
    dialect: insert_skipping_duplicates(dialect, events_table).returning(events_table.c.id)
    for dialect in ("sqlite", "postgresql")
}
"""Append an event unless its dedupe key or Twilio token is already there (either unique
index): one statement, built once, and a retry racing the original cannot raise."""

_EVENTS_OF = sa.select(events_table).where(events_table.c.handoff_id == sa.bindparam("h_id"))

_LOCK_HANDOFF = (
    handoffs.update()
    .where(handoffs.c.id == sa.bindparam("h_id"))
    .values(updated_at=sa.bindparam("h_now"))
    .returning(handoffs.c.status)
)
"""Touch the handoff row and read its status: takes the row lock (PostgreSQL) or the write
lock (SQLite) first, so two callbacks at once cannot derive from stale histories."""

_SET_DERIVED = handoffs.update().where(handoffs.c.id == sa.bindparam("h_id"))
"""Executed with the derived columns as parameters (built once, cached by SQLAlchemy)."""


def _insert_event(
    conn: sa.Connection,
    handoff_id: int,
    event: HandoffEvent,
    source: EventSource,
    dedupe_key: str,
    occurred_at: datetime,
    *,
    token: str | None = None,
    attempt: int | None = None,
    member_id: str | None = None,
    call_sid: str | None = None,
    sequence: int | None = None,
    reason: str | None = None,
    detail: str | None = None,
    received_at: datetime | None = None,
) -> bool:
    """Append one event unless its key (or Twilio token) was seen; True when it was new."""
    inserted = conn.execute(
        _NEW_EVENT[conn.dialect.name],
        {
            "handoff_id": handoff_id,
            "dedupe_key": dedupe_key[:200],
            "idempotency_token": token[:128] if token else None,
            "event": event.value,
            "source": source.value,
            "attempt": attempt,
            "member_id": member_id,
            "call_sid": call_sid,
            "sequence": sequence,
            "occurred_at": _utc(occurred_at),
            "received_at": _utc(received_at or occurred_at),
            "reason": reason,
            "detail": (detail or None) and detail[:200],
        },
    ).first()
    return inserted is not None


def _derive_in(conn: sa.Connection, handoff_id: int) -> Derived:
    return derive(_event(r) for r in conn.execute(_EVENTS_OF, {"h_id": handoff_id}))


def _rederive(conn: sa.Connection, handoff_id: int, now: datetime) -> Derived:
    d = _derive_in(conn, handoff_id)
    conn.execute(
        _SET_DERIVED,
        {
            "h_id": handoff_id,
            "status": d.status.value,
            "reason_code": d.reason_code,
            "attempt": d.attempt,
            "member_id": d.member_id,
            "helper_call_sid": d.helper_call_sid,
            "accepted_at": d.accepted_at,
            "connected_at": d.connected_at,
            "ended_at": d.ended_at,
            "updated_at": now,
        },
    )
    return d


@dataclass(frozen=True)
class Recorded:
    """What recording one event changed."""

    new: bool
    before: HandoffStatus
    after: Derived


def record_event(
    engine: sa.Engine,
    handoff_id: int,
    event: HandoffEvent,
    *,
    source: EventSource,
    dedupe_key: str,
    occurred_at: datetime,
    now: datetime | None = None,
    token: str | None = None,
    attempt: int | None = None,
    member_id: str | None = None,
    call_sid: str | None = None,
    sequence: int | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> Recorded | None:
    """Append an event (deduplicated) and re-derive the status in the same transaction."""
    now = _utc(now or datetime.now(UTC))
    with engine.begin() as conn:
        row = conn.execute(_LOCK_HANDOFF, {"h_id": handoff_id, "h_now": now}).first()
        if row is None:
            return None
        before = HandoffStatus(row.status)
        new = _insert_event(
            conn,
            handoff_id,
            event,
            source,
            dedupe_key,
            occurred_at,
            token=token,
            attempt=attempt,
            member_id=member_id,
            call_sid=call_sid,
            sequence=sequence,
            reason=reason,
            detail=detail,
            received_at=now,
        )
        # A duplicate: the status as it stands, read in the same transaction.
        after = _rederive(conn, handoff_id, now) if new else _derive_in(conn, handoff_id)
    return Recorded(new=new, before=before, after=after)


_NEXT_ATTEMPT = (
    handoffs.update()
    .where(handoffs.c.id == sa.bindparam("h_id"))
    .where(
        sa.or_(
            sa.and_(
                handoffs.c.status.in_(
                    [HandoffStatus.REQUESTED.value, HandoffStatus.FALLING_BACK.value]
                ),
                handoffs.c.attempt == sa.bindparam("h_previous"),
            ),
            # A rerun of this attempt's job (RQ retry) before any call was placed for it.
            sa.and_(
                handoffs.c.status == HandoffStatus.DIALING.value,
                handoffs.c.attempt == sa.bindparam("h_attempt"),
                handoffs.c.helper_call_sid.is_(None),
            ),
        )
    )
    .where(
        sa.exists().where(
            live_calls.c.id == handoffs.c.live_call_id,
            live_calls.c.status != LiveCallStatus.ENDED.value,
        )
    )
    .values(updated_at=sa.bindparam("h_now"))
    .returning(handoffs.c.status)
)
"""Compare-and-set of "dial attempt n": the handoff still waits for its next helper (requested
or falling back from attempt n-1, or this very attempt not placed yet) and its caller's call has
not ended. Takes the handoff's row lock (PostgreSQL; SQLite: the write lock), the same one every
recorded event takes, so a caller who left is either seen here or sees this attempt."""


def record_next_attempt(
    engine: sa.Engine,
    handoff_id: int,
    attempt: int,
    *,
    source: EventSource,
    occurred_at: datetime,
    now: datetime,
    member_id: str | None,
    detail: str | None = None,
) -> Recorded | None:
    """Record that attempt `attempt` is being dialed, only if the handoff is still waiting for
    exactly that attempt and the caller is still on the line, in one transaction with the check.

    None: it moved on (the caller left, the call was cancelled, another run dialed it): nobody
    is to be dialed. Whoever records second (this, or the caller's leg ending) sees the other.
    """
    with engine.begin() as conn:
        row = conn.execute(
            _NEXT_ATTEMPT,
            {"h_id": handoff_id, "h_previous": attempt - 1, "h_attempt": attempt, "h_now": now},
        ).first()
        if row is None:
            return None
        before = HandoffStatus(row.status)
        new = _insert_event(
            conn,
            handoff_id,
            HandoffEvent.DIALING,
            source,
            f"h{handoff_id}:a{attempt}:dialing",
            occurred_at,
            attempt=attempt,
            member_id=member_id,
            detail=detail,
            received_at=now,
        )
        after = _rederive(conn, handoff_id, now) if new else _derive_in(conn, handoff_id)
    return Recorded(new=new, before=before, after=after)


def active_handoffs(engine: sa.Engine, live_call_id: int) -> list[Handoff]:
    """Handoffs of a call that are not over yet."""
    return [h for h in handoffs_for_call(engine, live_call_id) if h.status not in TERMINAL]

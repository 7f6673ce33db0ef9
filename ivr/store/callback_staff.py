"""Callbacks as staff see and work them: open ones with their age, the list with details, claim,
call now, done by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.store.callback_attempts import create_attempt, get_attempt, lock_callback
from ivr.store.callback_records import (
    OPEN_STATUSES,
    Attempt,
    AttemptStatus,
    CallbackSource,
    CallbackStatus,
    OpenCallback,
    Outcome,
    _row,
    as_utc,
    record_event,
)
from ivr.store.callback_tables import callback_attempts, callback_events
from ivr.store.tables import callbacks


def open_callbacks_with_age(engine: sa.Engine, now: datetime) -> list[OpenCallback]:
    """The console's list: every open callback, plus failed ones raised to a supervisor and not
    yet closed by hand. Overdue ones first, then the oldest. `age` is counted from when the
    callback was recorded; `overdue` means open past its deadline.

    Holds no phone number or note: the console shows those on the callback's own page.
    """
    waiting = sa.or_(
        callbacks.c.status.in_(OPEN_STATUSES),
        sa.and_(
            callbacks.c.status == CallbackStatus.FAILED.value,
            callbacks.c.closed_at.is_(None),
        ),
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callbacks).where(waiting).order_by(callbacks.c.created_at, callbacks.c.id)
        ).all()
    out = []
    for row in rows:
        callback = _row(row)
        created = callback.created_at or now
        overdue = callback.deadline_at is not None and now > callback.deadline_at
        out.append(
            OpenCallback(
                id=callback.id,
                source=callback.source,
                status=callback.status,
                helper_type=callback.helper_type,
                language=callback.language,
                created_at=created,
                age=now - created,
                due_at=callback.due_at,
                deadline_at=callback.deadline_at,
                attempts_made=int(row.attempts_made or 0),
                next_attempt_at=as_utc(row.next_attempt_at),
                last_outcome=row.last_outcome,
                overdue=overdue,
                escalated=row.escalated_at is not None,
            )
        )
    out.sort(key=lambda c: (not c.overdue, not c.escalated, c.created_at))
    return out


def mark_done_by_hand(
    engine: sa.Engine,
    callback_id: int,
    note: str,
    by_staff_id: str,
    now: datetime | None = None,
) -> bool:
    """A helper reached the person another way (or closes a failed one): done, with a note.

    Works on pending, dialing and failed callbacks; a scheduled attempt is skipped so no call
    follows. Returns False when the callback does not exist or is already closed.
    """
    note = (note or "").strip()
    if not note:
        raise ValueError("a note is required to close a callback by hand")
    at = now or datetime.now(UTC)
    with engine.begin() as conn:
        result = conn.execute(
            callbacks.update()
            .where(callbacks.c.id == callback_id)
            .where(
                sa.or_(
                    callbacks.c.status.in_(OPEN_STATUSES),
                    sa.and_(
                        callbacks.c.status == CallbackStatus.FAILED.value,
                        callbacks.c.closed_at.is_(None),
                    ),
                )
            )
            .values(
                status=CallbackStatus.DONE.value,
                last_outcome=Outcome.DONE_BY_HAND.value,
                closed_at=at,
                closed_by=by_staff_id[:64],
                close_note=note,
                next_attempt_at=None,
                updated_at=at,
            )
        )
        if result.rowcount != 1:
            return False
        conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.callback_id == callback_id)
            .where(callback_attempts.c.status == AttemptStatus.SCHEDULED.value)
            .values(status=AttemptStatus.SKIPPED.value, finished_at=at, updated_at=at)
        )
        record_event(
            conn,
            callback_id=callback_id,
            attempt_id=None,
            event="done_by_hand",
            by_staff_id=by_staff_id[:64],
            at=at,
        )
    return True


# --------------------------------------------------------------------------- the console's list


@dataclass(frozen=True)
class ListDetail:
    """What the console's list adds to OpenCallback: the number's last four digits, who
    claimed it, and the system's own reason text (never a resident's words)."""

    last_four: str | None
    claimed_by: str | None
    system_note: str | None


SYSTEM_NOTE_SOURCES = frozenset(
    {CallbackSource.DROPPED_HANDOFF.value, CallbackSource.CLINICIAN_FOLLOW_UP.value}
)
"""Sources whose note Bridgeline wrote itself ("follow-up of handoff 12"): safe to list."""


def list_details(engine: sa.Engine, callback_ids: list[int]) -> dict[int, ListDetail]:
    """Per callback: the last four digits of its number, who claimed it (the latest 'claimed'
    or 'unclaimed' event), and its note when Bridgeline wrote it."""
    if not callback_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                callbacks.c.id, callbacks.c.phone_number, callbacks.c.note, callbacks.c.source
            ).where(callbacks.c.id.in_(callback_ids))
        ).all()
        claims = conn.execute(
            sa.select(
                callback_events.c.callback_id,
                callback_events.c.event,
                callback_events.c.by_staff_id,
            )
            .where(callback_events.c.callback_id.in_(callback_ids))
            .where(callback_events.c.event.in_(("claimed", "unclaimed")))
            .order_by(callback_events.c.at, callback_events.c.id)
        ).all()
    claimed: dict[int, str | None] = {}
    for event in claims:
        claimed[event.callback_id] = event.by_staff_id if event.event == "claimed" else None
    out = {}
    for row in rows:
        digits = "".join(ch for ch in (row.phone_number or "") if ch.isdigit())
        out[row.id] = ListDetail(
            last_four=digits[-4:] if len(digits) >= 4 else None,
            claimed_by=claimed.get(row.id),
            system_note=row.note if row.source in SYSTEM_NOTE_SOURCES else None,
        )
    return out


def claim(
    engine: sa.Engine, callback_id: int, by_staff_id: str, release: bool, now: datetime
) -> bool:
    """A staff member takes an open callback on (or gives it back); False if it is closed."""
    with engine.begin() as conn:
        status = lock_callback(conn, callback_id)
        if status not in OPEN_STATUSES and status != CallbackStatus.FAILED.value:
            return False
        record_event(
            conn,
            callback_id=callback_id,
            attempt_id=None,
            event="unclaimed" if release else "claimed",
            by_staff_id=by_staff_id[:64],
            at=now,
        )
    return True


def call_now(
    engine: sa.Engine, callback_id: int, by_staff_id: str, now: datetime
) -> Attempt | None:
    """Bring the callback's next attempt forward to now (the worker still checks quiet hours,
    consent and opt-out); None when it is closed or a call is already being placed."""
    with engine.begin() as conn:
        status = lock_callback(conn, callback_id)
        if status != CallbackStatus.PENDING.value:
            return None
        waiting = conn.execute(
            sa.select(callback_attempts.c.id)
            .where(callback_attempts.c.callback_id == callback_id)
            .where(callback_attempts.c.status == AttemptStatus.SCHEDULED.value)
        ).scalar()
        record_event(
            conn,
            callback_id=callback_id,
            attempt_id=waiting,
            event="call_now",
            by_staff_id=by_staff_id[:64],
            at=now,
        )
    if waiting is not None:
        with engine.begin() as conn:
            conn.execute(
                callback_attempts.update()
                .where(callback_attempts.c.id == waiting)
                .where(callback_attempts.c.status == AttemptStatus.SCHEDULED.value)
                .values(scheduled_for=now.astimezone(UTC), updated_at=now)
            )
            conn.execute(
                callbacks.update()
                .where(callbacks.c.id == callback_id)
                .values(next_attempt_at=now.astimezone(UTC), updated_at=now)
            )
        found = get_attempt(engine, waiting)
        return found if found is not None and found.status is AttemptStatus.SCHEDULED else None
    return create_attempt(engine, callback_id, now, now)

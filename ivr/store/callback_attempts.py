"""Attempts to place a callback: created when due, claimed by one worker at a time, marked as
Twilio reports the call (placed, answered, bridging, connected), released when not placed.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import Enum

import sqlalchemy as sa

from ivr.store.callback_records import (
    FINAL,
    IN_FLIGHT,
    Attempt,
    AttemptStatus,
    Callback,
    CallbackStatus,
    Outcome,
    _attempt,
    _row,
    record_event,
)
from ivr.store.callback_tables import callback_attempts
from ivr.store.tables import callbacks


def get_attempt(engine: sa.Engine, attempt_id: int) -> Attempt | None:
    """The attempt with this id, if any."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(callback_attempts).where(callback_attempts.c.id == attempt_id)
        ).first()
    return _attempt(row) if row else None


def attempts_of(engine: sa.Engine, callback_id: int) -> list[Attempt]:
    """Every attempt of a callback, first first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callback_attempts)
            .where(callback_attempts.c.callback_id == callback_id)
            .order_by(callback_attempts.c.number)
        ).all()
    return [_attempt(r) for r in rows]


def needing_attempt(
    engine: sa.Engine, limit: int = 500, due_by: datetime | None = None
) -> list[Callback]:
    """Open callbacks with no attempt scheduled or on the phone (the sweep gives them one);
    `due_by`: only those whose next attempt (or first, when due) is at or before it."""
    busy = sa.select(callback_attempts.c.callback_id).where(
        callback_attempts.c.status.in_(IN_FLIGHT)
    )
    query = (
        sa.select(callbacks)
        .where(callbacks.c.status == CallbackStatus.PENDING.value)
        .where(callbacks.c.id.not_in(busy))
    )
    if due_by is not None:
        due = sa.func.coalesce(callbacks.c.next_attempt_at, callbacks.c.due_at)
        query = query.where(sa.or_(due.is_(None), due <= due_by.astimezone(UTC)))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(callbacks.c.id).limit(limit)).all()
    return [_row(r) for r in rows]


def lock_callback(conn: sa.Connection, callback_id: int) -> str | None:
    """Lock the callback's row and read its status (None: no such callback).

    An UPDATE that changes nothing takes the row lock on PostgreSQL and the write lock on
    SQLite, so what the caller does next in `conn` sees every other writer's work first."""
    return conn.execute(
        callbacks.update()
        .where(callbacks.c.id == callback_id)
        .values(updated_at=callbacks.c.updated_at)
        .returning(callbacks.c.status)
    ).scalar()


def create_attempt(
    engine: sa.Engine, callback_id: int, scheduled_for: datetime, now: datetime
) -> Attempt | None:
    """Add the next attempt of an open callback; None when one is in flight or it is closed.

    The callback's row is locked first (an UPDATE: the row lock on PostgreSQL, the write lock
    on SQLite), so two schedulers racing see each other's attempt instead of both adding one;
    the unique (callback, number) pair stays as the last guard.
    """
    try:
        with engine.begin() as conn:
            status = lock_callback(conn, callback_id)
            if status != CallbackStatus.PENDING.value:
                return None
            busy = conn.execute(
                sa.select(sa.func.count())
                .select_from(callback_attempts)
                .where(callback_attempts.c.callback_id == callback_id)
                .where(callback_attempts.c.status.in_(IN_FLIGHT))
            ).scalar()
            if busy:
                return None
            last = conn.execute(
                sa.select(sa.func.max(callback_attempts.c.number)).where(
                    callback_attempts.c.callback_id == callback_id
                )
            ).scalar()
            result = conn.execute(
                callback_attempts.insert().values(
                    callback_id=callback_id,
                    number=int(last or 0) + 1,
                    status=AttemptStatus.SCHEDULED.value,
                    scheduled_for=scheduled_for.astimezone(UTC),
                    counted=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            primary_key = result.inserted_primary_key
            assert primary_key is not None
            attempt_id = int(primary_key[0])
            record_event(
                conn,
                callback_id=callback_id,
                attempt_id=attempt_id,
                event="attempt_scheduled",
                detail=scheduled_for.astimezone(UTC).isoformat(timespec="seconds"),
                at=now,
            )
    except sa.exc.IntegrityError:
        return None
    return get_attempt(engine, attempt_id)


def scheduled_attempts(engine: sa.Engine, limit: int = 500) -> list[Attempt]:
    """Attempts waiting for their job (re-enqueued by the sweep after a Redis restart)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callback_attempts)
            .where(callback_attempts.c.status == AttemptStatus.SCHEDULED.value)
            .order_by(callback_attempts.c.scheduled_for)
            .limit(limit)
        ).all()
    return [_attempt(r) for r in rows]


def attempts_coming_due(
    engine: sa.Engine, since: datetime, until: datetime, limit: int = 200
) -> list[Attempt]:
    """Attempts still waiting whose time falls between `since` and `until`, soonest first (what
    the clock's dispatcher hands to a worker at the exact time)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callback_attempts)
            .where(callback_attempts.c.status == AttemptStatus.SCHEDULED.value)
            .where(callback_attempts.c.scheduled_for >= since.astimezone(UTC))
            .where(callback_attempts.c.scheduled_for <= until.astimezone(UTC))
            .order_by(callback_attempts.c.scheduled_for)
            .limit(limit)
        ).all()
    return [_attempt(r) for r in rows]


def reschedule_attempt(
    engine: sa.Engine, attempt_id: int, scheduled_for: datetime, reason: Outcome, now: datetime
) -> bool:
    """Move a not-yet-dialed attempt later (quiet hours, nobody on duty); False if it moved on."""
    with engine.begin() as conn:
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status == AttemptStatus.SCHEDULED.value)
            .values(scheduled_for=scheduled_for.astimezone(UTC), updated_at=now)
        )
        if result.rowcount != 1:
            return False
        callback_id = _callback_id(conn, attempt_id)
        conn.execute(
            callbacks.update()
            .where(callbacks.c.id == callback_id)
            .values(
                next_attempt_at=scheduled_for.astimezone(UTC),
                last_outcome=reason.value,
                updated_at=now,
            )
        )
        record_event(
            conn,
            callback_id=callback_id,
            attempt_id=attempt_id,
            event=f"waiting_{reason.value}",
            detail=scheduled_for.astimezone(UTC).isoformat(timespec="seconds"),
            at=now,
        )
    return True


def _callback_id(conn: sa.Connection, attempt_id: int) -> int:
    return int(
        conn.execute(
            sa.select(callback_attempts.c.callback_id).where(callback_attempts.c.id == attempt_id)
        ).scalar_one()
    )


class Claim(str, Enum):
    """What claiming an attempt found."""

    WON = "won"
    TAKEN = "taken"
    CLOSED = "closed"


def claim_attempt(engine: sa.Engine, attempt_id: int, now: datetime) -> Claim:
    """Take a scheduled attempt for dialing. Only one worker ever wins (conditional UPDATE)."""
    token = secrets.token_hex(8)
    with engine.begin() as conn:
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status == AttemptStatus.SCHEDULED.value)
            .values(
                status=AttemptStatus.DIALING.value,
                claimed_at=now,
                claim_token=token,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return Claim.TAKEN
        callback_id = _callback_id(conn, attempt_id)
        opened = conn.execute(
            callbacks.update()
            .where(callbacks.c.id == callback_id)
            .where(callbacks.c.status == CallbackStatus.PENDING.value)
            .values(status=CallbackStatus.DIALING.value, updated_at=now)
        )
        if opened.rowcount != 1:
            conn.execute(
                callback_attempts.update()
                .where(callback_attempts.c.id == attempt_id)
                .values(status=AttemptStatus.SKIPPED.value, finished_at=now, updated_at=now)
            )
            record_event(
                conn,
                callback_id=callback_id,
                attempt_id=attempt_id,
                event="attempt_skipped",
                detail="callback closed",
                at=now,
            )
            return Claim.CLOSED
        record_event(conn, callback_id=callback_id, attempt_id=attempt_id, event="dialing", at=now)
    return Claim.WON


def _attach_sid(conn: sa.Connection, attempt_id: int, call_sid: str, now: datetime) -> bool:
    """DIALING -> PLACED with the CallSid, counting the attempt once; False if already placed."""
    result = conn.execute(
        callback_attempts.update()
        .where(callback_attempts.c.id == attempt_id)
        .where(callback_attempts.c.status == AttemptStatus.DIALING.value)
        .values(
            status=AttemptStatus.PLACED.value,
            call_sid=call_sid,
            counted=True,
            updated_at=now,
        )
    )
    if result.rowcount != 1:
        return False
    callback_id = _callback_id(conn, attempt_id)
    conn.execute(
        callbacks.update()
        .where(callbacks.c.id == callback_id)
        .values(attempts_made=callbacks.c.attempts_made + 1, updated_at=now)
    )
    record_event(conn, callback_id=callback_id, attempt_id=attempt_id, event="placed", at=now)
    return True


def mark_placed(engine: sa.Engine, attempt_id: int, call_sid: str, now: datetime) -> bool:
    """Twilio accepted the call: keep its CallSid (a status callback may have done it first)."""
    with engine.begin() as conn:
        return _attach_sid(conn, attempt_id, call_sid, now)


def release_attempt(engine: sa.Engine, attempt_id: int, error: str, now: datetime) -> bool:
    """Give a claimed attempt back (Twilio said for sure no call was made) so a retry may dial."""
    with engine.begin() as conn:
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status == AttemptStatus.DIALING.value)
            .where(callback_attempts.c.call_sid.is_(None))
            .values(
                status=AttemptStatus.SCHEDULED.value,
                claimed_at=None,
                claim_token=None,
                error=error[:255],
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return False
        callback_id = _callback_id(conn, attempt_id)
        conn.execute(
            callbacks.update()
            .where(callbacks.c.id == callback_id)
            .where(callbacks.c.status == CallbackStatus.DIALING.value)
            .values(status=CallbackStatus.PENDING.value, updated_at=now)
        )
        record_event(
            conn,
            callback_id=callback_id,
            attempt_id=attempt_id,
            event="released",
            detail=error,
            at=now,
        )
    return True


def mark_answered(
    engine: sa.Engine, attempt_id: int, call_sid: str, answered_by: str, now: datetime
) -> Attempt | None:
    """The call was picked up (by a person or a machine); record who before answering Twilio."""
    with engine.begin() as conn:
        _attach_sid(conn, attempt_id, call_sid, now)
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status == AttemptStatus.PLACED.value)
            .where(callback_attempts.c.call_sid == call_sid)
            .values(
                status=AttemptStatus.ANSWERED.value,
                answered_by=answered_by[:32],
                updated_at=now,
            )
        )
        if result.rowcount == 1:
            record_event(
                conn,
                callback_id=_callback_id(conn, attempt_id),
                attempt_id=attempt_id,
                event="answered",
                detail=answered_by[:32],
                at=now,
            )
    return get_attempt(engine, attempt_id)


def _step(
    engine: sa.Engine,
    attempt_id: int,
    from_status: AttemptStatus,
    to_status: AttemptStatus,
    event: str,
    now: datetime,
    **values: object,
) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status == from_status.value)
            .values(status=to_status.value, updated_at=now, **values)
        )
        if result.rowcount != 1:
            return False
        record_event(
            conn,
            callback_id=_callback_id(conn, attempt_id),
            attempt_id=attempt_id,
            event=event,
            detail=str(values.get("helper_member_id") or "") or None,
            at=now,
        )
    return True


def mark_bridging(engine: sa.Engine, attempt_id: int, now: datetime) -> bool:
    """The person pressed 1: the on-duty helpers are being rung."""
    return _step(
        engine, attempt_id, AttemptStatus.ANSWERED, AttemptStatus.BRIDGING, "pressed_1", now
    )


def mark_connected(engine: sa.Engine, attempt_id: int, member_id: str, now: datetime) -> bool:
    """A helper accepted: the resident and the helper are talking."""
    return _step(
        engine,
        attempt_id,
        AttemptStatus.BRIDGING,
        AttemptStatus.CONNECTED,
        "helper_accepted",
        now,
        helper_member_id=member_id[:64],
    )


def note_outcome(engine: sa.Engine, attempt_id: int, outcome: Outcome, now: datetime) -> None:
    """Remember during the call how it is going to end (settled by the final status callback)."""
    with engine.begin() as conn:
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status.not_in(FINAL))
            .where(callback_attempts.c.outcome.is_(None))
            .values(outcome=outcome.value, updated_at=now)
        )
        if result.rowcount == 1:
            record_event(
                conn,
                callback_id=_callback_id(conn, attempt_id),
                attempt_id=attempt_id,
                event="call_outcome",
                detail=outcome.value,
                at=now,
            )


def stale_attempts(engine: sa.Engine, before: datetime, limit: int = 200) -> list[Attempt]:
    """Attempts dialing or on the phone since before `before` (their worker or report was lost)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callback_attempts)
            .where(callback_attempts.c.status.in_(IN_FLIGHT[1:]))
            .where(callback_attempts.c.claimed_at < before)
            .order_by(callback_attempts.c.claimed_at)
            .limit(limit)
        ).all()
    return [_attempt(r) for r in rows]

"""How an attempt ends: settled from Twilio's final status, the next attempt planned or the
callback escalated, not placed at all, or the resident opting out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.store.callback_attempts import _attach_sid, _callback_id, get_attempt
from ivr.store.callback_records import (
    FINAL,
    OPEN_STATUSES,
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


def opt_out(engine: sa.Engine, attempt_id: int, now: datetime) -> bool:
    """The resident pressed the opt-out key: no more calls for this callback."""
    with engine.begin() as conn:
        callback_id = conn.execute(
            sa.select(callback_attempts.c.callback_id).where(callback_attempts.c.id == attempt_id)
        ).scalar()
        if callback_id is None:
            return False
        conn.execute(
            callbacks.update()
            .where(callbacks.c.id == callback_id)
            .where(callbacks.c.status.in_(OPEN_STATUSES))
            .values(
                status=CallbackStatus.CANCELLED.value,
                opted_out_at=now,
                last_outcome=Outcome.OPTED_OUT.value,
                closed_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status.not_in(FINAL))
            .values(outcome=Outcome.OPTED_OUT.value, updated_at=now)
        )
        record_event(
            conn, callback_id=callback_id, attempt_id=attempt_id, event="opted_out", at=now
        )
    return True


def opted_out_since(engine: sa.Engine, phone_number: str, since: datetime | None) -> bool:
    """True when this number pressed the opt-out key on any callback after `since` (the
    consent of the callback about to be placed): an opt-out covers the number, not one request."""
    query = (
        sa.select(sa.func.count())
        .select_from(callbacks)
        .where(callbacks.c.phone_number == phone_number)
        .where(callbacks.c.opted_out_at.is_not(None))
    )
    if since is not None:
        query = query.where(callbacks.c.opted_out_at > since)
    with engine.connect() as conn:
        return bool(conn.execute(query).scalar())


Plan = Callable[[Callback], datetime | None]
"""Given the callback after an unanswered attempt: when to try next, or None to give up."""


def settle_attempt(
    engine: sa.Engine,
    attempt_id: int,
    *,
    outcome: Outcome,
    now: datetime,
    plan: Plan,
    call_status: str | None = None,
    call_sid: str | None = None,
) -> Attempt | None:
    """End an attempt once (later or repeated reports change nothing) and decide what follows.

    Connected: the callback is done. Anything else: the next attempt at `plan(callback)`, or
    failed and raised to a supervisor when `plan` gives None. A closed callback stays closed.
    """
    with engine.begin() as conn:
        if call_sid:
            _attach_sid(conn, attempt_id, call_sid, now)
        row = conn.execute(
            sa.select(callback_attempts).where(callback_attempts.c.id == attempt_id)
        ).first()
        if row is None or row.status in FINAL:
            return _attempt(row) if row else None
        connected = row.status == AttemptStatus.CONNECTED.value
        final = AttemptStatus.COMPLETED if connected else AttemptStatus.ENDED
        if connected:
            outcome = Outcome.CONNECTED
        elif row.outcome:
            outcome = Outcome(row.outcome)  # noted during the call (opted out, no helper...)
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(callback_attempts.c.status == row.status)
            .values(
                status=final.value,
                outcome=outcome.value,
                call_status=(call_status or row.call_status),
                finished_at=now,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return get_attempt(engine, attempt_id)
        callback_id = row.callback_id
        record_event(
            conn,
            callback_id=callback_id,
            attempt_id=attempt_id,
            event=f"attempt_{final.value}",
            detail=outcome.value,
            at=now,
        )
        cb_row = conn.execute(sa.select(callbacks).where(callbacks.c.id == callback_id)).one()
        callback = _row(cb_row)
        if callback.status.value not in OPEN_STATUSES:
            pass  # closed by hand or opted out meanwhile: it stays as it is
        elif connected:
            conn.execute(
                callbacks.update()
                .where(callbacks.c.id == callback_id)
                .values(
                    status=CallbackStatus.DONE.value,
                    last_outcome=outcome.value,
                    next_attempt_at=None,
                    closed_at=now,
                    updated_at=now,
                )
            )
            record_event(conn, callback_id=callback_id, attempt_id=None, event="done", at=now)
        else:
            _after_miss(conn, callback, outcome, now, plan)
    return get_attempt(engine, attempt_id)


def _after_miss(
    conn: sa.Connection, callback: Callback, outcome: Outcome, now: datetime, plan: Plan
) -> None:
    when = plan(callback)
    if when is None:
        _escalate(conn, callback.id, outcome, now, f"after {callback.attempts_made} attempts")
        return
    conn.execute(
        callbacks.update()
        .where(callbacks.c.id == callback.id)
        .values(
            status=CallbackStatus.PENDING.value,
            last_outcome=outcome.value,
            next_attempt_at=when.astimezone(UTC),
            updated_at=now,
        )
    )
    record_event(
        conn,
        callback_id=callback.id,
        attempt_id=None,
        event="retry_planned",
        detail=when.astimezone(UTC).isoformat(timespec="seconds"),
        at=now,
    )


def _escalate(
    conn: sa.Connection, callback_id: int, outcome: Outcome, now: datetime, detail: str
) -> None:
    conn.execute(
        callbacks.update()
        .where(callbacks.c.id == callback_id)
        .where(callbacks.c.status.in_(OPEN_STATUSES))
        .values(
            status=CallbackStatus.FAILED.value,
            last_outcome=outcome.value,
            escalated_at=now,
            next_attempt_at=None,
            updated_at=now,
        )
    )
    record_event(
        conn,
        callback_id=callback_id,
        attempt_id=None,
        event="raised_to_supervisor",
        detail=f"{outcome.value}: {detail}",
        at=now,
    )


def not_placed(
    engine: sa.Engine,
    attempt_id: int,
    outcome: Outcome,
    now: datetime,
    *,
    error: str | None = None,
    plan: Plan | None = None,
) -> None:
    """An attempt that will never be dialed. With no `plan` the callback is raised to a
    supervisor (a person must call: bad number, no consent, no roster); with one, it waits."""
    with engine.begin() as conn:
        result = conn.execute(
            callback_attempts.update()
            .where(callback_attempts.c.id == attempt_id)
            .where(
                callback_attempts.c.status.in_(
                    [AttemptStatus.SCHEDULED.value, AttemptStatus.DIALING.value]
                )
            )
            .where(callback_attempts.c.call_sid.is_(None))
            .values(
                status=AttemptStatus.NOT_PLACED.value,
                outcome=outcome.value,
                error=(error or outcome.value)[:255],
                finished_at=now,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return
        callback_id = _callback_id(conn, attempt_id)
        record_event(
            conn,
            callback_id=callback_id,
            attempt_id=attempt_id,
            event="not_placed",
            detail=(error or outcome.value),
            at=now,
        )
        cb_row = conn.execute(sa.select(callbacks).where(callbacks.c.id == callback_id)).one()
        callback = _row(cb_row)
        if callback.status.value not in OPEN_STATUSES:
            return
        if plan is None:
            _escalate(conn, callback_id, outcome, now, error or outcome.value)
        else:
            _after_miss(conn, callback, outcome, now, plan)


def flag_overdue(engine: sa.Engine, now: datetime) -> list[int]:
    """Mark open callbacks past their deadline (once each) and return their ids."""
    with engine.begin() as conn:
        ids = [
            int(i)
            for i in conn.execute(
                sa.select(callbacks.c.id)
                .where(callbacks.c.status.in_(OPEN_STATUSES))
                .where(callbacks.c.deadline_at < now)
                .where(callbacks.c.overdue_at.is_(None))
            ).scalars()
        ]
        for callback_id in ids:
            conn.execute(
                callbacks.update()
                .where(callbacks.c.id == callback_id)
                .where(callbacks.c.overdue_at.is_(None))
                .values(overdue_at=now)
            )
            record_event(conn, callback_id=callback_id, attempt_id=None, event="overdue", at=now)
    return ids

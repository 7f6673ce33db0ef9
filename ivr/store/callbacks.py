"""Callback promises: one durable row per request, whatever its source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

import sqlalchemy as sa

from ivr.phones import PhoneNumberError, callback_number
from ivr.store.tables import callbacks


class CallbackStatus(str, Enum):
    """Life of a callback. DRAFT rows hold a number a caller is still confirming."""

    DRAFT = "draft"
    PENDING = "pending"
    DIALING = "dialing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CallbackSource(str, Enum):
    """Who asked for the callback."""

    RESIDENT_MENU = "resident_menu"
    QUEUE_OVERFLOW = "queue_overflow"
    CLINICIAN_FOLLOW_UP = "clinician_follow_up"
    DROPPED_HANDOFF = "dropped_handoff"


@dataclass(frozen=True)
class Callback:
    """One callback promise as stored (times are timezone-aware UTC)."""

    id: int
    source: CallbackSource
    phone_number: str | None
    language: str
    status: CallbackStatus
    consent: bool
    due_at: datetime | None
    deadline_at: datetime | None
    key: str = ""
    helper_type: str | None = None
    note: str | None = None
    created_at: datetime | None = None


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time Bridgeline stores is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(row: sa.Row) -> Callback:
    return Callback(
        id=row.id,
        source=CallbackSource(row.source),
        phone_number=row.phone_number,
        language=row.language,
        status=CallbackStatus(row.status),
        consent=bool(row.consent),
        due_at=as_utc(row.due_at),
        deadline_at=as_utc(row.deadline_at),
        key=row.idempotency_key,
        helper_type=row.helper_type,
        note=row.note,
        created_at=as_utc(row.created_at),
    )


def menu_key(call_sid: str) -> str:
    """Idempotency key of the callback a self-service call asks for (one per call)."""
    return f"menu:{call_sid}"


def find_by_key(engine: sa.Engine, key: str) -> Callback | None:
    """The callback stored under idempotency `key`, if any."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(callbacks).where(callbacks.c.idempotency_key == key)).first()
    return _row(row) if row else None


def save_draft(
    engine: sa.Engine,
    *,
    key: str,
    call_sid: str,
    number: str,
    language: str,
    source: CallbackSource,
) -> Callback:
    """Hold the number a caller gave until they confirm it; a confirmed request is kept as is."""
    now = datetime.now(UTC)
    existing = find_by_key(engine, key)
    if existing is not None and existing.status is not CallbackStatus.DRAFT:
        return existing
    with engine.begin() as conn:
        if existing is None:
            try:
                conn.execute(
                    callbacks.insert().values(
                        idempotency_key=key,
                        source=source.value,
                        call_sid=call_sid,
                        phone_number=number,
                        language=language,
                        status=CallbackStatus.DRAFT.value,
                        consent=False,
                        created_at=now,
                        updated_at=now,
                    )
                )
            except sa.exc.IntegrityError:
                pass  # a retried webhook inserted it first; update below
        conn.execute(
            callbacks.update()
            .where(callbacks.c.idempotency_key == key)
            .where(callbacks.c.status == CallbackStatus.DRAFT.value)
            .values(phone_number=number, language=language, updated_at=now)
        )
    found = find_by_key(engine, key)
    assert found is not None
    return found


def confirm(engine: sa.Engine, *, key: str, deadline: timedelta) -> Callback | None:
    """Turn a draft into an open callback with the caller's consent, due now. Idempotent."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            callbacks.update()
            .where(callbacks.c.idempotency_key == key)
            .where(callbacks.c.status == CallbackStatus.DRAFT.value)
            .values(
                status=CallbackStatus.PENDING.value,
                consent=True,
                consent_at=now,
                due_at=now,
                deadline_at=now + deadline,
                updated_at=now,
            )
        )
    return find_by_key(engine, key)


def create_callback(
    engine: sa.Engine,
    *,
    key: str,
    source: CallbackSource,
    phone_number: str,
    language: str,
    helper_type: str,
    due_at: datetime,
    deadline_at: datetime,
    consent: bool,
    note: str | None = None,
) -> Callback:
    """Record an open callback (status pending); the same `key` twice returns the first one.

    Used for dropped handoff legs and clinician follow-ups. A number that cannot be called
    back is still recorded (nothing is lost): the worker refuses to dial it and raises it to
    a supervisor. Valid numbers are stored in E.164.
    """
    if not key or len(key) > 128:
        raise ValueError("callback key must be 1-128 characters")
    if due_at.tzinfo is None or deadline_at.tzinfo is None:
        raise ValueError("due_at and deadline_at must be timezone-aware")
    existing = find_by_key(engine, key)
    if existing is not None:
        return existing
    try:
        number = callback_number(phone_number)
    except PhoneNumberError:
        number = phone_number.strip()[:32]
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            conn.execute(
                callbacks.insert().values(
                    idempotency_key=key,
                    source=CallbackSource(source).value,
                    phone_number=number,
                    language=language[:8],
                    helper_type=helper_type[:64],
                    status=CallbackStatus.PENDING.value,
                    consent=bool(consent),
                    consent_at=now if consent else None,
                    due_at=due_at.astimezone(UTC),
                    deadline_at=deadline_at.astimezone(UTC),
                    note=note,
                    created_at=now,
                    updated_at=now,
                )
            )
    except sa.exc.IntegrityError:
        pass  # another process recorded the same key first; theirs is the callback
    found = find_by_key(engine, key)
    if found is None:
        raise RuntimeError("callback vanished right after it was recorded")
    return found


def open_callbacks(engine: sa.Engine) -> list[Callback]:
    """Every callback not yet done, failed or cancelled, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callbacks)
            .where(
                callbacks.c.status.in_([CallbackStatus.PENDING.value, CallbackStatus.DIALING.value])
            )
            .order_by(callbacks.c.created_at)
        ).all()
    return [_row(r) for r in rows]

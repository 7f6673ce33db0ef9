"""A callback owed to a resident: the record (keyed, so a retry never makes two), drafts the
caller is still confirming, its events and anomalies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

import sqlalchemy as sa

from ivr.phones import PhoneNumberError, callback_number
from ivr.store import audit
from ivr.store.callback_tables import callback_events
from ivr.store.db import insert_skipping_duplicates
from ivr.store.tables import callbacks

AUDIT_ACTOR = "bridgeline:callbacks"
"""Who the audit trail names for what the callback worker and its webhooks do."""


class CallbackStatus(str, Enum):
    """Life of a callback. DRAFT rows hold a number a caller is still confirming.

    PENDING waits for its next attempt; DIALING has an attempt on the phone; DONE reached a
    helper (or was closed by hand); FAILED ran out of attempts or cannot be placed and is
    raised to a supervisor (it stays on the open list until someone closes it by hand);
    CANCELLED means the resident opted out. Transitions live in this module only.
    """

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
    URGENT_REPORT = "urgent_report"


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
    attempts_made: int = 0
    next_attempt_at: datetime | None = None
    last_outcome: str | None = None
    escalated_at: datetime | None = None
    consent_at: datetime | None = None


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
        attempts_made=int(row.attempts_made or 0),
        next_attempt_at=as_utc(row.next_attempt_at),
        last_outcome=row.last_outcome,
        escalated_at=as_utc(row.escalated_at),
        consent_at=as_utc(row.consent_at),
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
            # A retried webhook racing this one may insert it first: then nothing is inserted
            # here (no error, so PostgreSQL keeps the transaction) and the update below applies.
            conn.execute(
                insert_skipping_duplicates(
                    conn.dialect.name, callbacks, unique=["idempotency_key"]
                ).values(
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
        conn.execute(
            callbacks.update()
            .where(callbacks.c.idempotency_key == key)
            .where(callbacks.c.status == CallbackStatus.DRAFT.value)
            .values(phone_number=number, language=language, updated_at=now)
        )
    found = find_by_key(engine, key)
    assert found is not None
    return found


def confirm(
    engine: sa.Engine, *, key: str, due_at: datetime, deadline_at: datetime
) -> Callback | None:
    """Turn a draft into an open callback with the caller's consent. Idempotent."""
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
                due_at=due_at,
                deadline_at=deadline_at,
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
    now: datetime | None = None,
    jurisdiction: str | None = None,
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
    now = now or datetime.now(UTC)
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
                    jurisdiction=(jurisdiction or None) and jurisdiction[:64],
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


OPEN_STATUSES = (CallbackStatus.PENDING.value, CallbackStatus.DIALING.value)
"""A callback in these states still has attempts to come or one in progress."""


class AttemptStatus(str, Enum):
    """Life of one attempt (one outbound call at most). Claimed in SQL, so it is dialed once.

    SCHEDULED -> DIALING (a worker won the claim; the REST request may be in flight) ->
    PLACED (Twilio gave a CallSid) -> ANSWERED (a person) -> BRIDGING (pressed 1, helpers
    ringing) -> CONNECTED (a helper accepted) -> COMPLETED. An attempt that ends any other way
    is ENDED (its outcome says why); one never dialed is NOT_PLACED; one whose callback closed
    before it was dialed is SKIPPED.
    """

    SCHEDULED = "scheduled"
    DIALING = "dialing"
    PLACED = "placed"
    ANSWERED = "answered"
    BRIDGING = "bridging"
    CONNECTED = "connected"
    COMPLETED = "completed"
    ENDED = "ended"
    NOT_PLACED = "not_placed"
    SKIPPED = "skipped"


IN_FLIGHT = (
    AttemptStatus.SCHEDULED.value,
    AttemptStatus.DIALING.value,
    AttemptStatus.PLACED.value,
    AttemptStatus.ANSWERED.value,
    AttemptStatus.BRIDGING.value,
    AttemptStatus.CONNECTED.value,
)
"""Attempt states that block a new attempt for the same callback."""

ON_THE_PHONE = IN_FLIGHT[2:]
"""Attempt states with a call Twilio knows about."""

FINAL = (
    AttemptStatus.COMPLETED.value,
    AttemptStatus.ENDED.value,
    AttemptStatus.NOT_PLACED.value,
    AttemptStatus.SKIPPED.value,
)
"""Attempt states that never change again."""


class Outcome(str, Enum):
    """Why an attempt or a callback ended as it did (shown on the console)."""

    CONNECTED = "connected"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"
    MACHINE = "machine"
    NOT_CONNECTED = "not_connected"
    HELPER_UNAVAILABLE = "helper_unavailable"
    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"
    INVALID_NUMBER = "invalid_number"
    NO_ROSTER = "no_roster"
    TWILIO_REFUSED = "twilio_refused"
    WORKER_LOST = "worker_lost"
    QUIET_HOURS = "quiet_hours"
    NO_HELPER_ON_DUTY = "no_helper_on_duty"
    DONE_BY_HAND = "done_by_hand"


@dataclass(frozen=True)
class Attempt:
    """One attempt at a callback, as stored."""

    id: int
    callback_id: int
    number: int
    status: AttemptStatus
    scheduled_for: datetime
    claimed_at: datetime | None
    call_sid: str | None
    call_status: str | None
    answered_by: str | None
    outcome: str | None
    counted: bool
    helper_member_id: str | None


@dataclass(frozen=True)
class OpenCallback:
    """A row of the console's open-callbacks list."""

    id: int
    source: CallbackSource
    status: CallbackStatus
    helper_type: str | None
    language: str
    created_at: datetime
    age: timedelta
    due_at: datetime | None
    deadline_at: datetime | None
    attempts_made: int
    next_attempt_at: datetime | None
    last_outcome: str | None
    overdue: bool
    escalated: bool


def _attempt(row: sa.Row) -> Attempt:
    scheduled = as_utc(row.scheduled_for)
    assert scheduled is not None
    return Attempt(
        id=row.id,
        callback_id=row.callback_id,
        number=row.number,
        status=AttemptStatus(row.status),
        scheduled_for=scheduled,
        claimed_at=as_utc(row.claimed_at),
        call_sid=row.call_sid,
        call_status=row.call_status,
        answered_by=row.answered_by,
        outcome=row.outcome,
        counted=bool(row.counted),
        helper_member_id=row.helper_member_id,
    )


def record_event(
    conn: sa.Connection,
    *,
    callback_id: int | None,
    attempt_id: int | None,
    event: str,
    at: datetime,
    detail: str | None = None,
    by_staff_id: str | None = None,
) -> None:
    """Append one line to a callback's history and to the audit trail, in the caller's
    transaction (never a phone number or a note: ids, codes and times only)."""
    conn.execute(
        callback_events.insert().values(
            callback_id=callback_id,
            attempt_id=attempt_id,
            event=event[:64],
            detail=detail[:255] if detail else None,
            by_staff_id=by_staff_id,
            at=at,
        )
    )
    details: dict[str, object] = {"at": at.isoformat(timespec="seconds")}
    if attempt_id is not None:
        details["attempt"] = attempt_id
    if detail:
        details["detail"] = detail[:255]
    audit.append(
        conn,
        f"staff:{by_staff_id}" if by_staff_id else AUDIT_ACTOR,
        f"callback.{event}"[:64],
        f"callback:{callback_id}" if callback_id is not None else "callbacks",
        details,
    )


def record_anomaly(engine: sa.Engine, *, event: str, detail: str, at: datetime) -> None:
    """Record something odd that belongs to no known callback (a malformed status callback)."""
    with engine.begin() as conn:
        record_event(conn, callback_id=None, attempt_id=None, event=event, detail=detail, at=at)


def get(engine: sa.Engine, callback_id: int) -> Callback | None:
    """The callback with this id, if any."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(callbacks).where(callbacks.c.id == callback_id)).first()
    return _row(row) if row else None


def attempts_made(engine: sa.Engine, callback_id: int) -> int:
    """How many calls were placed for this callback."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(callbacks.c.attempts_made).where(callbacks.c.id == callback_id)
        ).scalar()
    return int(value or 0)


def events_of(engine: sa.Engine, callback_id: int) -> list[tuple[str, str | None]]:
    """The (event, detail) history of a callback, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callback_events.c.event, callback_events.c.detail)
            .where(callback_events.c.callback_id == callback_id)
            .order_by(callback_events.c.id)
        ).all()
    return [(r.event, r.detail) for r in rows]

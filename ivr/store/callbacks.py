"""Callback promises: one durable row per request, whatever its source."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

import sqlalchemy as sa

from ivr.phones import PhoneNumberError, callback_number
from ivr.store import audit
from ivr.store.callback_tables import callback_attempts, callback_events
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


def events_of(engine: sa.Engine, callback_id: int) -> list[tuple[str, str | None]]:
    """The (event, detail) history of a callback, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callback_events.c.event, callback_events.c.detail)
            .where(callback_events.c.callback_id == callback_id)
            .order_by(callback_events.c.id)
        ).all()
    return [(r.event, r.detail) for r in rows]


def needing_attempt(engine: sa.Engine, limit: int = 500) -> list[Callback]:
    """Open callbacks with no attempt scheduled or on the phone (the sweep gives them one)."""
    busy = sa.select(callback_attempts.c.callback_id).where(
        callback_attempts.c.status.in_(IN_FLIGHT)
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(callbacks)
            .where(callbacks.c.status == CallbackStatus.PENDING.value)
            .where(callbacks.c.id.not_in(busy))
            .order_by(callbacks.c.id)
            .limit(limit)
        ).all()
    return [_row(r) for r in rows]


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
            status = conn.execute(
                callbacks.update()
                .where(callbacks.c.id == callback_id)
                .values(updated_at=callbacks.c.updated_at)
                .returning(callbacks.c.status)
            ).scalar()
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
        status = conn.execute(
            callbacks.update()
            .where(callbacks.c.id == callback_id)
            .values(updated_at=callbacks.c.updated_at)
            .returning(callbacks.c.status)
        ).scalar()
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
        status = conn.execute(
            callbacks.update()
            .where(callbacks.c.id == callback_id)
            .values(updated_at=callbacks.c.updated_at)
            .returning(callbacks.c.status)
        ).scalar()
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

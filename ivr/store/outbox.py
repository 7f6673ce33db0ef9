"""Outbound text messages: recorded before a worker sends them, so none is lost or sent twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import sqlalchemy as sa

from ivr.store.tables import outbound_sms


class SmsStatus(str, Enum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class OutboundSms:
    id: int
    to_number: str
    from_number: str
    body: str
    status: SmsStatus
    attempts: int
    twilio_sid: str | None
    created_at: datetime
    quiet_hours: bool = False


def _row(row: sa.Row) -> OutboundSms:
    return OutboundSms(
        id=row.id,
        to_number=row.to_number,
        from_number=row.from_number,
        body=row.body,
        status=SmsStatus(row.status),
        attempts=row.attempts,
        twilio_sid=row.twilio_sid,
        created_at=row.created_at,
        quiet_hours=bool(row.quiet_hours),
    )


def queue_sms(
    engine: sa.Engine,
    *,
    key: str,
    to_number: str,
    from_number: str,
    body: str,
    quiet_hours: bool = False,
) -> int:
    """Record a text to send; the same key always yields the same row id.

    `quiet_hours`: the text may only go out inside the quiet-hours window (workers.sms).
    """
    with engine.begin() as conn:
        existing = conn.execute(
            sa.select(outbound_sms.c.id).where(outbound_sms.c.idempotency_key == key)
        ).scalar()
        if existing is not None:
            return int(existing)
    try:
        with engine.begin() as conn:
            result = conn.execute(
                outbound_sms.insert().values(
                    idempotency_key=key,
                    to_number=to_number,
                    from_number=from_number,
                    body=body,
                    status=SmsStatus.PENDING.value,
                    attempts=0,
                    created_at=datetime.now(UTC),
                    quiet_hours=quiet_hours,
                )
            )
            primary_key = result.inserted_primary_key
            assert primary_key is not None
            return int(primary_key[0])
    except sa.exc.IntegrityError:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(outbound_sms.c.id).where(outbound_sms.c.idempotency_key == key)
                ).scalar_one()
            )


def get(engine: sa.Engine, sms_id: int) -> OutboundSms | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(outbound_sms).where(outbound_sms.c.id == sms_id)).first()
    return _row(row) if row else None


def pending_ids(engine: sa.Engine, limit: int = 500, *, quiet_time: bool = False) -> list[int]:
    """Texts recorded but not yet sent (for the sweep that re-enqueues them); during quiet
    hours (`quiet_time`), not those that must wait for the window."""
    query = sa.select(outbound_sms.c.id).where(outbound_sms.c.status == SmsStatus.PENDING.value)
    if quiet_time:
        query = query.where(outbound_sms.c.quiet_hours.is_(False))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(outbound_sms.c.id).limit(limit)).all()
    return [int(r[0]) for r in rows]


def mark_sent(engine: sa.Engine, sms_id: int, twilio_sid: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            outbound_sms.update()
            .where(outbound_sms.c.id == sms_id)
            .values(status=SmsStatus.SENT.value, twilio_sid=twilio_sid, sent_at=datetime.now(UTC))
        )


def mark_failed(engine: sa.Engine, sms_id: int, error: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            outbound_sms.update()
            .where(outbound_sms.c.id == sms_id)
            .values(status=SmsStatus.FAILED.value, last_error=error)
        )


def claim(engine: sa.Engine, sms_id: int) -> bool:
    """Move a pending text to sending; only one worker wins, so a text is sent once."""
    with engine.begin() as conn:
        result = conn.execute(
            outbound_sms.update()
            .where(outbound_sms.c.id == sms_id)
            .where(outbound_sms.c.status == SmsStatus.PENDING.value)
            .values(status=SmsStatus.SENDING.value, attempts=outbound_sms.c.attempts + 1)
        )
    return result.rowcount == 1


def release(engine: sa.Engine, sms_id: int, error: str) -> None:
    """Put a claimed text back to pending after a failure worth retrying."""
    with engine.begin() as conn:
        conn.execute(
            outbound_sms.update()
            .where(outbound_sms.c.id == sms_id)
            .where(outbound_sms.c.status == SmsStatus.SENDING.value)
            .values(status=SmsStatus.PENDING.value, last_error=error)
        )


def stale_sending(engine: sa.Engine, older_than: datetime) -> list[OutboundSms]:
    """Texts claimed by a worker that never reported back (it died mid-send)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbound_sms)
            .where(outbound_sms.c.status == SmsStatus.SENDING.value)
            .where(outbound_sms.c.created_at < older_than)
        ).all()
    return [_row(r) for r in rows]

"""What happened on self-service calls (items chosen, transfers, reports), for the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.store.tables import self_service_events


def record_event(
    engine: sa.Engine,
    *,
    call_sid: str,
    event: str,
    detail: str | None,
    language: str | None,
    key: str | None = None,
) -> None:
    """Append one event; a webhook retried by Twilio (same key) adds nothing."""
    try:
        with engine.begin() as conn:
            conn.execute(
                self_service_events.insert().values(
                    idempotency_key=key or f"{call_sid}:{event}:{detail}",
                    call_sid=call_sid,
                    event=event,
                    detail=detail,
                    language=language,
                    at=datetime.now(UTC),
                )
            )
    except sa.exc.IntegrityError:
        return


def events_for_call(engine: sa.Engine, call_sid: str) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(self_service_events.c.event, self_service_events.c.detail)
            .where(self_service_events.c.call_sid == call_sid)
            .order_by(self_service_events.c.id)
        ).all()
    return [(r[0], r[1]) for r in rows]

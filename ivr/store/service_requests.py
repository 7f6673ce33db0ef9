"""Service requests filed from the self-service line, and their reference numbers."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

import sqlalchemy as sa

from ivr.store.tables import service_requests

REFERENCE_TRIES = 8
"""How many random references to try before giving up (collisions are rare)."""


class RequestStatus(str, Enum):
    """Where a service request stands; read to residents who check on it."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


@dataclass(frozen=True)
class ServiceRequest:
    id: int
    reference: str
    category: str
    status: RequestStatus
    created_at: datetime


def new_reference(digits: int) -> str:
    """A random reference with no leading zero, so it reads back unambiguously."""
    first = str(secrets.randbelow(9) + 1)
    return first + "".join(str(secrets.randbelow(10)) for _ in range(digits - 1))


def _row(row: sa.Row) -> ServiceRequest:
    return ServiceRequest(
        id=row.id,
        reference=row.reference,
        category=row.category,
        status=RequestStatus(row.status),
        created_at=row.created_at,
    )


def file_request(
    engine: sa.Engine,
    *,
    idempotency_key: str,
    call_sid: str,
    category: str,
    language: str,
    caller_number: str | None,
    recording_sid: str | None,
    recording_url: str | None,
    reference_digits: int,
) -> ServiceRequest:
    """Save a service request once per idempotency key; a retry returns the first one."""
    existing = find_by_key(engine, idempotency_key)
    if existing is not None:
        return existing
    now = datetime.now(UTC)
    for _ in range(REFERENCE_TRIES):
        values = {
            "reference": new_reference(reference_digits),
            "idempotency_key": idempotency_key,
            "call_sid": call_sid,
            "category": category,
            "language": language,
            "caller_number": caller_number,
            "recording_sid": recording_sid,
            "recording_url": recording_url,
            "status": RequestStatus.RECEIVED.value,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with engine.begin() as conn:
                conn.execute(service_requests.insert().values(**values))
        except sa.exc.IntegrityError:
            existing = find_by_key(engine, idempotency_key)
            if existing is not None:
                return existing
            continue  # the reference collided; draw another
        found = find_by_key(engine, idempotency_key)
        assert found is not None
        return found
    raise RuntimeError("could not draw a free service request reference")


def find_by_key(engine: sa.Engine, idempotency_key: str) -> ServiceRequest | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(service_requests).where(service_requests.c.idempotency_key == idempotency_key)
        ).first()
    return _row(row) if row else None


def find_by_reference(engine: sa.Engine, reference: str) -> ServiceRequest | None:
    """The request with this reference number, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(service_requests).where(service_requests.c.reference == reference)
        ).first()
    return _row(row) if row else None


def attach_recording(
    engine: sa.Engine, *, recording_sid: str, url: str | None, duration: int | None, status: str
) -> bool:
    """Store the final recording reference on the request that holds `recording_sid`."""
    with engine.begin() as conn:
        result = conn.execute(
            service_requests.update()
            .where(service_requests.c.recording_sid == recording_sid)
            .values(
                recording_url=url,
                recording_duration=duration,
                recording_status=status,
                updated_at=datetime.now(UTC),
            )
        )
    return result.rowcount > 0


def set_status(engine: sa.Engine, reference: str, status: RequestStatus) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            service_requests.update()
            .where(service_requests.c.reference == reference)
            .values(status=status.value, updated_at=datetime.now(UTC))
        )
    return result.rowcount > 0

"""Service requests filed from the self-service line, and their reference numbers."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from ivr.store import audit
from ivr.store.tables import service_request_changes, service_requests

REFERENCE_TRIES = 8
"""How many random references to try before giving up (collisions are rare)."""


class RequestStatus(str, Enum):
    """Where a service request stands; read to residents who check on it."""

    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


OPEN_STATUSES = frozenset({"received", "in_progress"})
"""Statuses Open311 calls `open`; the others are `closed`."""


ASSIGN_STAFF = "staff:"
"""assigned_to of a request given to a person: 'staff:' and their staff ID."""

ASSIGN_DEPARTMENT = "dept:"
"""assigned_to of a request given to a department: 'dept:' and its name."""


def assigned_department(assigned_to: str | None) -> str | None:
    """The department an assignment names, or None (a person, or nobody)."""
    if assigned_to and assigned_to.startswith(ASSIGN_DEPARTMENT):
        return assigned_to[len(ASSIGN_DEPARTMENT) :]
    return None


class RequestSource(str, Enum):
    """Where a service request came from."""

    PHONE = "phone"
    OPEN311 = "open311"


class Notify(str, Enum):
    """Whether a status change owes the resident a text."""

    NONE = "none"
    PENDING = "pending"
    QUEUED = "queued"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class ServiceRequest:
    id: int
    reference: str
    category: str
    status: RequestStatus
    created_at: datetime
    updated_at: datetime | None = None
    call_sid: str | None = None
    language: str = "en"
    source: RequestSource = RequestSource.PHONE
    partner_id: int | None = None
    jurisdiction: str | None = None
    address: str | None = None
    address_id: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    description: str | None = None
    transcript: str | None = None
    tags: str | None = None
    media_url: str | None = None
    caller_number: str | None = None
    recording_sid: str | None = None
    recording_url: str | None = None
    recording_duration: int | None = None
    status_note: str | None = None
    status_changed_at: datetime | None = None
    assigned_to: str | None = None
    notify_sms: bool = False
    urgent: bool = False

    @property
    def is_open(self) -> bool:
        return self.status.value in OPEN_STATUSES


@dataclass(frozen=True)
class Change:
    """One status change of a request, as staff made it."""

    id: int
    request_id: int
    at: datetime
    actor: str
    previous_status: RequestStatus
    status: RequestStatus
    public_note: str | None
    internal_note: str | None
    assigned_to: str | None
    notify: Notify
    sms_id: int | None


def new_reference(digits: int) -> str:
    """A random reference with no leading zero, so it reads back unambiguously."""
    first = str(secrets.randbelow(9) + 1)
    return first + "".join(str(secrets.randbelow(10)) for _ in range(digits - 1))


def aware(at: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC; every time leaving this module is aware."""
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at


def _row(row: sa.Row) -> ServiceRequest:
    m = row._mapping
    return ServiceRequest(
        id=row.id,
        reference=row.reference,
        category=row.category,
        status=RequestStatus(row.status),
        created_at=aware(row.created_at) or row.created_at,
        updated_at=aware(m.get("updated_at")),
        call_sid=m.get("call_sid"),
        language=m.get("language") or "en",
        source=RequestSource(m.get("source") or "phone"),
        partner_id=m.get("partner_id"),
        jurisdiction=m.get("jurisdiction"),
        address=m.get("address"),
        address_id=m.get("address_id"),
        latitude=m.get("latitude"),
        longitude=m.get("longitude"),
        description=m.get("description"),
        transcript=m.get("transcript"),
        tags=m.get("tags"),
        media_url=m.get("media_url"),
        caller_number=m.get("caller_number"),
        recording_sid=m.get("recording_sid"),
        recording_url=m.get("recording_url"),
        recording_duration=m.get("recording_duration"),
        status_note=m.get("status_note"),
        status_changed_at=aware(m.get("status_changed_at")),
        assigned_to=m.get("assigned_to"),
        notify_sms=bool(m.get("notify_sms")),
        urgent=bool(m.get("urgent")),
    )


def file_request(
    engine: sa.Engine,
    *,
    idempotency_key: str,
    call_sid: str | None,
    category: str,
    language: str,
    caller_number: str | None,
    recording_sid: str | None,
    recording_url: str | None,
    reference_digits: int,
    jurisdiction: str | None = None,
    source: RequestSource = RequestSource.PHONE,
    details: Mapping[str, Any] | None = None,
) -> ServiceRequest:
    """Save a service request once per idempotency key; a retry returns the first one.

    `details` may set the partner-sent columns (address, latitude, description, ...).
    """
    existing = find_by_key(engine, idempotency_key)
    if existing is not None:
        return existing
    now = datetime.now(UTC)
    extra = {k: v for k, v in (details or {}).items() if k in PARTNER_COLUMNS}
    for _ in range(REFERENCE_TRIES):
        values = {
            **extra,
            "reference": new_reference(reference_digits),
            "idempotency_key": idempotency_key,
            "call_sid": call_sid,
            "category": category,
            "language": language,
            "caller_number": caller_number,
            "recording_sid": recording_sid,
            "recording_url": recording_url,
            "status": RequestStatus.RECEIVED.value,
            "source": source.value,
            "jurisdiction": jurisdiction,
            "created_at": now,
            "updated_at": now,
            "status_changed_at": now,
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


PARTNER_COLUMNS = frozenset(
    {
        "partner_id", "address", "address_id", "latitude", "longitude", "description",
        "media_url", "contact_name", "contact_email", "contact_phone", "account_id", "device_id",
    }
)  # fmt: skip
"""Columns a partner's Open311 request may fill."""


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


def find_by_id(engine: sa.Engine, request_id: int) -> ServiceRequest | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(service_requests).where(service_requests.c.id == request_id)
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


def set_address(engine: sa.Engine, reference: str, call_sid: str, address: str | None) -> bool:
    """Store where the problem is (None: the resident skipped), only for the call that filed it."""
    with engine.begin() as conn:
        result = conn.execute(
            service_requests.update()
            .where(service_requests.c.reference == reference)
            .where(service_requests.c.call_sid == call_sid)
            .values(address=address, updated_at=datetime.now(UTC))
        )
    return result.rowcount > 0


def set_text_consent(engine: sa.Engine, reference: str, call_sid: str, consent: bool) -> bool:
    """Record the resident's answer to "may we text you when the status changes?"."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        result = conn.execute(
            service_requests.update()
            .where(service_requests.c.reference == reference)
            .where(service_requests.c.call_sid == call_sid)
            .where(service_requests.c.caller_number.is_not(None))
            .values(notify_sms=consent, notify_consent_at=now if consent else None)
        )
    return result.rowcount > 0


def set_status(engine: sa.Engine, reference: str, status: RequestStatus) -> bool:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        result = conn.execute(
            service_requests.update()
            .where(service_requests.c.reference == reference)
            .values(status=status.value, updated_at=now, status_changed_at=now)
        )
    return result.rowcount > 0


@dataclass(frozen=True)
class Filters:
    """Which requests a list shows. Empty sets mean "any"."""

    references: tuple[str, ...] = ()
    categories: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    jurisdictions: frozenset[str] | None = None
    """None: every jurisdiction; a set: only these (a request with none counts as '')."""
    created_from: datetime | None = None
    created_until: datetime | None = None
    limit: int = 1000


def search(engine: sa.Engine, filters: Filters) -> list[ServiceRequest]:
    """Requests matching `filters`, newest first (at most `filters.limit`)."""
    t = service_requests
    query = sa.select(t)
    if filters.references:
        query = query.where(t.c.reference.in_(filters.references))
    else:
        if filters.categories:
            query = query.where(t.c.category.in_(sorted(filters.categories)))
        if filters.statuses:
            query = query.where(t.c.status.in_(sorted(filters.statuses)))
        if filters.created_from is not None:
            query = query.where(t.c.created_at >= filters.created_from)
        if filters.created_until is not None:
            query = query.where(t.c.created_at <= filters.created_until)
    if filters.jurisdictions is not None:
        wanted = sorted(filters.jurisdictions)
        condition: sa.ColumnElement[bool] = t.c.jurisdiction.in_(wanted)
        if "" in filters.jurisdictions:
            condition = sa.or_(condition, t.c.jurisdiction.is_(None))
        query = query.where(condition)
    query = query.order_by(t.c.created_at.desc(), t.c.id.desc()).limit(filters.limit)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query).all()]


class ChangeError(ValueError):
    """A status change was refused (no such request, nothing changed)."""


def change(
    engine: sa.Engine,
    request_id: int,
    *,
    actor: str,
    status: RequestStatus,
    public_note: str | None,
    internal_note: str | None,
    assigned_to: str | None,
) -> Change:
    """Apply one staff change: status, notes, assignment, the audit entry and, when the status
    moved and the resident asked for texts, the text owed to them, all in one transaction."""
    now = datetime.now(UTC)
    t = service_requests
    with engine.begin() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == request_id)).first()
        if row is None:
            raise ChangeError("no such report")
        before = _row(row)
        moved = status is not before.status
        if (
            not moved
            and not public_note
            and not internal_note
            and (assigned_to or None) == (before.assigned_to or None)
        ):
            raise ChangeError("nothing to change")
        owed = moved and before.notify_sms and before.caller_number is not None
        values: dict[str, Any] = {"updated_at": now, "assigned_to": assigned_to or None}
        if moved:
            values.update(status=status.value, status_changed_at=now, status_note=public_note)
        elif public_note:
            values["status_note"] = public_note
        conn.execute(t.update().where(t.c.id == request_id).values(**values))
        change_id = conn.execute(
            service_request_changes.insert()
            .values(
                request_id=request_id,
                at=now,
                actor=actor[:128],
                previous_status=before.status.value,
                status=status.value,
                public_note=public_note,
                internal_note=internal_note,
                assigned_to=assigned_to or None,
                notify=(Notify.PENDING if owed else Notify.NONE).value,
            )
            .returning(service_request_changes.c.id)
        ).scalar_one()
        audit.append(
            conn,
            actor,
            "service_request.change",
            f"service_request:{before.reference}",
            {
                "from": before.status.value,
                "to": status.value,
                "public_note": bool(public_note),
                "internal_note": bool(internal_note),
                "assigned": bool(assigned_to),
                "assignment_changed": (assigned_to or None) != (before.assigned_to or None),
                "text_owed": owed,
            },
        )
    found = get_change(engine, int(change_id))
    assert found is not None
    return found


def _change(row: sa.Row) -> Change:
    return Change(
        id=row.id,
        request_id=row.request_id,
        at=aware(row.at) or row.at,
        actor=row.actor,
        previous_status=RequestStatus(row.previous_status),
        status=RequestStatus(row.status),
        public_note=row.public_note,
        internal_note=row.internal_note,
        assigned_to=row.assigned_to,
        notify=Notify(row.notify),
        sms_id=row.sms_id,
    )


def get_change(engine: sa.Engine, change_id: int) -> Change | None:
    c = service_request_changes
    with engine.connect() as conn:
        row = conn.execute(sa.select(c).where(c.c.id == change_id)).first()
    return _change(row) if row else None


def history(engine: sa.Engine, request_id: int) -> list[Change]:
    """Every change of a request, oldest first."""
    c = service_request_changes
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c).where(c.c.request_id == request_id).order_by(c.c.at, c.c.id)
        ).all()
    return [_change(r) for r in rows]


def texts_owed(engine: sa.Engine, limit: int = 500) -> list[int]:
    """Ids of changes whose text to the resident is not in the outbox yet."""
    c = service_request_changes
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(c.c.id)
            .where(c.c.notify == Notify.PENDING.value)
            .order_by(c.c.id)
            .limit(limit)
        ).all()
    return [int(r[0]) for r in rows]


def settle_text(engine: sa.Engine, change_id: int, notify: Notify, sms_id: int | None) -> None:
    """Mark a change's text as queued in the outbox (with its id) or skipped."""
    c = service_request_changes
    with engine.begin() as conn:
        conn.execute(
            c.update()
            .where(c.c.id == change_id)
            .where(c.c.notify == Notify.PENDING.value)
            .values(notify=notify.value, sms_id=sms_id)
        )


@dataclass(frozen=True)
class Transcribed:
    """The request a transcript was stored on: what an urgent follow-up needs."""

    reference: str
    call_sid: str | None
    language: str
    caller_number: str | None


def store_screened_transcript(
    engine: sa.Engine,
    *,
    recording_sid: str,
    text: str | None,
    status: str,
    tags: list[str],
    urgent: bool,
) -> Transcribed | None:
    """Store Twilio's transcript, its QA tags and the screening's verdict on the request
    holding `recording_sid`; urgent stays set once set (a repeated callback cannot clear it).
    None when no request holds the recording."""
    values: dict[str, object] = {
        "transcript": text,
        "transcript_status": status[:16],
        "updated_at": datetime.now(UTC),
    }
    if tags:
        values["tags"] = ",".join(tags)[:255]
    if urgent:
        values["urgent"] = True
    with engine.begin() as conn:
        conn.execute(
            service_requests.update()
            .where(service_requests.c.recording_sid == recording_sid)
            .values(**values)
        )
        row = conn.execute(
            sa.select(
                service_requests.c.reference,
                service_requests.c.call_sid,
                service_requests.c.language,
                service_requests.c.caller_number,
            ).where(service_requests.c.recording_sid == recording_sid)
        ).first()
    if row is None:
        return None
    return Transcribed(row.reference, row.call_sid, row.language, row.caller_number)

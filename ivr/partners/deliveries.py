"""The outbox of EIDO pushes: each change of a handoff, recorded before a worker sends it.

`record_changes` (run by the clock's sweep, never by a webhook) looks at the handoffs changed
since each subscription's cursor, builds their EIDO, and records a delivery when the document
differs from the last one recorded for that subscription and handoff (one delivery per change;
its idempotency key is subscription:handoff:document hash). A worker then sends the deliveries
of one subscription and handoff in order (`claim_next`), with backoff between tries, until the
partner answers 2xx or the tries run out (FAILED, shown to supervisors and on /metrics).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

import sqlalchemy as sa

from ivr.partners import Partner, Scope, get_partner
from ivr.reporting.eido import EidoContext, build_eido, jurisdiction_of, load_facts
from ivr.store.db import insert_skipping_duplicates
from ivr.store.handoff_tables import handoffs, live_calls
from ivr.store.partner_tables import eido_deliveries, partner_subscriptions, partners
from ivr.store.tables import callbacks

MAX_ATTEMPTS = 10
"""Tries per change before it is given up on (about three hours of backoff)."""

BACKOFF_FIRST_SECONDS = 15
"""Wait after the first failed try; doubled after each further one."""

BACKOFF_CAP_SECONDS = 3600
"""The longest wait between two tries."""

SCAN_OVERLAP = timedelta(seconds=30)
"""Handoffs changed this long before a subscription's cursor are looked at again (commits land
out of order); the document hash keeps a second look from recording a change twice."""

SCAN_LIMIT = 500
"""Handoffs looked at per subscription per sweep (the rest wait for the next sweep)."""

STALE_SENDING = timedelta(minutes=5)
"""A delivery left 'sending' this long belonged to a worker that died; it is tried again."""


class DeliveryStatus(str, Enum):
    """Where one push stands."""

    PENDING = "pending"  # waiting for its (next) try
    SENDING = "sending"  # a worker has it on the wire
    DELIVERED = "delivered"  # the partner answered 2xx
    FAILED = "failed"  # MAX_ATTEMPTS tries failed: given up, shown to supervisors


@dataclass(frozen=True)
class Delivery:
    """One push of one EIDO to one subscription."""

    id: int
    subscription_id: int
    handoff_id: int
    idempotency_key: str
    body: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class SubscriptionHealth:
    """What supervisors see for one subscription."""

    subscription_id: int
    partner_name: str
    host: str
    enabled: bool
    delivered: int
    waiting: int
    retrying: int
    failed: int
    last_delivered_at: datetime | None
    last_error: str | None


def backoff(attempts: int) -> timedelta:
    """The wait after `attempts` failed tries: 15 s, 30 s, 1 min, … at most an hour."""
    seconds = BACKOFF_FIRST_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, BACKOFF_CAP_SECONDS))


def canonical_body(document: dict[str, object]) -> str:
    """The exact JSON text pushed (and hashed): compact, member order kept, UTF-8."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _delivery(row: sa.Row[tuple[object, ...]]) -> Delivery:
    m = row._mapping
    return Delivery(
        id=int(m["id"]),  # type: ignore[call-overload]
        subscription_id=int(m["subscription_id"]),  # type: ignore[call-overload]
        handoff_id=int(m["handoff_id"]),  # type: ignore[call-overload]
        idempotency_key=str(m["idempotency_key"]),
        body=str(m["body"]),
        status=DeliveryStatus(m["status"]),
        attempts=int(m["attempts"]),  # type: ignore[call-overload]
        next_attempt_at=_utc(m["next_attempt_at"]),  # type: ignore[arg-type]
        last_error=m["last_error"],  # type: ignore[arg-type]
    )


def _eido_partner(engine: sa.Engine, partner_id: int) -> Partner | None:
    with engine.connect() as conn:
        prefix = conn.execute(
            sa.select(partners.c.key_prefix).where(partners.c.id == partner_id)
        ).scalar_one_or_none()
    partner = get_partner(engine, str(prefix)) if prefix is not None else None
    if partner is None or not partner.enabled or Scope.EIDO.value not in partner.scopes:
        return None
    return partner


def record_changes(engine: sa.Engine, context: EidoContext, now: datetime) -> list[tuple[int, int]]:
    """Record a delivery for every handoff whose EIDO changed since each subscription last
    looked; returns the (subscription, handoff) streams that got one."""
    with engine.connect() as conn:
        subs = conn.execute(
            sa.select(
                partner_subscriptions.c.id,
                partner_subscriptions.c.partner_id,
                partner_subscriptions.c.cursor_at,
            ).where(partner_subscriptions.c.enabled.is_(True))
        ).all()
    streams: list[tuple[int, int]] = []
    for sub_id, partner_id, cursor_at in subs:
        partner = _eido_partner(engine, partner_id)
        if partner is None:
            continue
        cursor = _utc(cursor_at)
        newest = cursor
        for handoff_id, updated_at in changed_since(engine, cursor - SCAN_OVERLAP):
            newest = max(newest, updated_at)
            facts = load_facts(engine, handoff_id)
            if facts is None or not partner.may_read(jurisdiction_of(facts, context)):
                continue
            body = canonical_body(build_eido(facts, context))
            digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
            key = f"{sub_id}:{handoff_id}:{digest[:64]}"
            if _record(engine, sub_id, handoff_id, key, body, now):
                streams.append((sub_id, handoff_id))
        if newest > cursor:
            with engine.begin() as conn:
                conn.execute(
                    partner_subscriptions.update()
                    .where(partner_subscriptions.c.id == sub_id)
                    .where(partner_subscriptions.c.cursor_at < newest)
                    .values(cursor_at=newest)
                )
    return streams


def changed_since(engine: sa.Engine, since: datetime) -> list[tuple[int, datetime]]:
    """Handoffs whose EIDO may have changed after `since`, with the time of the change: the
    handoff itself, its call (the call ended) or the callback owed to a dropped caller (made,
    which closes the incident). Oldest change first, at most SCAN_LIMIT."""
    found: dict[int, datetime] = {}
    sources = (
        (sa.select(handoffs.c.id, handoffs.c.updated_at), handoffs.c.updated_at),
        (
            sa.select(handoffs.c.id, live_calls.c.updated_at).join(
                live_calls, live_calls.c.id == handoffs.c.live_call_id
            ),
            live_calls.c.updated_at,
        ),
        (
            sa.select(handoffs.c.id, callbacks.c.updated_at).join(
                callbacks, callbacks.c.id == handoffs.c.callback_id
            ),
            callbacks.c.updated_at,
        ),
    )
    with engine.connect() as conn:
        for query, stamp in sources:
            rows = conn.execute(query.where(stamp > since).order_by(stamp).limit(SCAN_LIMIT))
            for handoff_id, at in rows:
                at = _utc(at)
                if at > found.get(int(handoff_id), since):
                    found[int(handoff_id)] = at
    ordered = sorted(found.items(), key=lambda item: (item[1], item[0]))
    return ordered[:SCAN_LIMIT]


def _record(
    engine: sa.Engine, sub_id: int, handoff_id: int, key: str, body: str, now: datetime
) -> bool:
    """Record one change unless it is the one last recorded for this stream."""
    with engine.begin() as conn:
        last = conn.execute(
            sa.select(eido_deliveries.c.idempotency_key)
            .where(eido_deliveries.c.subscription_id == sub_id)
            .where(eido_deliveries.c.handoff_id == handoff_id)
            .order_by(eido_deliveries.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if last == key:
            return False
        inserted = conn.execute(
            insert_skipping_duplicates(
                conn.dialect.name, eido_deliveries, unique=["idempotency_key"]
            ).values(
                subscription_id=sub_id,
                handoff_id=handoff_id,
                idempotency_key=key,
                body=body,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return bool(inserted.rowcount)


def claim_next(
    engine: sa.Engine, subscription_id: int, handoff_id: int, now: datetime
) -> Delivery | None:
    """The stream's oldest delivery still owed, claimed for sending, if it is due and no
    other worker has it (a later change never overtakes an earlier one)."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(eido_deliveries)
            .where(eido_deliveries.c.subscription_id == subscription_id)
            .where(eido_deliveries.c.handoff_id == handoff_id)
            .where(
                eido_deliveries.c.status.in_(
                    [DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value]
                )
            )
            .order_by(eido_deliveries.c.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        found = _delivery(row)
        if found.status is not DeliveryStatus.PENDING or found.next_attempt_at > now:
            return None
        claimed = conn.execute(
            eido_deliveries.update()
            .where(eido_deliveries.c.id == found.id)
            .where(eido_deliveries.c.status == DeliveryStatus.PENDING.value)
            .values(
                status=DeliveryStatus.SENDING.value,
                attempts=eido_deliveries.c.attempts + 1,
                claimed_at=now,
            )
        ).rowcount
    if not claimed:
        return None
    return Delivery(
        found.id,
        found.subscription_id,
        found.handoff_id,
        found.idempotency_key,
        found.body,
        DeliveryStatus.SENDING,
        found.attempts + 1,
        found.next_attempt_at,
        found.last_error,
    )


def mark_delivered(engine: sa.Engine, delivery_id: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            eido_deliveries.update()
            .where(eido_deliveries.c.id == delivery_id)
            .values(status=DeliveryStatus.DELIVERED.value, delivered_at=now, last_error=None)
        )


def mark_try_failed(engine: sa.Engine, delivery: Delivery, error: str, now: datetime) -> str:
    """Record a failed try: wait and try again, or give up after MAX_ATTEMPTS tries."""
    given_up = delivery.attempts >= MAX_ATTEMPTS
    status = DeliveryStatus.FAILED if given_up else DeliveryStatus.PENDING
    with engine.begin() as conn:
        conn.execute(
            eido_deliveries.update()
            .where(eido_deliveries.c.id == delivery.id)
            .values(
                status=status.value,
                last_error=error[:255],
                next_attempt_at=now + backoff(delivery.attempts),
            )
        )
    return status.value


def release_stale(engine: sa.Engine, now: datetime) -> int:
    """Deliveries a dead worker left 'sending' go back to pending (tried again: at least once)."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                eido_deliveries.update()
                .where(eido_deliveries.c.status == DeliveryStatus.SENDING.value)
                .where(eido_deliveries.c.claimed_at < now - STALE_SENDING)
                .values(status=DeliveryStatus.PENDING.value, last_error="worker stopped")
            ).rowcount
        )


def due_streams(engine: sa.Engine, now: datetime, limit: int = 1000) -> list[tuple[int, int]]:
    """(subscription, handoff) streams with a delivery due now."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(eido_deliveries.c.subscription_id, eido_deliveries.c.handoff_id)
            .where(eido_deliveries.c.status == DeliveryStatus.PENDING.value)
            .where(eido_deliveries.c.next_attempt_at <= now)
            .group_by(eido_deliveries.c.subscription_id, eido_deliveries.c.handoff_id)
            .limit(limit)
        ).all()
    return [(int(s), int(h)) for s, h in rows]


def deliveries_of(engine: sa.Engine, subscription_id: int) -> list[Delivery]:
    """A subscription's deliveries, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(eido_deliveries)
            .where(eido_deliveries.c.subscription_id == subscription_id)
            .order_by(eido_deliveries.c.id)
        ).all()
    return [_delivery(r) for r in rows]


def health(engine: sa.Engine) -> list[SubscriptionHealth]:
    """Per subscription: what was delivered, what waits or retries, what was given up on."""
    from urllib.parse import urlsplit

    d = eido_deliveries
    with engine.connect() as conn:
        subs = conn.execute(
            sa.select(
                partner_subscriptions.c.id,
                partner_subscriptions.c.url,
                partner_subscriptions.c.enabled,
                partners.c.name,
            )
            .join(partners, partners.c.id == partner_subscriptions.c.partner_id)
            .order_by(partner_subscriptions.c.id)
        ).all()
        counts: dict[tuple[int, str, bool], int] = {}
        for s, st, attempts, n in conn.execute(
            sa.select(d.c.subscription_id, d.c.status, d.c.attempts, sa.func.count()).group_by(
                d.c.subscription_id, d.c.status, d.c.attempts
            )
        ):
            slot = (int(s), str(st), int(attempts) > 0)
            counts[slot] = counts.get(slot, 0) + int(n)
        last_at = dict(
            conn.execute(
                sa.select(d.c.subscription_id, sa.func.max(d.c.delivered_at)).group_by(
                    d.c.subscription_id
                )
            ).all()
        )
        errors: dict[int, str] = {}
        for sub_id, error in conn.execute(
            sa.select(d.c.subscription_id, d.c.last_error)
            .where(d.c.last_error.is_not(None))
            .where(d.c.status != DeliveryStatus.DELIVERED.value)
            .order_by(d.c.id)
        ):
            errors[int(sub_id)] = str(error)
    out = []
    for sub_id, url, enabled, name in subs:

        def n(status: DeliveryStatus, tried: bool | None = None, sid: int = sub_id) -> int:
            return sum(
                v
                for (s, st, t), v in counts.items()
                if s == sid and st == status.value and (tried is None or t == tried)
            )

        last = last_at.get(sub_id)
        out.append(
            SubscriptionHealth(
                subscription_id=int(sub_id),
                partner_name=str(name),
                host=urlsplit(str(url)).hostname or "",
                enabled=bool(enabled),
                delivered=n(DeliveryStatus.DELIVERED),
                waiting=n(DeliveryStatus.PENDING, False) + n(DeliveryStatus.SENDING),
                retrying=n(DeliveryStatus.PENDING, True),
                failed=n(DeliveryStatus.FAILED),
                last_delivered_at=_utc(last) if last is not None else None,
                last_error=errors.get(int(sub_id)),
            )
        )
    return out

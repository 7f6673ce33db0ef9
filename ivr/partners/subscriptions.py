"""Partner subscriptions: a partner's URL receives each handoff's EIDO whenever it changes.

An operator subscribes a URL for a partner that holds the `eido` scope; the handoffs are those
of the partner's jurisdictions, from the moment of subscribing on. Each push is signed:

    X-Bridgeline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    Idempotency-Key: <one per change; the same on every retry of that change>

`sign` and `verify` are the two halves (the README shows a partner's copy of `verify`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import sqlalchemy as sa

from ivr.partners import PartnerError, Scope, get_partner
from ivr.store import audit
from ivr.store.partner_tables import partner_subscriptions, partners

SIGNATURE_HEADER = "X-Bridgeline-Signature"
"""The header carrying the push's timestamp and HMAC."""

IDEMPOTENCY_HEADER = "Idempotency-Key"
"""The header naming one change; a partner that saw it already drops the push."""

DELIVERY_HEADER = "X-Bridgeline-Delivery"
"""The delivery's number (for the partner's logs and ours)."""

SIGNATURE_TOLERANCE_SECONDS = 300
"""A partner should refuse a push whose timestamp is further than this from its clock."""

LOOPBACK_HOSTS = frozenset({"localhost"})
"""Hosts that may be reached over plain http (a partner's relay on the same machine)."""


@dataclass(frozen=True)
class Subscription:
    """A partner URL that receives EIDO pushes (the secret is not carried around)."""

    id: int
    partner_id: int
    partner_prefix: str
    partner_name: str
    url: str
    enabled: bool
    cursor_at: datetime


@dataclass(frozen=True)
class NewSubscription:
    """A subscription just made, with its signing secret (shown once)."""

    subscription: Subscription
    signing_secret: str


def check_url(url: str) -> str:
    """An https URL (http only to this machine); refused otherwise, with the reason."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise PartnerError("the URL must be https://host/path")
    if parts.username or parts.password:
        raise PartnerError("the URL must not carry a user name or password")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise PartnerError("plain http is only allowed to this machine; use https")
    if len(url) > 500:
        raise PartnerError("the URL is longer than 500 characters")
    return url


def _loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The signature header value for `body` sent at unix time `at`."""
    stamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    now: int | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` is a good signature of `body` by `secret`, made within `tolerance`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        stamp = int(fields.get("t", ""))
    except ValueError:
        return False
    current = int(time.time()) if now is None else now
    if abs(current - stamp) > tolerance:
        return False
    expected = sign(secret, body, stamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def _select() -> sa.Select[tuple[object, ...]]:
    return sa.select(
        partner_subscriptions, partners.c.key_prefix, partners.c.name.label("partner_name")
    ).join(partners, partners.c.id == partner_subscriptions.c.partner_id)


def _subscription(row: sa.Row[tuple[object, ...]]) -> Subscription:
    m = row._mapping
    cursor = m["cursor_at"]
    assert isinstance(cursor, datetime)
    return Subscription(
        id=int(m["id"]),  # type: ignore[call-overload]
        partner_id=int(m["partner_id"]),  # type: ignore[call-overload]
        partner_prefix=str(m["key_prefix"]),
        partner_name=str(m["partner_name"]),
        url=str(m["url"]),
        enabled=bool(m["enabled"]),
        cursor_at=cursor if cursor.tzinfo else cursor.replace(tzinfo=UTC),
    )


def create_subscription(
    engine: sa.Engine,
    prefix: str,
    url: str,
    *,
    since: datetime | None = None,
    actor: str = "cli",
) -> NewSubscription:
    """Subscribe `url` for the partner whose key has `prefix` (it needs the eido scope).
    Handoffs changed after `since` (default: now) are pushed."""
    partner = get_partner(engine, prefix)
    if partner is None:
        raise PartnerError(f"no partner key with prefix {prefix!r}")
    if Scope.EIDO.value not in partner.scopes:
        raise PartnerError("this partner's key does not have the eido scope")
    url = check_url(url)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    with engine.begin() as conn:
        sub_id = conn.execute(
            partner_subscriptions.insert()
            .values(
                partner_id=partner.id,
                url=url,
                signing_secret=secret,
                enabled=True,
                cursor_at=since or now,
                created_at=now,
                updated_at=now,
            )
            .returning(partner_subscriptions.c.id)
        ).scalar_one()
        audit.append(
            conn,
            actor,
            "partner.subscribe",
            f"partner:{prefix}",
            {"subscription": sub_id, "host": urlsplit(url).hostname},
        )
    made = get_subscription(engine, sub_id)
    assert made is not None
    return NewSubscription(made, secret)


def get_subscription(engine: sa.Engine, subscription_id: int) -> Subscription | None:
    with engine.connect() as conn:
        row = conn.execute(_select().where(partner_subscriptions.c.id == subscription_id)).first()
    return _subscription(row) if row else None


def list_subscriptions(engine: sa.Engine) -> list[Subscription]:
    """Every subscription, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(_select().order_by(partner_subscriptions.c.id)).all()
    return [_subscription(r) for r in rows]


def signing_secret(engine: sa.Engine, subscription_id: int) -> str | None:
    """The secret pushes of this subscription are signed with (workers only)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(partner_subscriptions.c.signing_secret).where(
                partner_subscriptions.c.id == subscription_id
            )
        ).scalar_one_or_none()
    return str(found) if found is not None else None


def set_subscription_enabled(
    engine: sa.Engine, subscription_id: int, enabled: bool, *, actor: str = "cli"
) -> Subscription:
    """Stop (or restart) pushes to a subscription; deliveries already owed stay owed."""
    with engine.begin() as conn:
        changed = conn.execute(
            partner_subscriptions.update()
            .where(partner_subscriptions.c.id == subscription_id)
            .values(enabled=enabled, updated_at=datetime.now(UTC))
        ).rowcount
        if not changed:
            raise PartnerError(f"no subscription {subscription_id}")
        audit.append(
            conn,
            actor,
            "partner.subscription_enable" if enabled else "partner.subscription_disable",
            f"subscription:{subscription_id}",
        )
    found = get_subscription(engine, subscription_id)
    assert found is not None
    return found

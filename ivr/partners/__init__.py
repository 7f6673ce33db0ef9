"""Partner systems (a city's CRM, a county CAD) and the keys they read Bridgeline's APIs with.

A partner has a name, scopes (which APIs: `open311`, `eido`), jurisdictions (whose records: ids
from config/program.yaml, or every jurisdiction), an on/off switch and a rate limit. Its API key
is shown once when it is made and stored only as a sha256 hash:

    bl_<prefix>_<secret>     prefix: 8 hex characters, not secret, finds the row and names
                             the key in the audit trail; secret: 256 random bits

`authenticate(engine, key, scope, jurisdiction)` answers an `Authentication`: the partner, or
the reason it was refused (unknown, disabled, out of scope, out of jurisdiction, rate limited),
with the HTTP status an API should answer. Every use, allowed or refused, is an audit entry.
`judge` is the decision itself, pure. Operators manage partners from the command line:

    python -m ivr.partners add --name "City CRM" --scope open311 --jurisdiction city
    python -m ivr.partners list
    python -m ivr.partners disable <prefix>
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol

import sqlalchemy as sa

from ivr.store import audit
from ivr.store.partner_tables import (
    partner_jurisdictions,
    partner_rate_windows,
    partner_scopes,
    partners,
)

KEY_PATTERN = re.compile(r"^bl_([0-9a-f]{8})_([A-Za-z0-9_\-]{43})$")
"""A partner key: `bl_`, the 8-hex-character prefix, `_`, 43 url-safe characters (256 bits)."""

ALL_JURISDICTIONS = "*"
"""Stored in place of a jurisdiction id for a partner that may read every jurisdiction."""

DEFAULT_RATE_LIMIT_PER_MINUTE = 120
"""Requests one partner may make in one clock minute unless its record says otherwise."""

MAX_NAME_LENGTH = 120
"""Longest partner name accepted."""


class Scope(str, Enum):
    """An API a partner key may be used for."""

    OPEN311 = "open311"
    EIDO = "eido"


class Refusal(str, Enum):
    """Why a partner key was not accepted for a request."""

    UNKNOWN = "unknown"
    DISABLED = "disabled"
    OUT_OF_SCOPE = "out_of_scope"
    OUT_OF_JURISDICTION = "out_of_jurisdiction"
    RATE_LIMITED = "rate_limited"

    @property
    def http_status(self) -> int:
        """401 for a key we do not know, 429 over the limit, 403 for a key not allowed here."""
        if self is Refusal.UNKNOWN:
            return 401
        if self is Refusal.RATE_LIMITED:
            return 429
        return 403

    @property
    def message(self) -> str:
        """A reason in words, safe to send to the API client."""
        return {
            Refusal.UNKNOWN: "unknown or malformed API key",
            Refusal.DISABLED: "this API key has been disabled",
            Refusal.OUT_OF_SCOPE: "this API key may not use this API",
            Refusal.OUT_OF_JURISDICTION: "this API key may not read this jurisdiction's records",
            Refusal.RATE_LIMITED: "too many requests; try again in a minute",
        }[self]


class PartnerError(ValueError):
    """A partner operation was refused (bad name, unknown scope or jurisdiction, no such key)."""


@dataclass(frozen=True)
class Partner:
    """A partner system as the APIs see it (no key, no hash)."""

    id: int
    name: str
    key_prefix: str
    scopes: frozenset[str]
    jurisdictions: frozenset[str]
    enabled: bool
    rate_limit_per_minute: int

    @property
    def all_jurisdictions(self) -> bool:
        """True when the partner may read every jurisdiction's records."""
        return ALL_JURISDICTIONS in self.jurisdictions

    def may_read(self, jurisdiction: str | None) -> bool:
        """Whether this partner may read a record of `jurisdiction` (None: no jurisdiction)."""
        if self.all_jurisdictions:
            return True
        return jurisdiction is not None and jurisdiction in self.jurisdictions


@dataclass(frozen=True)
class NewPartner:
    """A partner just made, with its key: the only time the key exists outside the caller."""

    partner: Partner
    key: str


@dataclass(frozen=True)
class Authentication:
    """The answer to one use of a key: `partner` when allowed, else `refusal` says why."""

    partner: Partner | None
    refusal: Refusal | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None and self.partner is not None


def hash_key(key: str) -> str:
    """The stored form of a key: sha256, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_prefix(key: str) -> str | None:
    """The non-secret prefix of a well-formed key, else None."""
    match = KEY_PATTERN.match(key or "")
    return match.group(1) if match else None


def new_key() -> tuple[str, str]:
    """A fresh (prefix, key) pair."""
    prefix = secrets.token_hex(4)
    return prefix, f"bl_{prefix}_{secrets.token_urlsafe(32)}"  # 32 bytes: 43 characters


def judge(partner: Partner | None, scope: Scope | str, jurisdiction: str | None) -> Refusal | None:
    """Pure: may this partner (None: the key matched no partner) use `scope` on a record of
    `jurisdiction` (None: a request for no one jurisdiction's records)? None means yes.
    The rate limit is counted separately (`count_use`)."""
    if partner is None:
        return Refusal.UNKNOWN
    if not partner.enabled:
        return Refusal.DISABLED
    if Scope(scope).value not in partner.scopes:
        return Refusal.OUT_OF_SCOPE
    if jurisdiction is not None and not partner.may_read(jurisdiction):
        return Refusal.OUT_OF_JURISDICTION
    return None


def _now() -> datetime:
    return datetime.now(UTC)


def _load(conn: sa.Connection, where: sa.ColumnElement[bool]) -> list[tuple[Partner, str]]:
    rows = conn.execute(sa.select(partners).where(where).order_by(partners.c.id)).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    scopes: dict[int, set[str]] = {i: set() for i in ids}
    places: dict[int, set[str]] = {i: set() for i in ids}
    for s in conn.execute(sa.select(partner_scopes).where(partner_scopes.c.partner_id.in_(ids))):
        scopes[s.partner_id].add(s.scope)
    for j in conn.execute(
        sa.select(partner_jurisdictions).where(partner_jurisdictions.c.partner_id.in_(ids))
    ):
        places[j.partner_id].add(j.jurisdiction)
    return [
        (
            Partner(
                id=r.id,
                name=r.name,
                key_prefix=r.key_prefix,
                scopes=frozenset(scopes[r.id]),
                jurisdictions=frozenset(places[r.id]),
                enabled=bool(r.enabled),
                rate_limit_per_minute=int(r.rate_limit_per_minute),
            ),
            r.key_hash,
        )
        for r in rows
    ]


def create_partner(
    engine: sa.Engine,
    *,
    name: str,
    scopes: Iterable[Scope | str],
    jurisdictions: Iterable[str] = (),
    known_jurisdictions: Iterable[str] | None = None,
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE,
    actor: str = "cli",
) -> NewPartner:
    """Make a partner and its key. No jurisdictions means every jurisdiction. With
    `known_jurisdictions` (program.yaml's ids), an unknown jurisdiction is refused."""
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME_LENGTH:
        raise PartnerError(f"name must be 1 to {MAX_NAME_LENGTH} characters")
    try:
        scope_values = sorted({Scope(s).value for s in scopes})
    except ValueError as exc:
        raise PartnerError(
            f"unknown scope ({exc}); scopes are: {', '.join(s.value for s in Scope)}"
        ) from None
    if not scope_values:
        raise PartnerError("give at least one scope: " + ", ".join(s.value for s in Scope))
    places = sorted({j.strip() for j in jurisdictions if j.strip()})
    if known_jurisdictions is not None:
        known = set(known_jurisdictions)
        unknown = [j for j in places if j not in known]
        if unknown:
            raise PartnerError(
                f"unknown jurisdiction {unknown[0]!r}; program.yaml has: "
                + (", ".join(sorted(known)) or "none")
            )
    if not 1 <= rate_limit_per_minute <= 100_000:
        raise PartnerError("rate limit must be 1 to 100000 requests a minute")
    stored_places = places or [ALL_JURISDICTIONS]
    prefix, key = new_key()
    now = _now()
    with engine.begin() as conn:
        partner_id = conn.execute(
            partners.insert()
            .values(
                name=name,
                key_prefix=prefix,
                key_hash=hash_key(key),
                enabled=True,
                rate_limit_per_minute=rate_limit_per_minute,
                created_at=now,
                updated_at=now,
            )
            .returning(partners.c.id)
        ).scalar_one()
        conn.execute(
            partner_scopes.insert(), [{"partner_id": partner_id, "scope": s} for s in scope_values]
        )
        conn.execute(
            partner_jurisdictions.insert(),
            [{"partner_id": partner_id, "jurisdiction": j} for j in stored_places],
        )
        conn.execute(partner_rate_windows.insert().values(partner_id=partner_id, minute=0, uses=0))
        audit.append(
            conn,
            actor,
            "partner.create",
            f"partner:{prefix}",
            {"scopes": scope_values, "jurisdictions": stored_places, "id": partner_id},
        )
    partner = Partner(
        partner_id,
        name,
        prefix,
        frozenset(scope_values),
        frozenset(stored_places),
        True,
        rate_limit_per_minute,
    )
    return NewPartner(partner, key)


def list_partners(engine: sa.Engine) -> list[Partner]:
    """Every partner, oldest first."""
    with engine.connect() as conn:
        return [p for p, _ in _load(conn, sa.true())]


def get_partner(engine: sa.Engine, prefix: str) -> Partner | None:
    """The partner whose key has this prefix."""
    with engine.connect() as conn:
        found = _load(conn, partners.c.key_prefix == prefix)
    return found[0][0] if found else None


def set_enabled(engine: sa.Engine, prefix: str, enabled: bool, *, actor: str = "cli") -> Partner:
    """Turn a partner's key on or off (by its prefix); refused keys stop at once."""
    with engine.begin() as conn:
        changed = conn.execute(
            partners.update()
            .where(partners.c.key_prefix == prefix)
            .values(enabled=enabled, updated_at=_now())
        ).rowcount
        if not changed:
            raise PartnerError(f"no partner key with prefix {prefix!r}")
        audit.append(
            conn, actor, "partner.enable" if enabled else "partner.disable", f"partner:{prefix}"
        )
        return _load(conn, partners.c.key_prefix == prefix)[0][0]


def count_use(conn: sa.Connection, partner: Partner, at: datetime) -> bool:
    """Count one request in the partner's current minute; False when it is over the limit."""
    minute = int(at.timestamp()) // 60
    table = partner_rate_windows
    uses = conn.execute(
        table.update()
        .where(table.c.partner_id == partner.id)
        .values(
            uses=sa.case((table.c.minute == minute, table.c.uses + 1), else_=1),
            minute=minute,
        )
        .returning(table.c.uses)
    ).scalar_one_or_none()
    if uses is None:  # a partner made before its window row (not by create_partner)
        conn.execute(table.insert().values(partner_id=partner.id, minute=minute, uses=1))
        uses = 1
    return int(uses) <= partner.rate_limit_per_minute


def authenticate(
    engine: sa.Engine,
    key: str | None,
    scope: Scope | str,
    jurisdiction: str | None,
    *,
    subject: str = "",
    at: datetime | None = None,
) -> Authentication:
    """Check a partner key for one request to `scope` on a record of `jurisdiction`; count it
    against the rate limit and record it in the audit trail (allowed or refused).

    `subject` names what was asked for in the audit entry (e.g. "eido:incident/42"); it must not
    carry caller data. `jurisdiction` None is a request for no one jurisdiction's records
    (e.g. Open311's list of services): any partner with the scope may make it.
    """
    scope_value = Scope(scope).value
    at = at or _now()
    prefix = key_prefix(key or "")
    with engine.begin() as conn:
        partner: Partner | None = None
        if prefix is not None:
            found = _load(conn, partners.c.key_prefix == prefix)
            if found and hmac.compare_digest(found[0][1], hash_key(key or "")):
                partner = found[0][0]
        refusal = judge(partner, scope_value, jurisdiction)
        if refusal is None and partner is not None and not count_use(conn, partner, at):
            refusal = Refusal.RATE_LIMITED
        details: dict[str, object] = {"scope": scope_value}
        if jurisdiction is not None:
            details["jurisdiction"] = jurisdiction[:64]
        if refusal is not None:
            details["refused"] = refusal.value
        audit.append(
            conn,
            f"partner:{prefix}" if prefix else "partner:malformed-key",
            "partner.use" if refusal is None else "partner.refused",
            subject or scope_value,
            details,
        )
    return Authentication(partner if refusal is None else None, refusal)


class _Lookup(Protocol):
    def get(self, key: str, /) -> str | None: ...


def presented_key(headers: _Lookup, values: _Lookup) -> str | None:
    """The key a request presents: `Authorization: Bearer <key>`, else an `X-API-Key` header,
    else an `api_key` query or form value (Open311 GeoReport v2's convention)."""
    auth = (headers.get("Authorization") or "").strip()
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return (headers.get("X-API-Key") or "").strip() or (values.get("api_key") or "").strip() or None

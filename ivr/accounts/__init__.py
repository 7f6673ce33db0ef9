"""Staff accounts: call-takers, clinicians and supervisors, with argon2-hashed passwords and PINs.

The transfer desk checks a call-taker's keypad ID + PIN with `verify_desk_pin`; the console
checks a password with `verify_password`. Operators manage accounts from the command line
(ivr/accounts/cli.py):

    python -m ivr.accounts add --staff-id 4101 --name "Dana Ruiz" --role call_taker
    python -m ivr.accounts set-pin 4101
    python -m ivr.accounts set-password 4101
    python -m ivr.accounts list
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ivr.store.account_tables import staff as staff_table
from ivr.store.account_tables import staff_roles

STAFF_ID_PATTERN = re.compile(r"^[0-9]{3,12}$")
"""Staff IDs are 3-12 digits, so a call-taker can key theirs in at the transfer desk."""

PIN_PATTERN = re.compile(r"^[0-9]{4,12}$")
"""Desk PINs are 4-12 digits (keyed in on a phone)."""

MIN_PASSWORD_LENGTH = 12
"""Shortest console password accepted."""

MAX_PASSWORD_LENGTH = 256
"""Longest console password accepted (bounds the hashing work an attacker can ask for)."""

# OWASP's argon2id baseline (19 MiB, t=2, p=1): ~20 ms a verify here instead of argon2-cffi's
# 64 MiB / t=3 / p=4 default (~550 ms under load), which held a sync web worker for the whole
# sign-in. Older hashes are upgraded on the next successful sign-in (check_needs_rehash).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

VERIFIED_TTL_SECONDS = 15 * 60
"""How long a secret that verified stays known-good in this process (same hash, same secret)."""

VERIFIED_CACHE_SIZE = 4096
"""At most this many known-good (hash, secret) tags are kept per process."""

# Known-good tags: HMAC(process-random key, stored hash + secret). The key never leaves memory
# and the tag covers the stored hash, so a changed PIN or password is verified afresh; wrong
# secrets always pay the full argon2 cost (and count towards the lockouts).
_verified_key = secrets.token_bytes(32)
_verified: dict[bytes, float] = {}
_dummy_hash: str | None = None


class Role(str, Enum):
    """What a staff member may do in Bridgeline."""

    CALL_TAKER = "call_taker"
    CLINICIAN = "clinician"
    SUPERVISOR = "supervisor"
    AGENT_311 = "agent_311"  # works the 311 report queue (/reports)


class AccountError(ValueError):
    """An account operation was refused (bad staff ID, weak password, unknown account, ...)."""


@dataclass(frozen=True)
class Staff:
    """A staff member as the rest of Bridgeline sees them (no secrets)."""

    id: int
    staff_id: str
    name: str
    roles: frozenset[str]
    helper_type: str | None


@dataclass(frozen=True)
class StaffRecord:
    """A staff member with account state, for the CLI and the login check."""

    staff: Staff
    active: bool
    has_password: bool
    has_pin: bool
    session_epoch: int


def _now() -> datetime:
    return datetime.now(UTC)


def _burn_one_verify() -> None:
    """Spend one argon2 verify so an unknown ID costs as much time as a known one."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("bridgeline-dummy-secret")
    try:
        _hasher.verify(_dummy_hash, "not-the-dummy-secret")
    except VerificationError:
        pass


def _check_staff_id(staff_id: str) -> str:
    staff_id = staff_id.strip()
    if not STAFF_ID_PATTERN.match(staff_id):
        raise AccountError("staff ID must be 3 to 12 digits")
    return staff_id


def _check_pin(pin: str) -> str:
    if not PIN_PATTERN.match(pin):
        raise AccountError("PIN must be 4 to 12 digits")
    return pin


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"password must be at most {MAX_PASSWORD_LENGTH} characters")
    return password


def _check_roles(roles: Iterable[str]) -> frozenset[str]:
    checked = set()
    for role in roles:
        try:
            checked.add(Role(role).value)
        except ValueError as exc:
            names = ", ".join(r.value for r in Role)
            raise AccountError(f"unknown role {role!r} (use {names})") from exc
    if not checked:
        raise AccountError("a staff member needs at least one role")
    return frozenset(checked)


def _roles_of(conn: sa.Connection, pk: int) -> frozenset[str]:
    rows = conn.execute(sa.select(staff_roles.c.role).where(staff_roles.c.staff_pk == pk))
    return frozenset(r.role for r in rows)


def _record(conn: sa.Connection, row: sa.Row) -> StaffRecord:
    return StaffRecord(
        staff=Staff(
            id=row.id,
            staff_id=row.staff_id,
            name=row.display_name,
            roles=_roles_of(conn, row.id),
            helper_type=row.helper_type,
        ),
        active=bool(row.active),
        has_password=row.password_hash is not None,
        has_pin=row.pin_hash is not None,
        session_epoch=row.session_epoch,
    )


def _row_by_staff_id(conn: sa.Connection, staff_id: str) -> sa.Row | None:
    return conn.execute(
        sa.select(staff_table).where(staff_table.c.staff_id == staff_id.strip())
    ).first()


def create_staff(
    engine: sa.Engine,
    *,
    staff_id: str,
    name: str,
    roles: Iterable[str],
    helper_type: str | None = None,
    password: str | None = None,
    pin: str | None = None,
) -> Staff:
    """Add a staff member; raise AccountError on a bad field or a staff ID already taken."""
    staff_id = _check_staff_id(staff_id)
    name = name.strip()
    if not name or len(name) > 120:
        raise AccountError("name must be 1 to 120 characters")
    checked_roles = _check_roles(roles)
    helper_type = (helper_type or "").strip() or None
    if helper_type is not None and Role.CLINICIAN.value not in checked_roles:
        raise AccountError("only clinicians have a helper type")
    password_hash = _hasher.hash(_check_password(password)) if password is not None else None
    pin_hash = _hasher.hash(_check_pin(pin)) if pin is not None else None
    now = _now()
    try:
        with engine.begin() as conn:
            pk = conn.execute(
                staff_table.insert()
                .values(
                    staff_id=staff_id,
                    display_name=name,
                    helper_type=helper_type,
                    password_hash=password_hash,
                    pin_hash=pin_hash,
                    active=True,
                    session_epoch=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(staff_table.c.id)
            ).scalar_one()
            conn.execute(
                staff_roles.insert(), [{"staff_pk": pk, "role": r} for r in sorted(checked_roles)]
            )
    except sa.exc.IntegrityError as exc:
        raise AccountError(f"staff ID {staff_id} is already taken") from exc
    return Staff(pk, staff_id, name, checked_roles, helper_type)


def get_staff(engine: sa.Engine, staff_id: str) -> Staff | None:
    """The active staff member with this staff ID, or None."""
    record = get_record(engine, staff_id)
    if record is None or not record.active:
        return None
    return record.staff


def get_record(engine: sa.Engine, staff_id: str) -> StaffRecord | None:
    """The staff member with this staff ID and their account state (active or not), or None."""
    with engine.connect() as conn:
        row = _row_by_staff_id(conn, staff_id)
        return _record(conn, row) if row is not None else None


def list_staff(engine: sa.Engine) -> list[StaffRecord]:
    """Every account, by staff ID."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(staff_table).order_by(staff_table.c.staff_id)).all()
        return [_record(conn, row) for row in rows]


def staff_with_role(engine: sa.Engine, role: Role) -> list[Staff]:
    """Active staff holding `role`, by staff ID."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(staff_table)
            .join(staff_roles, staff_roles.c.staff_pk == staff_table.c.id)
            .where(staff_roles.c.role == role.value, staff_table.c.active.is_(True))
            .order_by(staff_table.c.staff_id)
        ).all()
        return [_record(conn, row).staff for row in rows]


def _update(engine: sa.Engine, staff_id: str, **values: object) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            staff_table.update()
            .where(staff_table.c.staff_id == staff_id.strip())
            .values(updated_at=_now(), **values)
        )
        if done.rowcount != 1:
            raise AccountError(f"no staff member with ID {staff_id.strip()}")


def set_pin(engine: sa.Engine, staff_id: str, pin: str) -> None:
    """Give a staff member a new desk PIN."""
    _update(engine, staff_id, pin_hash=_hasher.hash(_check_pin(pin)))


def set_password(engine: sa.Engine, staff_id: str, password: str) -> None:
    """Give a staff member a new console password; their open sessions end."""
    _update(
        engine,
        staff_id,
        password_hash=_hasher.hash(_check_password(password)),
        session_epoch=staff_table.c.session_epoch + 1,
    )


def set_active(engine: sa.Engine, staff_id: str, active: bool) -> None:
    """Enable or disable an account; disabling ends its open sessions."""
    values: dict[str, object] = {"active": active}
    if not active:
        values["session_epoch"] = staff_table.c.session_epoch + 1
    _update(engine, staff_id, **values)


STAFF_SIGN_IN_COLUMNS = (
    staff_table.c.id,
    staff_table.c.staff_id,
    staff_table.c.display_name,
    staff_table.c.helper_type,
    staff_table.c.password_hash,
    staff_table.c.pin_hash,
    staff_table.c.active,
    staff_roles.c.role,
)
"""What checking a secret reads: the account and its roles (one row per role)."""

STAFF_AND_ROLES = staff_table.outerjoin(staff_roles, staff_roles.c.staff_pk == staff_table.c.id)

# The sign-in's hot path: the account and its roles in one round trip (one row per role),
# built once at import so a sign-in pays no statement building or cache-key generation.
_STAFF_WITH_ROLES = (
    sa.select(*STAFF_SIGN_IN_COLUMNS)
    .select_from(STAFF_AND_ROLES)
    .where(staff_table.c.staff_id == sa.bindparam("staff_id"))
)


def _verify_secret(engine: sa.Engine, staff_id: str, secret: str, column: str) -> Staff | None:
    """Check `secret` against the hash in `column`; always exactly one argon2 verify."""
    staff_id = staff_id.strip()
    rows: Sequence[Any] = ()
    if STAFF_ID_PATTERN.match(staff_id):
        with engine.connect() as conn:
            rows = conn.execute(_STAFF_WITH_ROLES, {"staff_id": staff_id}).all()
    return verify_rows(engine, staff_id, secret, column, rows)


def verify_rows(
    engine: sa.Engine, staff_id: str, secret: str, column: str, rows: Sequence[Any]
) -> Staff | None:
    """Check `secret` against the account read as STAFF_SIGN_IN_COLUMNS rows (none: unknown ID);
    always exactly one argon2 verify, or a remembered one."""
    row = rows[0] if rows else None
    stored = getattr(row, column) if row is not None else None
    if row is None or stored is None or not row.active or len(secret) > MAX_PASSWORD_LENGTH:
        _burn_one_verify()
        return None
    tag = _verified_tag(stored, secret)
    if not _recently_verified(tag):
        try:
            _hasher.verify(stored, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        _remember_verified(tag)
    if _hasher.check_needs_rehash(stored):
        _update(engine, staff_id, **{column: _hasher.hash(secret)})
    roles = frozenset(r.role for r in rows if r.role is not None)
    return Staff(row.id, row.staff_id, row.display_name, roles, row.helper_type)


def _verified_tag(stored: str, secret: str) -> bytes:
    return hmac.new(_verified_key, f"{stored}\0{secret}".encode(), hashlib.sha256).digest()


def _recently_verified(tag: bytes) -> bool:
    expiry = _verified.get(tag)
    return expiry is not None and expiry > time.monotonic()


def _remember_verified(tag: bytes) -> None:
    if len(_verified) >= VERIFIED_CACHE_SIZE:
        _verified.clear()  # rare: a full cache costs one argon2 verify per sign-in again
    _verified[tag] = time.monotonic() + VERIFIED_TTL_SECONDS


def verify_desk_pin(engine: sa.Engine, staff_id: str, pin: str) -> Staff | None:
    """The active staff member whose desk PIN this is, or None (unknown ID, wrong PIN, no PIN)."""
    return _verify_secret(engine, staff_id, pin, "pin_hash")


def verify_password(engine: sa.Engine, staff_id: str, password: str) -> Staff | None:
    """The active staff member whose console password this is, or None."""
    return _verify_secret(engine, staff_id, password, "password_hash")


def session_epoch(engine: sa.Engine, staff_id: str) -> int | None:
    """The current session epoch of an active account (None when unknown or disabled)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(staff_table.c.session_epoch, staff_table.c.active).where(
                staff_table.c.staff_id == staff_id
            )
        ).first()
    if row is None or not row.active:
        return None
    return int(row.session_epoch)

"""The audit trail: who did what to which record, append-only and tamper-evident.

Each entry's hash covers its own fields and the hash of the entry before it, so changing,
removing or reordering an entry breaks the chain from that point on:

    hash(n) = sha256(hash(n-1) | seq | at | actor | action | subject | details)

`append(engine_or_connection, actor, action, subject, details)` adds an entry (pass your
Connection to audit inside your own transaction: the entry and your change commit together).
`python -m ivr.store.audit verify` walks the chain and names the first broken entry (exit 1).

`details` must not carry caller data (numbers, names, recordings, free text): ids and counts.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ivr.store.audit_tables import audit_log

GENESIS = "0" * 64
"""The prev_hash of the first entry."""

APPEND_ATTEMPTS = 5
"""Appends racing for the same place in the chain retry this many times."""


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verdict:
    """The result of walking the chain: `broken_at` is None when every entry checks out."""

    entries: int
    head: str
    broken_at: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def _stamp(at: datetime) -> str:
    """A timestamp spelled the same whichever database stored it (naive SQLite means UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(
    prev_hash: str, seq: int, at: datetime, actor: str, action: str, subject: str, details: str
) -> str:
    """The hash an entry must carry."""
    fields = [prev_hash, str(seq), _stamp(at), actor, action, subject, details]
    return hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()


def canonical(details: Mapping[str, Any] | None) -> str:
    """Details as the exact text that is hashed and stored (sorted keys, no spaces)."""
    return json.dumps(
        dict(details or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def _lock(conn: sa.Connection) -> None:
    """Serialise appends: an advisory lock on PostgreSQL; on SQLite a write that changes
    nothing, so the transaction holds the write lock before it reads the head (Python's sqlite3
    begins a transaction only at the first write, so two appends could read the same head)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(74657301)")
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("UPDATE audit_log SET seq = seq WHERE 0")


def _append_on(
    conn: sa.Connection, actor: str, action: str, subject: str, details: str
) -> AuditEntry:
    _lock(conn)
    head = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    at = datetime.now(UTC)
    digest = entry_hash(prev, seq, at, actor, action, subject, details)
    conn.execute(
        audit_log.insert().values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            details=details,
            prev_hash=prev,
            hash=digest,
        )
    )
    return AuditEntry(seq, at, actor, action, subject, details, prev, digest)


def append(
    target: sa.Engine | sa.Connection,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry at the end of the chain; returns it.

    With an Engine the entry commits on its own (retried if another process appended first).
    With a Connection it joins that transaction, so it commits or rolls back with your change.
    """
    text = canonical(details)
    actor, action, subject = actor[:128], action[:64], subject[:128]
    if isinstance(target, sa.Connection):
        return _append_on(target, actor, action, subject, text)
    for attempt in range(APPEND_ATTEMPTS):
        try:
            with target.begin() as conn:
                return _append_on(conn, actor, action, subject, text)
        except (sa.exc.IntegrityError, sa.exc.OperationalError):
            # Another writer took this place in the chain (or held SQLite's write lock).
            if attempt == APPEND_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def entries(engine: sa.Engine, batch: int = 1000) -> Iterator[AuditEntry]:
    """Every entry in chain order, read in batches."""
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(audit_log)
                .where(audit_log.c.seq > last)
                .order_by(audit_log.c.seq)
                .limit(batch)
            ).all()
        if not rows:
            return
        for r in rows:
            yield AuditEntry(
                r.seq, r.at, r.actor, r.action, r.subject, r.details, r.prev_hash, r.hash
            )
        last = rows[-1].seq


def verify(engine: sa.Engine) -> Verdict:
    """Walk the chain from the start; stop at the first entry that does not check out."""
    prev, expected_seq, count = GENESIS, 1, 0
    for entry in entries(engine):
        if entry.seq != expected_seq:
            return Verdict(count, prev, entry.seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev:
            return Verdict(count, prev, entry.seq, "does not follow the entry before it")
        recomputed = entry_hash(
            entry.prev_hash, entry.seq, entry.at, entry.actor, entry.action, entry.subject,
            entry.details,
        )  # fmt: skip
        if recomputed != entry.hash:
            return Verdict(count, prev, entry.seq, "its contents were changed")
        prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    return Verdict(count, prev)


def main(argv: list[str]) -> int:
    """`python -m ivr.store.audit verify`: exit 0 with the head hash, or 1 naming the broken entry."""
    import os

    from ivr.settings import DEFAULT_DATABASE_URL, normalise_database_url
    from ivr.store.db import make_engine

    if argv[1:] != ["verify"]:
        print("usage: python -m ivr.store.audit verify", file=sys.stderr)
        return 2
    url = normalise_database_url(os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
    engine = make_engine(url)
    try:
        verdict = verify(engine)
    except sa.exc.DBAPIError as exc:
        print(
            f"cannot read the audit trail ({type(exc.orig).__name__}): "
            "is DATABASE_URL right, and has `python -m ivr.store migrate` run?",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    if verdict.intact:
        print(f"audit trail intact: {verdict.entries} entries, head {verdict.head}")
        return 0
    print(
        f"audit trail BROKEN at entry {verdict.broken_at}: {verdict.reason} "
        f"({verdict.entries} entries before it check out)"
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

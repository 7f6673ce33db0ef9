"""The audit trail: append-only, tamper-evident, and a command that names the first bad entry."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ivr.store import audit
from ivr.store.audit_tables import audit_log


def migration():  # type: ignore[no-untyped-def]
    """The audit trail's migration module (its file name is not an importable name)."""
    import importlib.util
    from pathlib import Path

    from ivr.store.db import MIGRATIONS

    path = Path(MIGRATIONS) / "versions" / "0007_audit_trail.py"
    spec = importlib.util.spec_from_file_location("audit_migration", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tamperable(engine: sa.Engine) -> Iterator[sa.Engine]:
    """Someone with database admin rights switches off the append-only trigger."""
    dialect = engine.dialect.name
    with engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    yield engine
    with engine.begin() as conn:
        if dialect == "sqlite":
            for statement in migration().append_only_statements(dialect):
                conn.exec_driver_sql(statement)
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def three_entries(engine: sa.Engine) -> list[audit.AuditEntry]:
    return [
        audit.append(engine, "supervisor:7", "login", "staff:7", {"ok": True}),
        audit.append(engine, "system:retention", "retention.delete", "service_requests", {"n": 4}),
        audit.append(
            engine, "clinician:3", "handoff.outcome", "handoff:12", {"outcome": "resolved"}
        ),
    ]


def test_entries_chain_and_the_chain_verifies(engine: sa.Engine) -> None:
    first, second, third = three_entries(engine)
    assert first.prev_hash == audit.GENESIS
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    verdict = audit.verify(engine)
    assert verdict.intact and verdict.entries == 3 and verdict.head == third.hash


def test_the_verify_command_reports_an_intact_chain(
    engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    entries = three_entries(engine)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert audit.main(["ivr.store.audit", "verify"]) == 0
    assert capsys.readouterr().out.strip() == (
        f"audit trail intact: 3 entries, head {entries[-1].hash}"
    )


def test_the_database_refuses_to_change_an_entry(engine: sa.Engine) -> None:
    three_entries(engine)
    with pytest.raises(sa.exc.DatabaseError), engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(details="{}"))


def test_an_edited_entry_is_named(
    tamperable: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    three_entries(tamperable)
    with tamperable.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(details='{"n":0}'))
    verdict = audit.verify(tamperable)
    assert (verdict.broken_at, verdict.reason, verdict.entries) == (
        2,
        "its contents were changed",
        1,
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert audit.main(["ivr.store.audit", "verify"]) == 1
    assert "BROKEN at entry 2: its contents were changed" in capsys.readouterr().out


def test_a_rewritten_entry_with_a_fresh_hash_breaks_the_next_link(tamperable: sa.Engine) -> None:
    first, second, _ = three_entries(tamperable)
    forged = audit.entry_hash(first.hash, 2, second.at, "nobody", "login", "staff:1", "{}")
    with tamperable.begin() as conn:
        conn.execute(
            audit_log.update()
            .where(audit_log.c.seq == 2)
            .values(actor="nobody", action="login", subject="staff:1", details="{}", hash=forged)
        )
    verdict = audit.verify(tamperable)
    assert (verdict.broken_at, verdict.reason) == (3, "does not follow the entry before it")


def test_a_deleted_entry_is_named(engine: sa.Engine) -> None:
    three_entries(engine)
    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 2))
    verdict = audit.verify(engine)
    assert (verdict.broken_at, verdict.reason) == (3, "entry 2 is missing")


def test_an_entry_in_a_rolled_back_transaction_never_existed(engine: sa.Engine) -> None:
    audit.append(engine, "system", "first", "x")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        audit.append(conn, "system", "second", "x")
        raise RuntimeError("the change being audited failed")
    audit.append(engine, "system", "third", "x")
    verdict = audit.verify(engine)
    assert verdict.intact and verdict.entries == 2


def test_writers_racing_do_not_fork_the_chain(engine: sa.Engine) -> None:
    def write(n: int) -> None:
        for i in range(10):
            audit.append(engine, f"worker:{n}", "tick", f"item:{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = audit.verify(engine)
    assert verdict.intact and verdict.entries == 40

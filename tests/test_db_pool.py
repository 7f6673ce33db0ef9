"""The database pool after the server dropped a connection: a webhook or a job never sees the
dead connection once it sat idle, and a connection in steady use is not pinged (PostgreSQL)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from ivr.store import db
from ivr.store.db import make_engine


def _backend(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.pg_backend_pid())).scalar_one())


def _kill(database_url: str, pid: int) -> None:
    other = make_engine(database_url)
    with other.begin() as conn:
        assert conn.execute(sa.select(sa.func.pg_terminate_backend(pid))).scalar_one()
    other.dispose()


def test_a_connection_the_server_dropped_while_idle_is_replaced_unseen(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to drop a connection")
    engine = make_engine(database_url)
    first = _backend(engine)
    _kill(database_url, first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has been idle long enough
    assert _backend(engine) != first  # checked, found dead, replaced: no error
    engine.dispose()


def test_a_connection_used_within_the_second_is_not_pinged(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no pool of server connections")
    engine = make_engine(database_url)
    pings: list[object] = []
    ping = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or ping(c))
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    for _ in range(5):
        _backend(engine)
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    _backend(engine)
    assert len(pings) == 1
    engine.dispose()

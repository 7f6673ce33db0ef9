"""Database engine (SQLite in WAL mode by default, PostgreSQL via DATABASE_URL) and migrations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ColumnElement

MIGRATIONS = Path(__file__).parent / "migrations"
"""Alembic script folder shipped inside the package."""

CONNECT_TIMEOUT_SECONDS = 2
"""How long a webhook waits for PostgreSQL before it gives the caller the fallback path."""

PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled PostgreSQL connection idle this long is pinged before use (a dead one is replaced
then, unseen). One used within the last second is not: a ping on every checkout doubled the
round trips of each short read and cost a fifth of a worker's database time under load."""


def make_engine(url: str) -> sa.Engine:
    """An engine tuned for webhooks: SQLite in WAL + synchronous=NORMAL, short PG timeouts, a
    liveness check only for connections that sat idle."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 5})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = sa.create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_timeout=2,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: sa.Engine) -> None:
    """pool_pre_ping, for connections idle over PING_AFTER_IDLE_SECONDS only (SQLAlchemy's
    pessimistic disconnect handling with a custom check). A server restart within a second of
    a connection's last use fails that one statement; SQLAlchemy then recycles the whole pool."""

    def stamp(_dbapi_connection: Any, record: Any, *_: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool retries with a new connection
            raise sa.exc.DisconnectionError() from exc

    sa.event.listen(engine, "connect", stamp)
    sa.event.listen(engine, "checkin", stamp)
    sa.event.listen(engine, "checkout", check)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(url: str) -> AlembicConfig:
    """Alembic configuration pointing at the packaged migrations and `url`."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at `url` up to the newest schema (all branches)."""
    command.upgrade(alembic_config(url), "heads")


def insert_skipping_duplicates(
    dialect_name: str, table: sa.Table, *, unique: list[str] | None = None
) -> Any:
    """INSERT into `table` that skips a row clashing with a unique index (`unique`: that
    index's columns; None: any of them) instead of failing: ON CONFLICT DO NOTHING, as SQLite
    and PostgreSQL both spell it. A retry racing the original then neither raises nor aborts
    the transaction it runs in."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=unique)


def seconds_between(
    engine: sa.Engine, later: ColumnElement[Any], earlier: ColumnElement[Any]
) -> ColumnElement[int]:
    """Whole seconds from `earlier` to `later`, on SQLite and PostgreSQL."""
    if engine.dialect.name == "postgresql":
        return sa.cast(sa.func.round(sa.func.extract("epoch", later - earlier)), sa.Integer)
    diff = (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400
    return sa.cast(sa.func.round(diff), sa.Integer)

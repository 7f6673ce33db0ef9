"""`python -m ivr.store migrate`: bring DATABASE_URL up to the newest schema."""

from __future__ import annotations

import sys

import sqlalchemy as sa

from ivr.settings import DEFAULT_DATABASE_URL, normalise_database_url
from ivr.store.db import make_engine, migrate


def _state(url: str) -> tuple[set[str], str | None]:
    """The tables the database has, and its schema revision(s) (None before the first)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            revision = None
            if "alembic_version" in tables:
                rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
                revision = ", ".join(sorted(rows)) or None
    finally:
        engine.dispose()
    return tables - {"alembic_version"}, revision


def describe(before: tuple[set[str], str | None], after: tuple[set[str], str | None]) -> str:
    """What a migration did, in a sentence an operator can act on."""
    (old_tables, old_rev), (new_tables, new_rev) = before, after
    created = sorted(new_tables - old_tables)
    listed = f"{len(created)} tables: {', '.join(created)}"
    if old_rev is None and not old_tables:
        return f"created a new database at schema revision {new_rev} ({listed})"
    if old_rev == new_rev:
        return f"database is up to date (schema revision {new_rev}, {len(new_tables)} tables)"
    added = f"; new {listed}" if created else ""
    return f"database upgraded from schema revision {old_rev} to {new_rev}{added}"


def main(argv: list[str]) -> int:
    import os

    if argv[1:] != ["migrate"]:
        print("usage: python -m ivr.store migrate", file=sys.stderr)
        return 2
    url = normalise_database_url(os.environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
    before = _state(url)
    migrate(url)
    print(describe(before, _state(url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

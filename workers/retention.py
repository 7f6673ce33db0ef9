"""Delete records older than each jurisdiction's retention limit; audit every deletion.

`purge_expired()` is the scheduled job (registered in workers/clock.py, daily). Limits live
in config/retention.yaml, validated at start-up with file/line/field errors. Each batch of
deleted rows and its audit entry commit in one transaction: a deletion is never unaudited.
Rows referencing a deleted row (through a foreign key) are deleted first, found by reading the
schema, so new child tables are handled without changes here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.config import load_program
from ivr.config.yaml_source import read_yaml
from ivr.store import audit
from workers import context

log = logging.getLogger(__name__)

RETENTION_FILE = "retention.yaml"
"""Retention limits per jurisdiction, in the config folder."""

ACTOR = "system:retention"
"""Who the audit trail says deleted the rows."""

SELF_SERVICE_TABLES: tuple[tuple[str, str, str | None], ...] = (
    # (table, the column that dates a row, a condition that keeps open work out)
    ("self_service_events", "at", None),
    ("outbound_sms", "created_at", "status IN ('sent', 'failed')"),
    ("service_requests", "created_at", None),
)
"""Records of the self-service line (its jurisdiction is program.yaml's)."""

JURISDICTION_TABLES: tuple[tuple[str, str, str | None, str], ...] = (
    # (table, dating column, open-work condition, the row's jurisdiction as SQL)
    ("handoffs", "created_at", "ended_at IS NOT NULL", "jurisdiction"),
    ("live_calls", "created_at", "ended_at IS NOT NULL", "jurisdiction"),
    (
        "callbacks",
        "created_at",
        "status IN ('done', 'cancelled', 'draft')",
        "COALESCE(jurisdiction, CASE WHEN source IN ('resident_menu', 'queue_overflow')"
        " THEN CAST(:line AS VARCHAR(64)) END)",
    ),
)
"""Records that carry their jurisdiction (handoffs and live calls since migration 0009, callbacks
since 0012; a callback asked for on the self-service line belongs to the line's). A row with
none, or one retention.yaml does not list, has the default limit."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Frozen):
    days: int = Field(ge=1, le=36_500)


class RetentionConfig(_Frozen):
    """Validated config/retention.yaml."""

    default: Rule
    jurisdictions: dict[str, Rule] = {}
    batch_size: int = Field(default=500, ge=1, le=100_000)
    self_service_jurisdiction: str | None = None

    def days_for(self, jurisdiction: str | None) -> int:
        rule = self.jurisdictions.get(jurisdiction or "", self.default)
        return rule.days


def load_retention(folder: Path) -> RetentionConfig:
    """Read and check retention.yaml against program.yaml's jurisdictions."""
    source = read_yaml(folder / RETENTION_FILE)
    try:
        config = RetentionConfig.model_validate(source.data if source.data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise source.error(tuple(first["loc"]), first["msg"]) from None
    program = load_program(folder)
    known = {j.id for j in program.jurisdictions}
    for name in config.jurisdictions:
        if known and name not in known:
            raise source.error(
                ("jurisdictions", name),
                f"unknown jurisdiction '{name}' (program.yaml has: {', '.join(sorted(known))})",
            )
    return config.model_copy(
        update={"self_service_jurisdiction": program.self_service_jurisdiction}
    )


@dataclass(frozen=True)
class Purged:
    table: str
    jurisdiction: str
    cutoff: datetime
    deleted: int


def _children(inspector: sa.Inspector, tables: set[str], parent: str) -> list[tuple[str, str]]:
    """(child table, its column) pairs holding a foreign key to `parent`.id."""
    found = []
    for table in tables:
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_table"] == parent and fk["referred_columns"] == ["id"]:
                found.append((table, fk["constrained_columns"][0]))
    return found


def _delete_ids(
    conn: sa.Connection,
    inspector: sa.Inspector,
    tables: set[str],
    table: str,
    ids: list[int],
    counts: dict[str, int],
) -> None:
    """Delete rows `ids` of `table`, after every row that refers to them (recursively)."""
    for child, column in _children(inspector, tables, table):
        child_table = sa.Table(child, sa.MetaData(), autoload_with=conn)
        child_ids = [
            int(r[0])
            for r in conn.execute(sa.select(child_table.c.id).where(child_table.c[column].in_(ids)))
        ]
        if child_ids:
            _delete_ids(conn, inspector, tables, child, child_ids, counts)
    target = sa.Table(table, sa.MetaData(), autoload_with=conn)
    result = conn.execute(sa.delete(target).where(target.c.id.in_(ids)))
    counts[table] = counts.get(table, 0) + int(result.rowcount or 0)


def purge_table(
    engine: sa.Engine,
    table: str,
    dated_by: str,
    keep_open: str | None,
    cutoff: datetime,
    jurisdiction: str,
    batch_size: int,
    scope: sa.TextClause | None = None,
) -> int:
    """Delete `table` rows dated before `cutoff` (and in `scope`), batch by batch, each batch
    audited."""
    total = 0
    while True:
        with engine.begin() as conn:
            inspector = sa.inspect(conn)
            tables = set(inspector.get_table_names())
            if table not in tables:
                return total
            target = sa.Table(table, sa.MetaData(), autoload_with=conn)
            query = (
                sa.select(target.c.id)
                .where(target.c[dated_by] < cutoff)
                .order_by(target.c.id)
                .limit(batch_size)
            )
            if keep_open:
                query = query.where(sa.text(keep_open))
            if scope is not None:
                query = query.where(scope)
            ids = [int(r[0]) for r in conn.execute(query)]
            if not ids:
                return total
            counts: dict[str, int] = {}
            _delete_ids(conn, inspector, tables, table, ids, counts)
            audit.append(
                conn,
                ACTOR,
                "retention.delete",
                table,
                {
                    "jurisdiction": jurisdiction,
                    "older_than": cutoff.isoformat(),
                    "deleted": counts,
                    "first_id": ids[0],
                    "last_id": ids[-1],
                },
            )
            total += counts.get(table, 0)


def _scope(condition: str, line: str | None, **values: Any) -> sa.TextClause:
    """`condition` as SQL with its values bound (`:line`, the self-service line's jurisdiction,
    only where the condition uses it)."""
    binds = [
        v if isinstance(v, sa.BindParameter) else sa.bindparam(k, v) for k, v in values.items()
    ]
    if ":line" in condition:
        binds.append(sa.bindparam("line", line))
    return sa.text(f"({condition})").bindparams(*binds)  # parenthesised: it is ANDed


def purge(engine: sa.Engine, config: RetentionConfig, now: datetime | None = None) -> list[Purged]:
    """Apply every retention limit once; returns what was deleted."""
    now = now or datetime.now(UTC)
    done: list[Purged] = []

    def run(table: str, dated_by: str, keep_open: str | None, jurisdiction: str, days: int,
            scope: sa.TextClause | None = None) -> None:  # fmt: skip
        cutoff = now - timedelta(days=days)
        deleted = purge_table(
            engine, table, dated_by, keep_open, cutoff, jurisdiction, config.batch_size, scope
        )
        if deleted:
            log.info(
                "retention: deleted rows=%s table=%s jurisdiction=%s", deleted, table, jurisdiction
            )
        done.append(Purged(table, jurisdiction, cutoff, deleted))

    line = config.self_service_jurisdiction
    for table, dated_by, keep_open in SELF_SERVICE_TABLES:
        run(table, dated_by, keep_open, line or "default", config.days_for(line))
    listed = sorted(config.jurisdictions)
    for table, dated_by, keep_open, of_row in JURISDICTION_TABLES:
        for jurisdiction in listed:
            mine = _scope(f"{of_row} = :jurisdiction", line, jurisdiction=jurisdiction)
            run(table, dated_by, keep_open, jurisdiction, config.days_for(jurisdiction), mine)
        others = _scope(
            f"({of_row}) IS NULL OR ({of_row}) NOT IN :listed",
            line,
            listed=sa.bindparam("listed", listed or [""], expanding=True),
        )
        run(table, dated_by, keep_open, "default", config.default.days, others)
    return done


def purge_expired() -> int:
    """The scheduled job: delete what is past its retention limit. Returns rows deleted."""
    ctx = context.current()
    config = load_retention(ctx.settings.config_dir)
    return sum(p.deleted for p in purge(ctx.engine, config))

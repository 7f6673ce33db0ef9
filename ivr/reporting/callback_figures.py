"""Callback figures: promises made, kept, overdue and how long residents waited.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ivr.config.program import ProgramConfig
from ivr.reporting.measures import (
    OPEN_CALLBACK_STATES,
    Filters,
    Table,
    _blank,
    _round_minutes,
    clock_for,
    median,
    percentile,
)
from ivr.store.db import seconds_between as seconds_between
from ivr.store.tables import callbacks

# ------------------------------------------------------------------ callbacks


@dataclass(frozen=True)
class CallbackFigures:
    """Callbacks created in the range, by state, with the overdue ones."""

    by_status: dict[str, int]
    by_source: dict[str, int]
    open: int
    done: int
    failed: int
    overdue: int
    first_attempt_median_minutes: float | None = None
    first_attempt_p90_minutes: float | None = None


SELF_SERVICE_CALLBACK_SOURCES = ("resident_menu", "queue_overflow")
"""Callbacks asked for on the self-service line: they belong to its jurisdiction."""


def _callback_in_jurisdiction(program: ProgramConfig, jurisdiction: str) -> ColumnElement[bool]:
    """A callback's jurisdiction: its handoff's (recorded, migration 0012), or for one asked for
    on the self-service line, that line's (program.yaml self_service_jurisdiction)."""
    cb = callbacks
    recorded = cb.c.jurisdiction == jurisdiction
    if jurisdiction != program.self_service_jurisdiction:
        return recorded
    from_the_line = sa.and_(
        cb.c.jurisdiction.is_(None), cb.c.source.in_(SELF_SERVICE_CALLBACK_SOURCES)
    )
    return sa.or_(recorded, from_the_line)


def callback_figures(
    engine: sa.Engine, program: ProgramConfig, filters: Filters, now: datetime
) -> CallbackFigures:
    """Callbacks created in the range: open, done, failed, overdue (open past deadline), and
    the time from when each was due to its first dialing attempt."""
    cb = callbacks
    clock = clock_for(engine, program, filters)
    where = [*clock.conditions(cb.c.created_at, filters), cb.c.status != "draft"]
    if filters.helper_type:
        where.append(cb.c.helper_type == filters.helper_type)
    if filters.jurisdiction is not None:
        where.append(_callback_in_jurisdiction(program, filters.jurisdiction))
    overdue = sa.and_(cb.c.status.in_(OPEN_CALLBACK_STATES), cb.c.deadline_at < now)
    from ivr.store.callback_tables import callback_attempts

    first = (
        sa.select(
            callback_attempts.c.callback_id.label("callback_id"),
            sa.func.min(callback_attempts.c.claimed_at).label("first_at"),
        )
        .where(callback_attempts.c.claimed_at.is_not(None))
        .group_by(callback_attempts.c.callback_id)
        .subquery()
    )
    wait = seconds_between(engine, first.c.first_at, sa.func.coalesce(cb.c.due_at, cb.c.created_at))
    wait = wait.label("wait")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                cb.c.status,
                cb.c.source,
                sa.func.count(),
                sa.func.sum(sa.case((overdue, 1), else_=0)),
            )
            .where(*where)
            .group_by(cb.c.status, cb.c.source)
        ).all()
        waits = conn.execute(
            sa.select(wait, sa.func.count())
            .select_from(cb.join(first, first.c.callback_id == cb.c.id))
            .where(*where)
            .group_by(wait)
        ).all()
    by_status: dict[str, int] = defaultdict(int)
    by_source: dict[str, int] = defaultdict(int)
    late = 0
    for status, source, count, overdue_count in rows:
        by_status[status] += count
        by_source[source] += count
        late += int(overdue_count or 0)
    first_wait: dict[int, int] = defaultdict(int)
    for seconds, count in waits:
        first_wait[max(int(seconds), 0)] += count
    middle = median(first_wait)
    return CallbackFigures(
        by_status=dict(by_status),
        by_source=dict(by_source),
        open=sum(by_status.get(s, 0) for s in OPEN_CALLBACK_STATES),
        done=by_status.get("done", 0),
        failed=by_status.get("failed", 0),
        overdue=late,
        first_attempt_median_minutes=None if middle is None else round(middle / 60, 1),
        first_attempt_p90_minutes=_round_minutes(percentile(first_wait, 0.9)),
    )


def callback_tables(figures: CallbackFigures) -> list[Table]:
    """The callback figures as dashboard tables."""
    rows: list[tuple[Any, ...]] = [
        ("open", figures.open),
        ("done", figures.done),
        ("failed", figures.failed),
        ("overdue (open past deadline)", figures.overdue),
        ("cancelled", figures.by_status.get("cancelled", 0)),
        ("first attempt, median minutes", _blank(figures.first_attempt_median_minutes)),
        ("first attempt, 90th percentile minutes", _blank(figures.first_attempt_p90_minutes)),
    ]
    summary = Table("callbacks", "Callbacks", ("figure", "value"), rows)
    sources = Table(
        "callback_sources",
        "Callbacks by source",
        ("source", "callbacks"),
        sorted(figures.by_source.items()),
    )
    return [summary, sources]

"""Self-service figures: calls, menu choices, reports and transfers by local hour and day,
from the hourly rollups when they are exact, else from the events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.reporting import rollups
from ivr.reporting.measures import (
    PERSON_EVENTS,
    Filters,
    RollupClock,
    Table,
    clock_for,
    rollups_exact,
)
from ivr.store.db import seconds_between as seconds_between
from ivr.store.tables import self_service_events

# ------------------------------------------------------------------ self-service line


def _self_service_applies(program: ProgramConfig, filters: Filters) -> bool:
    """Self-service calls belong to the line's jurisdiction; another filter excludes them."""
    if filters.jurisdiction is None:
        return True
    return filters.jurisdiction == program.self_service_jurisdiction


@dataclass(frozen=True)
class SelfServiceFigures:
    """The self-service line over the range: calls, items chosen, transfers, resolutions."""

    calls: int
    resolved_without_person: int
    to_person: int
    events: dict[str, int]
    items: dict[str, int]
    transfers: dict[str, int]
    crisis_words: dict[str, int]
    languages: dict[str, int]
    calls_by_hour: dict[int, int]
    calls_by_weekday: dict[int, int]


def self_service_figures(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    *,
    direct: bool = False,
    refresh: bool = True,
) -> SelfServiceFigures:
    """Self-service calls (counted at their first event), items chosen and where calls went.

    From the hourly rollups when they are exact for the filters, else (or when `direct`)
    straight from the events.
    """
    empty = SelfServiceFigures(0, 0, 0, {}, {}, {}, {}, {}, {}, {})
    if not _self_service_applies(program, filters):
        return empty
    if not direct and rollups_exact(program, filters):
        return _self_service_from_rollups(engine, program, filters, refresh)
    ev = self_service_events
    clock = clock_for(engine, program, filters)
    in_range = sa.and_(ev.c.at >= filters.start, ev.c.at < filters.end)
    per_call = (
        sa.select(
            ev.c.call_sid,
            sa.func.min(ev.c.at).label("first_at"),
            sa.func.max(sa.case((ev.c.event.in_(PERSON_EVENTS), 1), else_=0)).label("person"),
        )
        .where(in_range)
        .group_by(ev.c.call_sid)
        .subquery()
    )
    first_at = per_call.c.first_at
    hour = clock.hour(first_at).label("hour")
    weekday = clock.weekday(first_at).label("weekday")
    call_where = []
    if filters.hours:
        call_where.append(clock.hour(first_at).in_(sorted(filters.hours)))
    if filters.weekdays:
        call_where.append(clock.weekday(first_at).in_(sorted(filters.weekdays)))
    event_where = clock.conditions(ev.c.at, filters)
    with engine.connect() as conn:
        call_rows = conn.execute(
            sa.select(hour, weekday, per_call.c.person, sa.func.count())
            .where(*call_where)
            .group_by(hour, weekday, per_call.c.person)
        ).all()
        event_rows = conn.execute(
            sa.select(ev.c.event, ev.c.detail, sa.func.count())
            .where(*event_where)
            .group_by(ev.c.event, ev.c.detail)
        ).all()
    calls = resolved = 0
    by_hour: dict[int, int] = defaultdict(int)
    by_weekday: dict[int, int] = defaultdict(int)
    for h, d, person, count in call_rows:
        calls += count
        if not person:
            resolved += count
        by_hour[int(h)] += count
        by_weekday[int(d)] += count
    return _self_service_figures(calls, resolved, by_hour, by_weekday, event_rows)


def _self_service_figures(
    calls: int,
    resolved: int,
    by_hour: Mapping[int, int],
    by_weekday: Mapping[int, int],
    event_rows: Iterable[Any],
) -> SelfServiceFigures:
    """The figures from call counts and (event, detail, count) rows, raw or rolled up."""
    events: dict[str, int] = defaultdict(int)
    by_detail: dict[str, dict[str, int]] = {
        name: defaultdict(int) for name in ("menu_item", "transfer", "crisis_words", "language")
    }
    for event, detail, count in event_rows:
        count = int(count)
        events[event] += count
        if detail and event in by_detail:
            by_detail[event][detail] += count
    return SelfServiceFigures(
        calls=calls,
        resolved_without_person=resolved,
        to_person=events.get("to_person", 0),
        events=dict(events),
        items=dict(by_detail["menu_item"]),
        transfers=dict(by_detail["transfer"]),
        crisis_words=dict(by_detail["crisis_words"]),
        languages=dict(by_detail["language"]),
        calls_by_hour=dict(by_hour),
        calls_by_weekday=dict(by_weekday),
    )


def self_service_tables(figures: SelfServiceFigures, item_labels: Mapping[str, str]) -> list[Table]:
    """The self-service figures as dashboard tables."""
    summary = Table(
        "self_service",
        "Self-service line",
        ("figure", "value"),
        [
            ("calls", figures.calls),
            ("resolved without a person", figures.resolved_without_person),
            ("sent to a 311 agent", figures.to_person),
            ("reports filed", figures.events.get("report_filed", 0)),
            ("report status checked", figures.events.get("status_checked", 0)),
            ("information sent by text", figures.events.get("info_sms", 0)),
            ("callbacks requested", figures.events.get("callback_requested", 0)),
            ("callbacks declined", figures.events.get("callback_declined", 0)),
            ("left the 311 queue for a callback", figures.events.get("queue_callback", 0)),
            ("re-asked until sent to a person", figures.events.get("attempts_exhausted", 0)),
        ],
        note="Calls are counted at their first recorded event.",
    )
    items = Table(
        "self_service_items",
        "Menu items chosen",
        ("item", "label", "times chosen"),
        [
            (item, item_labels.get(item, ""), count)
            for item, count in sorted(figures.items.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
    )
    lines = sorted(set(figures.transfers) | set(figures.crisis_words))
    transfers = Table(
        "self_service_transfers",
        "Self-service transfers by line",
        ("line", "transfers", "of which after crisis words"),
        [
            (line, figures.transfers.get(line, 0), figures.crisis_words.get(line, 0))
            for line in lines
        ],
    )
    return [summary, items, transfers]


def _self_service_from_rollups(
    engine: sa.Engine, program: ProgramConfig, filters: Filters, refresh: bool
) -> SelfServiceFigures:
    from ivr.store.report_tables import report_self_service_events as se
    from ivr.store.report_tables import report_self_service_hours as sh

    if refresh:
        rollups.refresh(engine)
    clock = RollupClock(program.zone, filters.start, filters.end)
    hour = clock.hour(sh.c.hour).label("local_hour")
    weekday = clock.weekday(sh.c.hour).label("local_weekday")
    with engine.connect() as conn:
        call_rows = conn.execute(
            sa.select(hour, weekday, sa.func.sum(sh.c.calls), sa.func.sum(sh.c.resolved))
            .where(*clock.conditions(sh.c.hour, filters))
            .group_by(hour, weekday)
        ).all()
        event_rows = conn.execute(
            sa.select(se.c.event, se.c.detail, sa.func.sum(se.c.count))
            .where(*clock.conditions(se.c.hour, filters))
            .group_by(se.c.event, se.c.detail)
        ).all()
    calls = resolved = 0
    by_hour: dict[int, int] = defaultdict(int)
    by_weekday: dict[int, int] = defaultdict(int)
    for hr, wd, n, r in call_rows:
        n, r = int(n or 0), int(r or 0)
        calls += n
        resolved += r
        if n:
            by_hour[int(hr)] += n
            by_weekday[int(wd)] += n
    return _self_service_figures(calls, resolved, by_hour, by_weekday, event_rows)

"""The figures programs report, computed in SQL aggregates for a date range and filters.

Every function takes an engine, the program config and a `Filters`, and returns `Table`s the
dashboard shows and exports as CSV. Hours of day and days of week are the program's local
time (config/program.yaml `timezone`), computed inside the query on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ivr.config.program import ProgramConfig
from ivr.store.tables import callbacks, self_service_events

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""Day names by weekday number (Monday = 0, as Python's `datetime.weekday()`)."""

PERSON_EVENTS = ("to_person", "transfer", "callback_requested", "queue_callback")
"""Self-service events after which a person took or will take the call."""

OPEN_CALLBACK_STATES = ("pending", "dialing")
"""Callback states that still owe the resident a call."""


@dataclass(frozen=True)
class Filters:
    """A date range [start, end) in UTC plus optional jurisdiction, helper type, hours, days."""

    start: datetime
    end: datetime
    jurisdiction: str | None = None
    helper_type: str | None = None
    hours: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("report range must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("report range must end after it starts")
        if any(h not in range(24) for h in self.hours):
            raise ValueError("hours must be 0-23")
        if any(d not in range(7) for d in self.weekdays):
            raise ValueError("weekdays must be 0 (Monday) - 6 (Sunday)")


@dataclass(frozen=True)
class Table:
    """One dashboard table: a name (used in CSV file names), a title, columns and rows."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    note: str = ""

    def as_dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def lookup(self, key: Any, column: str) -> Any:
        """The `column` value of the row whose first cell is `key` (None when absent)."""
        index = self.columns.index(column)
        for row in self.rows:
            if row[0] == key:
                return row[index]
        return None


# ------------------------------------------------------------------ local time in SQL


class LocalClock:
    """SQL expressions for the local hour and weekday of a UTC timestamp column.

    PostgreSQL converts with its own time zone database. SQLite has none, so the offsets in
    force during the report range (from Python's zoneinfo, DST transitions included) become a
    CASE over the stored UTC time, applied with strftime.
    """

    def __init__(self, dialect: str, zone: ZoneInfo, start: datetime, end: datetime) -> None:
        self.dialect = dialect
        self.zone = zone
        self.offsets = _offsets(zone, start, end)

    def _sqlite_modifier(self, col: ColumnElement[Any]) -> ColumnElement[str]:
        first_offset = self.offsets[0][1]
        if len(self.offsets) == 1:
            return sa.literal(f"{first_offset:+d} seconds")
        whens = []
        for (_, offset), (next_at, _) in zip(self.offsets, self.offsets[1:], strict=False):
            whens.append((col < next_at, f"{offset:+d} seconds"))
        return sa.case(*whens, else_=f"{self.offsets[-1][1]:+d} seconds")

    def hour(self, col: ColumnElement[Any]) -> ColumnElement[int]:
        """Local hour of day, 0-23."""
        if self.dialect == "postgresql":
            local = sa.func.timezone(self.zone.key, col)
            return sa.cast(sa.func.extract("hour", local), sa.Integer)
        return sa.cast(sa.func.strftime("%H", col, self._sqlite_modifier(col)), sa.Integer)

    def weekday(self, col: ColumnElement[Any]) -> ColumnElement[int]:
        """Local day of week, Monday = 0 ... Sunday = 6."""
        if self.dialect == "postgresql":
            local = sa.func.timezone(self.zone.key, col)
            return sa.cast(sa.func.extract("isodow", local), sa.Integer) - 1
        sunday_zero = sa.cast(sa.func.strftime("%w", col, self._sqlite_modifier(col)), sa.Integer)
        return (sunday_zero + 6) % 7

    def conditions(self, col: ColumnElement[Any], filters: Filters) -> list[ColumnElement[bool]]:
        """Range, hour and weekday conditions on `col`."""
        out: list[ColumnElement[bool]] = [col >= filters.start, col < filters.end]
        if filters.hours:
            out.append(self.hour(col).in_(sorted(filters.hours)))
        if filters.weekdays:
            out.append(self.weekday(col).in_(sorted(filters.weekdays)))
        return out


def _offset_at(zone: ZoneInfo, at: datetime) -> int:
    offset = at.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _offsets(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """(UTC instant, offset seconds) for each offset in force over [start, end), in order."""
    start = start.astimezone(UTC)
    end = end.astimezone(UTC)
    out = [(start, _offset_at(zone, start))]
    day = start
    while day < end:
        nxt = min(day + timedelta(days=1), end)
        if _offset_at(zone, nxt) != out[-1][1]:
            low, high = day, nxt  # the change lies in (low, high]: bisect to the second
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                if _offset_at(zone, mid) == out[-1][1]:
                    low = mid
                else:
                    high = mid
            out.append((high, _offset_at(zone, high)))
        day = nxt
    return out


def clock_for(engine: sa.Engine, program: ProgramConfig, filters: Filters) -> LocalClock:
    """The LocalClock for this database and report range."""
    return LocalClock(engine.dialect.name, program.zone, filters.start, filters.end)


# ------------------------------------------------------------------ percentiles


def percentile(histogram: Mapping[int, int], share: float) -> int | None:
    """Nearest-rank percentile of a {value: count} histogram (share 0.9 -> 90th percentile)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(share * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return max(histogram)


def median(histogram: Mapping[int, int]) -> float | None:
    """Median of a {value: count} histogram (mean of the two middle values for an even count)."""
    total = sum(histogram.values())
    if total == 0:
        return None
    values = sorted(histogram)
    positions = ((total - 1) // 2, total // 2)
    found: list[int] = []
    seen = 0
    for value in values:
        count = histogram[value]
        for pos in positions:
            if seen <= pos < seen + count:
                found.append(value)
        seen += count
    return sum(found) / len(found)


def share_within(histogram: Mapping[int, int], seconds: int) -> float | None:
    """Share (0-1) of values at or below `seconds`."""
    total = sum(histogram.values())
    if total == 0:
        return None
    return sum(c for v, c in histogram.items() if v <= seconds) / total


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
    engine: sa.Engine, program: ProgramConfig, filters: Filters
) -> SelfServiceFigures:
    """Self-service calls (counted at their first event), items chosen and where calls went."""
    empty = SelfServiceFigures(0, 0, 0, {}, {}, {}, {}, {}, {}, {})
    if not _self_service_applies(program, filters):
        return empty
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
    events: dict[str, int] = defaultdict(int)
    items: dict[str, int] = defaultdict(int)
    transfers: dict[str, int] = defaultdict(int)
    crisis: dict[str, int] = defaultdict(int)
    languages: dict[str, int] = defaultdict(int)
    for event, detail, count in event_rows:
        events[event] += count
        if event == "menu_item" and detail:
            items[detail] += count
        elif event == "transfer" and detail:
            transfers[detail] += count
        elif event == "crisis_words" and detail:
            crisis[detail] += count
        elif event == "language" and detail:
            languages[detail] += count
    return SelfServiceFigures(
        calls=calls,
        resolved_without_person=resolved,
        to_person=events.get("to_person", 0),
        events=dict(events),
        items=dict(items),
        transfers=dict(transfers),
        crisis_words=dict(crisis),
        languages=dict(languages),
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
    first_attempt_p90_minutes: int | None = None


def callback_figures(
    engine: sa.Engine, program: ProgramConfig, filters: Filters, now: datetime
) -> CallbackFigures:
    """Callbacks created in the range: open, done, failed, overdue (open past deadline)."""
    cb = callbacks
    clock = clock_for(engine, program, filters)
    where = [*clock.conditions(cb.c.created_at, filters), cb.c.status != "draft"]
    if filters.helper_type:
        where.append(cb.c.helper_type == filters.helper_type)
    overdue = sa.and_(cb.c.status.in_(OPEN_CALLBACK_STATES), cb.c.deadline_at < now)
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
    by_status: dict[str, int] = defaultdict(int)
    by_source: dict[str, int] = defaultdict(int)
    late = 0
    for status, source, count, overdue_count in rows:
        by_status[status] += count
        by_source[source] += count
        late += int(overdue_count or 0)
    return CallbackFigures(
        by_status=dict(by_status),
        by_source=dict(by_source),
        open=sum(by_status.get(s, 0) for s in OPEN_CALLBACK_STATES),
        done=by_status.get("done", 0),
        failed=by_status.get("failed", 0),
        overdue=late,
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


def _blank(value: Any) -> Any:
    return "" if value is None else value


def hour_rows(series: Iterable[Mapping[int, Any]], hours: Sequence[int] = range(24)) -> list:
    """Rows [hour, series values...] for each hour."""
    return [(h, *(s.get(h, 0) for s in series)) for h in hours]

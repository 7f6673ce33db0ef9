"""The figures programs report, computed in SQL aggregates for a date range and filters.

Every function takes an engine, the program config and a `Filters`, and returns `Table`s the
dashboard shows and exports as CSV. Hours of day and days of week are the program's local
time (config/program.yaml `timezone`), computed inside the query on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ivr.config.program import ProgramConfig
from ivr.reporting import rollups
from ivr.store.db import seconds_between as seconds_between
from ivr.store.tables import callbacks, self_service_events

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
"""Day names by weekday number (Monday = 0, as Python's `datetime.weekday()`)."""

PERSON_EVENTS = ("to_person", "transfer", "callback_requested", "queue_callback")
"""Self-service events after which a person took or will take the call."""

OPEN_CALLBACK_STATES = ("pending", "dialing")
"""Callback states that still owe the resident a call."""


@dataclass(frozen=True)
class Filters:
    """A date range [start, end) plus optional jurisdiction, helper type, hours, days.

    The range may be given in any zone; it is kept in UTC.
    """

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
        # SQLite stores and compares wall-clock text: every bound goes to SQL in UTC
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))


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
            # the change lies in (low, high]; zones change on whole seconds: find that second
            low, high = math.floor(day.timestamp()), math.ceil(nxt.timestamp())
            while high - low > 1:
                mid = (low + high) // 2
                if _offset_at(zone, datetime.fromtimestamp(mid, UTC)) == out[-1][1]:
                    low = mid
                else:
                    high = mid
            changed = datetime.fromtimestamp(high, UTC)
            out.append((changed, _offset_at(zone, changed)))
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


def _round_minutes(seconds: int | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


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


# ------------------------------------------------------------------ handoffs


HOTLINE_988 = "crisis_988"
"""The line (lines.yaml) and helper type (roster.yaml) of the regional 988 center."""

LINE_311 = "operator"
"""The self-service line that is a 311 person (besides the 311 agent queue)."""


@dataclass(frozen=True)
class HandoffFigures:
    """Handoffs requested in the range, by helper type, outcome, reason and local time."""

    requested: dict[str, int]
    connected: dict[str, int]
    no_helper: dict[str, int]
    outcomes: dict[str, int]
    outcomes_by_type: dict[tuple[str, str], int]
    diverted_calls: int
    answer_seconds: dict[str, dict[int, int]]
    duration_seconds: dict[str, dict[int, int]]
    by_hour: dict[int, dict[str, int]]
    by_weekday: dict[int, dict[str, int]]
    answer_by_hour: dict[int, dict[int, int]]
    jurisdiction_missing: bool = False

    def all_answers(self) -> dict[int, int]:
        """Answer-time histogram over every helper type."""
        return _merge(self.answer_seconds.values())

    def all_durations(self) -> dict[int, int]:
        """Call-duration histogram over every helper type."""
        return _merge(self.duration_seconds.values())


def _merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    out: dict[int, int] = defaultdict(int)
    for hist in histograms:
        for value, count in hist.items():
            out[value] += count
    return dict(out)


def _handoff_where(
    engine: sa.Engine, program: ProgramConfig, filters: Filters
) -> tuple[list[ColumnElement[bool]], LocalClock, bool]:
    from ivr.store.handoff_tables import handoffs

    clock = clock_for(engine, program, filters)
    where = clock.conditions(handoffs.c.created_at, filters)
    missing = False
    if filters.helper_type:
        where.append(handoffs.c.helper_type == filters.helper_type)
    if filters.jurisdiction:
        column = handoffs.c.get("jurisdiction")
        if column is None:
            missing = True  # handoffs do not record one: none can be said to belong to it
            where.append(sa.false())
        else:
            where.append(column == filters.jurisdiction)
    return where, clock, missing


def handoff_figures(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    *,
    direct: bool = False,
    refresh: bool = True,
) -> HandoffFigures:
    """Requested, connected (diverted), no-helper reasons, outcomes, answer times, durations.

    A call counts as diverted once, at its first handoff that reached a helper (of the
    filtered helper type, when there is one).
    """
    from ivr.store.handoff_tables import handoffs

    if not direct and rollups_exact(program, filters):
        return _handoff_figures_from_rollups(engine, program, filters, refresh)

    h = handoffs.c
    where, clock, missing = _handoff_where(engine, program, filters)
    hour = clock.hour(h.created_at).label("hour")
    weekday = clock.weekday(h.created_at).label("weekday")
    connected = sa.case((h.connected_at.is_not(None), 1), else_=0).label("connected")
    answer = seconds_between(engine, h.accepted_at, h.created_at).label("answer")
    duration = seconds_between(engine, h.ended_at, h.connected_at).label("duration")
    with engine.connect() as conn:
        main = conn.execute(
            sa.select(
                h.helper_type, h.outcome, h.reason_code, connected, hour, weekday, sa.func.count()
            )
            .where(*where)
            .group_by(h.helper_type, h.outcome, h.reason_code, connected, hour, weekday)
        ).all()
        answers = conn.execute(
            sa.select(h.helper_type, hour, answer, sa.func.count())
            .where(*where, h.accepted_at.is_not(None))
            .group_by(h.helper_type, hour, answer)
        ).all()
        durations = conn.execute(
            sa.select(h.helper_type, duration, sa.func.count())
            .where(*where, h.connected_at.is_not(None), h.ended_at.is_not(None))
            .group_by(h.helper_type, duration)
        ).all()
        diverted = conn.execute(
            sa.select(sa.func.count()).where(
                *where, rollups.first_connected(handoffs, per_type=bool(filters.helper_type))
            )
        ).scalar_one()
    requested: dict[str, int] = defaultdict(int)
    connected_by: dict[str, int] = defaultdict(int)
    no_helper: dict[str, int] = defaultdict(int)
    outcomes: dict[str, int] = defaultdict(int)
    outcomes_by_type: dict[tuple[str, str], int] = defaultdict(int)
    by_hour: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_weekday: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for helper_type, outcome, reason, is_connected, hr, wd, count in main:
        requested[helper_type] += count
        for bucket in (by_hour[int(hr)], by_weekday[int(wd)]):
            bucket["handoffs"] += count
        if is_connected:
            connected_by[helper_type] += count
            by_hour[int(hr)]["connected"] += count
            by_weekday[int(wd)]["connected"] += count
        elif reason:
            no_helper[reason] += count
            by_hour[int(hr)]["no_helper"] += count
            by_weekday[int(wd)]["no_helper"] += count
        if outcome:
            outcomes[outcome] += count
            outcomes_by_type[(helper_type, outcome)] += count
    answer_seconds: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    answer_by_hour: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for helper_type, hr, seconds, count in answers:
        value = max(int(seconds), 0)
        answer_seconds[helper_type][value] += count
        answer_by_hour[int(hr)][value] += count
    duration_seconds: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for helper_type, seconds, count in durations:
        duration_seconds[helper_type][max(int(seconds), 0)] += count
    return HandoffFigures(
        requested=dict(requested),
        connected=dict(connected_by),
        no_helper=dict(no_helper),
        outcomes=dict(outcomes),
        outcomes_by_type=dict(outcomes_by_type),
        diverted_calls=int(diverted or 0),
        answer_seconds={k: dict(v) for k, v in answer_seconds.items()},
        duration_seconds={k: dict(v) for k, v in duration_seconds.items()},
        by_hour={k: dict(v) for k, v in by_hour.items()},
        by_weekday={k: dict(v) for k, v in by_weekday.items()},
        answer_by_hour={k: dict(v) for k, v in answer_by_hour.items()},
        jurisdiction_missing=missing,
    )


# ------------------------------------------------------------------ the whole dashboard


@dataclass(frozen=True)
class Dashboard:
    """Every figure of the main dashboard view, as tables plus the series the charts draw."""

    tables: list[Table]
    handoffs: HandoffFigures
    self_service: SelfServiceFigures
    callbacks: CallbackFigures
    savings: float

    def table(self, name: str) -> Table:
        """The table called `name`."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


def _minutes(seconds: float | None) -> Any:
    return "" if seconds is None else round(seconds / 60, 1)


def _pct(share: float | None) -> Any:
    return "" if share is None else round(share * 100, 1)


def build_dashboard(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    now: datetime,
    item_labels: Mapping[str, str] | None = None,
) -> Dashboard:
    """Compute every figure of the main view for `filters`."""
    rollups.refresh(engine)  # once for both, not once each
    hf = handoff_figures(engine, program, filters, refresh=False)
    ss = self_service_figures(engine, program, filters, refresh=False)
    cb = callback_figures(engine, program, filters, now)
    savings = hf.diverted_calls * program.savings.per_avoided_dispatch
    targets = program.answer_targets
    jurisdiction_note = (
        "Handoffs do not record a jurisdiction yet: none are counted under this filter."
        if hf.jurisdiction_missing
        else ""
    )
    headline = Table(
        "summary",
        "Summary",
        ("figure", "value"),
        [
            ("calls diverted from dispatch (handoffs that reached a helper)", hf.diverted_calls),
            (
                f"estimated savings ({program.savings.currency}, "
                f"{program.savings.per_avoided_dispatch:g} per avoided dispatch)",
                round(savings, 2),
            ),
            ("handoffs requested", sum(hf.requested.values())),
            ("handoffs that found no helper", sum(hf.no_helper.values())),
            (
                "transfers to 988 (handoffs + self-service)",
                hf.connected.get(HOTLINE_988, 0) + ss.transfers.get(HOTLINE_988, 0),
            ),
            (
                "transfers to 311 (agent queue + operator line)",
                ss.to_person + ss.transfers.get(LINE_311, 0),
            ),
            ("self-service calls", ss.calls),
            ("self-service calls resolved without a person", ss.resolved_without_person),
            ("callbacks open", cb.open),
            ("callbacks overdue", cb.overdue),
        ],
        note=jurisdiction_note,
    )
    types = sorted(set(hf.requested) | set(hf.answer_seconds))
    by_type_rows = []
    for helper_type in [*types, "all"]:
        answers = (
            hf.all_answers() if helper_type == "all" else hf.answer_seconds.get(helper_type, {})
        )
        durations = (
            hf.all_durations() if helper_type == "all" else hf.duration_seconds.get(helper_type, {})
        )
        requested = (
            sum(hf.requested.values()) if helper_type == "all" else hf.requested.get(helper_type, 0)
        )
        connected = (
            sum(hf.connected.values()) if helper_type == "all" else hf.connected.get(helper_type, 0)
        )
        by_type_rows.append(
            (
                helper_type,
                requested,
                connected,
                _blank(median(answers)),
                _blank(percentile(answers, 0.9)),
                *(_pct(share_within(answers, t.within_seconds)) for t in targets),
                _minutes(median(durations)),
                _minutes(percentile(durations, 0.9)),
            )
        )
    helper_table = Table(
        "helper_types",
        "Handoffs by helper type: answer times and call durations",
        (
            "helper type",
            "requested",
            "reached a helper",
            "answer median s",
            "answer 90th pct s",
            *(f"% answered in {t.within_seconds} s (target {t.share * 100:g}%)" for t in targets),
            "duration median min",
            "duration 90th pct min",
        ),
        by_type_rows,
        note=jurisdiction_note,
    )
    no_helper = Table(
        "no_helper",
        "Handoffs that found no helper, by reason",
        ("reason", "handoffs"),
        sorted(hf.no_helper.items(), key=lambda kv: (-kv[1], kv[0])),
    )
    outcome_names = sorted(hf.outcomes)
    outcomes = Table(
        "outcomes",
        "Outcomes by helper type",
        ("helper type", *outcome_names, "total"),
        [
            (
                helper_type,
                *(hf.outcomes_by_type.get((helper_type, o), 0) for o in outcome_names),
                sum(hf.outcomes_by_type.get((helper_type, o), 0) for o in outcome_names),
            )
            for helper_type in types
        ]
        + [("all", *(hf.outcomes.get(o, 0) for o in outcome_names), sum(hf.outcomes.values()))],
    )
    hour_table = Table(
        "by_hour",
        "By hour of day (local time)",
        (
            "hour",
            "handoffs",
            "reached a helper",
            "found no helper",
            "answer median s",
            "self-service calls",
        ),
        [
            (
                hr,
                hf.by_hour.get(hr, {}).get("handoffs", 0),
                hf.by_hour.get(hr, {}).get("connected", 0),
                hf.by_hour.get(hr, {}).get("no_helper", 0),
                _blank(median(hf.answer_by_hour.get(hr, {}))),
                ss.calls_by_hour.get(hr, 0),
            )
            for hr in range(24)
        ],
    )
    weekday_table = Table(
        "by_weekday",
        "By day of week (local time)",
        ("day", "handoffs", "reached a helper", "found no helper", "self-service calls"),
        [
            (
                WEEKDAYS[wd],
                hf.by_weekday.get(wd, {}).get("handoffs", 0),
                hf.by_weekday.get(wd, {}).get("connected", 0),
                hf.by_weekday.get(wd, {}).get("no_helper", 0),
                ss.calls_by_weekday.get(wd, 0),
            )
            for wd in range(7)
        ],
    )
    tables = [headline, helper_table, no_helper, outcomes, hour_table, weekday_table]
    tables += self_service_tables(ss, item_labels or {})
    tables += callback_tables(cb)
    return Dashboard(tables=tables, handoffs=hf, self_service=ss, callbacks=cb, savings=savings)


# ------------------------------------------------------------------ handoff log and review facts


HANDOFF_LOG_COLUMNS = (
    "handoff_id",
    "created_at_utc",
    "local_time",
    "helper_type",
    "origin",
    "status",
    "reason_code",
    "attempt",
    "member_id",
    "call_taker_staff_id",
    "answer_seconds",
    "duration_seconds",
    "outcome",
    "outcome_by",
    "follow_up_at_utc",
    "callback_id",
)
"""Handoff log columns in a CSV export: no phone number, no free text."""

HANDOFF_NOTE_COLUMNS = ("handoff_reason_text", "outcome_note")
"""Free-text columns added only when the supervisor asks for notes."""


def handoff_log(
    engine: sa.Engine, program: ProgramConfig, filters: Filters, *, with_notes: bool = False
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """The handoffs in the filters, oldest first, as CSV columns and rows."""
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    where, _, _ = _handoff_where(engine, program, filters)
    answer = seconds_between(engine, h.accepted_at, h.created_at)
    duration = seconds_between(engine, h.ended_at, h.connected_at)
    columns = [
        h.id,
        h.created_at,
        h.helper_type,
        h.origin,
        h.status,
        h.reason_code,
        h.attempt,
        h.member_id,
        h.call_taker_staff_id,
        answer,
        duration,
        h.outcome,
        h.outcome_by,
        h.follow_up_at,
        h.callback_id,
    ]
    if with_notes:
        columns += [h.reason, h.outcome_note]
    zone = program.zone
    out: list[tuple[Any, ...]] = []
    with engine.connect() as conn:
        for row in conn.execute(sa.select(*columns).where(*where).order_by(h.created_at, h.id)):
            created = _utc(row[1])
            local = created.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %a") if created else ""
            follow = _utc(row[13])
            out.append(
                (
                    row[0],
                    created.isoformat() if created else "",
                    local,
                    *row[2:13],
                    follow.isoformat() if follow else "",
                    row[14],
                    *row[15:],
                )
            )
    names = HANDOFF_LOG_COLUMNS + (HANDOFF_NOTE_COLUMNS if with_notes else ())
    return names, out


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------ from the hourly rollups


def rollups_exact(program: ProgramConfig, filters: Filters) -> bool:
    """True when whole UTC hours map exactly onto the range and onto local hours and days:
    the range starts and ends on a whole hour, and over it the zone's offsets are whole hours
    that change on whole hours."""
    for edge in (filters.start, filters.end):
        if edge.astimezone(UTC).replace(minute=0, second=0, microsecond=0) != edge:
            return False
    offsets = _offsets(program.zone, filters.start, filters.end)
    return all(offset % 3600 == 0 for _, offset in offsets) and all(
        at.timestamp() % 3600 == 0 for at, _ in offsets[1:]
    )


class RollupClock:
    """SQL expressions for the local hour and weekday of a rollup hour (UTC hours since 1970).

    The offsets in force over the range (DST changes included) become a CASE over the hour
    number; the rest is integer arithmetic both databases do alike. Only for `rollups_exact`.
    """

    def __init__(self, zone: ZoneInfo, start: datetime, end: datetime) -> None:
        self.steps = [
            (rollups.hour_of(at), offset // 3600) for at, offset in _offsets(zone, start, end)
        ]

    def local(self, col: ColumnElement[int]) -> ColumnElement[int]:
        """Local hours since 1970-01-01 00:00 local."""
        if len(self.steps) == 1:
            return col + self.steps[0][1]
        whens = [
            (col < next_hour, offset)
            for (_, offset), (next_hour, _) in zip(self.steps, self.steps[1:], strict=False)
        ]
        return col + sa.case(*whens, else_=self.steps[-1][1])

    def hour(self, col: ColumnElement[int]) -> ColumnElement[int]:
        """Local hour of day, 0-23."""
        return self.local(col) % 24

    def weekday(self, col: ColumnElement[int]) -> ColumnElement[int]:
        """Local day of week, Monday = 0 (1970-01-01 was a Thursday)."""
        return (self.local(col) // 24 + 3) % 7

    def conditions(self, col: ColumnElement[int], filters: Filters) -> list[ColumnElement[bool]]:
        """Range, hour and weekday conditions on a rollup's hour column."""
        out: list[ColumnElement[bool]] = [
            col >= rollups.hour_of(filters.start),
            col < rollups.hour_of(filters.end),
        ]
        if filters.hours:
            out.append(self.hour(col).in_(sorted(filters.hours)))
        if filters.weekdays:
            out.append(self.weekday(col).in_(sorted(filters.weekdays)))
        return out


def _joined(engine: sa.Engine, col: ColumnElement[Any]) -> ColumnElement[str]:
    """The non-null values of a text column in a group, comma-separated (in any order)."""
    if engine.dialect.name == "postgresql":
        return sa.func.string_agg(col, sa.literal(",", sa.Text))
    return sa.func.group_concat(col, ",")


def _seconds(joined: Iterable[str | None]) -> Counter[int]:
    """A {seconds: count} histogram of stored lists of whole seconds."""
    return Counter({int(value): count for value, count in rollups.tally(joined).items()})


def _handoff_figures_from_rollups(
    engine: sa.Engine, program: ProgramConfig, filters: Filters, refresh: bool
) -> HandoffFigures:
    from ivr.store.report_tables import report_handoff_hours as rh

    if refresh:
        rollups.refresh(engine)
    clock = RollupClock(program.zone, filters.start, filters.end)
    where = [
        rh.c.jurisdiction == (filters.jurisdiction or rollups.ALL_JURISDICTIONS),
        *clock.conditions(rh.c.hour, filters),
    ]
    if filters.helper_type:
        where.append(rh.c.helper_type == filters.helper_type)
    hour = clock.hour(rh.c.hour).label("local_hour")
    weekday = clock.weekday(rh.c.hour).label("local_weekday")
    # one scan, grouped as the tables need (at most helper types x 24 x 7 groups)
    with engine.connect() as conn:
        groups = conn.execute(
            sa.select(
                rh.c.helper_type,
                hour,
                weekday,
                sa.func.sum(rh.c.requested),
                sa.func.sum(rh.c.connected),
                sa.func.sum(rh.c.no_helper),
                sa.func.sum(rh.c.diverted_type if filters.helper_type else rh.c.diverted_call),
                _joined(engine, rh.c.answers),
                _joined(engine, rh.c.durations),
                _joined(engine, rh.c.reasons),
                _joined(engine, rh.c.outcomes),
            )
            .where(*where)
            .group_by(rh.c.helper_type, hour, weekday)
        ).all()
    requested: dict[str, int] = defaultdict(int)
    connected: dict[str, int] = defaultdict(int)
    by_hour: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_weekday: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    answers_by_cell: dict[tuple[str, int], list[str | None]] = defaultdict(list)
    durations_by_type: dict[str, list[str | None]] = defaultdict(list)
    outcomes_by_type: dict[str, list[str | None]] = defaultdict(list)
    reasons: list[str | None] = []
    diverted = 0
    for helper_type, hr, wd, n, c, x, d, answers, durations, why, outcomes in groups:
        n, c, x = int(n or 0), int(c or 0), int(x or 0)
        requested[helper_type] += n
        if c:
            connected[helper_type] += c
        for bucket in (by_hour[int(hr)], by_weekday[int(wd)]):
            bucket["handoffs"] += n
            if c:
                bucket["connected"] += c
            if x:
                bucket["no_helper"] += x
        diverted += int(d or 0)
        answers_by_cell[(helper_type, int(hr))].append(answers)
        durations_by_type[helper_type].append(durations)
        outcomes_by_type[helper_type].append(outcomes)
        reasons.append(why)
    by_type_outcomes = {t: rollups.tally(joined) for t, joined in outcomes_by_type.items()}
    outcomes_total: Counter[str] = Counter()
    for counts in by_type_outcomes.values():
        outcomes_total.update(counts)
    answer_seconds: dict[str, Counter[int]] = defaultdict(Counter)
    answer_by_hour: dict[int, Counter[int]] = defaultdict(Counter)
    for (helper_type, hr), joined in answers_by_cell.items():
        hist = _seconds(joined)  # each list parsed once, then added up both ways
        answer_seconds[helper_type].update(hist)
        answer_by_hour[hr].update(hist)
    duration_seconds = {t: _seconds(joined) for t, joined in durations_by_type.items()}
    return HandoffFigures(
        requested={k: v for k, v in requested.items() if v},
        connected=dict(connected),
        no_helper=dict(rollups.tally(reasons)),
        outcomes=dict(outcomes_total),
        outcomes_by_type={
            (t, outcome): count
            for t, counts in by_type_outcomes.items()
            for outcome, count in counts.items()
        },
        diverted_calls=diverted,
        answer_seconds={k: dict(v) for k, v in answer_seconds.items() if v},
        duration_seconds={k: dict(v) for k, v in duration_seconds.items() if v},
        by_hour={k: dict(v) for k, v in by_hour.items()},
        by_weekday={k: dict(v) for k, v in by_weekday.items()},
        answer_by_hour={k: dict(v) for k, v in answer_by_hour.items() if v},
    )


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

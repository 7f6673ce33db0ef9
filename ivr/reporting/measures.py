"""What every figure is measured with: the filters, the program's local clock, percentiles and
shares, and when the hourly rollups answer exactly.
"""

from __future__ import annotations

import math
from collections import Counter
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


def _round_minutes(seconds: int | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _blank(value: Any) -> Any:
    return "" if value is None else value


# ------------------------------------------------------------------ handoffs


HOTLINE_988 = "crisis_988"
"""The line (lines.yaml) and helper type (roster.yaml) of the regional 988 center."""

LINE_311 = "operator"
"""The self-service line that is a 311 person (besides the 311 agent queue)."""


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

"""Hourly rollups of the dashboard figures, so a year-long view sums rows in SQL, not millions.

Each UTC hour holds, per helper type and jurisdiction (and once more over all jurisdictions,
under '*'), the handoff counts, the no-helper reasons and outcomes as narrow rows, and the
answer times and call durations as lists of whole seconds; for the self-service line its calls
and event counts. The dashboard lets the database sum the counts and concatenate the lists
(`ivr.reporting.figures`), so medians and percentiles stay exact. `refresh` recomputes only the hours
whose records changed since the last refresh (handoffs by `updated_at`, self-service events
by `at`, both re-read with a safety margin for transactions that commit late), from the same
SQL the direct path uses. A UTC hour maps to one local hour and weekday whenever the zone's
offsets over the range are whole hours changing on whole hours; `ivr.reporting.figures` uses the direct
queries otherwise.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ivr.reporting import rollup_spans
from ivr.store.report_tables import (
    report_handoff_hours,
    report_self_service_events,
    report_self_service_hours,
    report_watermarks,
)
from ivr.store.tables import self_service_events

HANDOFFS = "handoffs"
"""Rollup kind (watermark) of the handoff figures."""

SELF_SERVICE = "self_service"
"""Rollup kind (watermark) of the self-service line figures."""

ALL_JURISDICTIONS = "*"
"""jurisdiction of rows holding an hour's figures over every jurisdiction (and none)."""

NO_JURISDICTION = ""
"""jurisdiction of rows holding handoffs that recorded none."""

SAFETY_MARGIN = timedelta(minutes=15)
"""Records changed this long before the watermark are looked at again (late commits)."""

PERSON_EVENTS = ("to_person", "transfer", "callback_requested", "queue_callback")
"""Self-service events after which a person took or will take the call."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

TABLES = {
    HANDOFFS: (report_handoff_hours,),
    SELF_SERVICE: (report_self_service_hours, report_self_service_events),
}
"""The rollup tables of each kind (every one keyed by `hour`)."""


def bucket_expr(engine: sa.Engine, col: ColumnElement[Any]) -> ColumnElement[str]:
    """The UTC hour of a stored timestamp as 'YYYY-MM-DD HH'."""
    if engine.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", col), "YYYY-MM-DD HH24")
    return sa.func.substr(col, 1, 13)


def bucket_start(bucket: str) -> datetime:
    """The UTC instant an 'YYYY-MM-DD HH' bucket starts."""
    return datetime(
        int(bucket[0:4]), int(bucket[5:7]), int(bucket[8:10]), int(bucket[11:13]), tzinfo=UTC
    )


def hour_of(at: datetime) -> int:
    """Whole UTC hours from 1970-01-01 to an aware datetime (rounded down)."""
    return int((at.astimezone(UTC) - EPOCH).total_seconds() // 3600)


def hour_start(hour: int) -> datetime:
    """The UTC instant a rollup hour starts."""
    return EPOCH + timedelta(hours=hour)


def _hour_of_bucket(bucket: str) -> int:
    return hour_of(bucket_start(bucket))


def _ranges(hours: Iterable[int]) -> list[tuple[int, int]]:
    """Contiguous [first, last + 1) runs of the given hours."""
    out: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if out and out[-1][1] == hour:
            out[-1] = (out[-1][0], hour + 1)
        else:
            out.append((hour, hour + 1))
    return out


def _in_ranges(col: ColumnElement[Any], ranges: list[tuple[datetime, datetime]]) -> Any:
    return sa.or_(*(sa.and_(col >= lo, col < hi) for lo, hi in ranges))


def _watermark(conn: sa.Connection, kind: str) -> datetime | None:
    """The kind's watermark, its row locked until the refresh commits (PostgreSQL), so two
    refreshes at once fold the same change into the spans one after the other: the second
    then finds the hours rebuilt and adds nothing. (SQLite writes one at a time anyway.)"""
    value = conn.execute(
        sa.select(report_watermarks.c.seen_until)
        .where(report_watermarks.c.kind == kind)
        .with_for_update()
    ).scalar_one_or_none()
    return _utc(value)


def _set_watermark(conn: sa.Connection, kind: str, value: datetime) -> None:
    updated = conn.execute(
        report_watermarks.update().where(report_watermarks.c.kind == kind).values(seen_until=value)
    ).rowcount
    if not updated:
        conn.execute(report_watermarks.insert().values(kind=kind, seen_until=value))


RANGES_PER_QUERY = 100
"""Runs of changed hours rebuilt by one set of queries (SQLite limits an expression's depth)."""


def refresh(engine: sa.Engine) -> None:
    """Fold every changed record into the rollups (idempotent; safe to run concurrently)."""
    for kind, dirty_fn, build_fn in (
        (HANDOFFS, _dirty_handoff_hours, _handoff_rows),
        (SELF_SERVICE, _dirty_self_service_hours, _self_service_rows),
    ):
        try:
            with engine.begin() as conn:
                mark = _watermark(conn, kind)
                dirty, newest = dirty_fn(engine, conn, mark)
                if dirty and mark is None:  # the first build: every hour, in one pass
                    _rebuild(engine, conn, kind, build_fn, [(min(dirty), max(dirty) + 1)], None)
                elif dirty:
                    for batch in _chunks(_ranges(dirty), RANGES_PER_QUERY):
                        hours = [hour for lo, hi in batch for hour in range(lo, hi)]
                        _rebuild(engine, conn, kind, build_fn, batch, hours)
                if newest is not None and (mark is None or newest > mark):
                    _set_watermark(conn, kind, newest)
                elif mark is None:
                    _set_watermark(conn, kind, EPOCH)
        except sa.exc.IntegrityError:
            continue  # another refresh rebuilt the same hours at the same moment


def _rebuild(
    engine: sa.Engine,
    conn: sa.Connection,
    kind: str,
    build_fn: Any,
    runs: list[tuple[int, int]],
    hours: list[int] | None,
) -> None:
    """Replace the rows of the given runs of hours (`hours` None: every row of the kind)."""
    rows = build_fn(engine, conn, [(hour_start(lo), hour_start(hi)) for lo, hi in runs])
    if kind == HANDOFFS:  # the spans change by what the hours change: read the old first
        spans: Counter[rollup_spans.Key] = Counter()
        if hours is not None:
            _add_to_spans(spans, _stored_hours(conn, hours), sign=-1)
        _add_to_spans(spans, rows[report_handoff_hours.name], sign=1)
        if hours is None:
            rollup_spans.replace_all(conn, spans)
        else:
            rollup_spans.add(conn, spans)
    for table in TABLES[kind]:
        if hours is None:
            conn.execute(table.delete())
        else:
            for chunk in _chunks(hours, 500):
                conn.execute(table.delete().where(table.c.hour.in_(chunk)))
        if rows[table.name]:
            conn.execute(table.insert(), rows[table.name])


def _stored_hours(conn: sa.Connection, hours: list[int]) -> list[dict[str, Any]]:
    """The hourly handoff rows of these hours as they stand (before a rebuild)."""
    rh = report_handoff_hours
    out: list[dict[str, Any]] = []
    for chunk in _chunks(hours, 500):
        out += [
            dict(row._mapping)
            for row in conn.execute(
                sa.select(
                    rh.c.jurisdiction,
                    rh.c.hour,
                    rh.c.helper_type,
                    rh.c.answers,
                    rh.c.durations,
                    rh.c.reasons,
                    rh.c.outcomes,
                ).where(rh.c.hour.in_(chunk))
            )
        ]
    return out


def _add_to_spans(
    spans: Counter[rollup_spans.Key], hour_rows: Iterable[dict[str, Any]], sign: int
) -> None:
    for row in hour_rows:
        lists = {
            kind: tally([row[column]])
            for kind, column in (
                (rollup_spans.ANSWER, "answers"),
                (rollup_spans.DURATION, "durations"),
                (rollup_spans.REASON, "reasons"),
                (rollup_spans.OUTCOME, "outcomes"),
            )
            if row[column]
        }
        rollup_spans.add_hour(
            spans, row["jurisdiction"], row["hour"], row["helper_type"], lists, sign
        )


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stored_list(counts: Counter[int] | Counter[str]) -> str | None:
    """A {value: count} tally as the comma-separated list stored, each value repeated count
    times, '%' and ',' in names %-escaped (None when empty)."""
    if not counts:
        return None
    return ",".join(
        ",".join([_escape(str(value))] * count) for value, count in sorted(counts.items())
    )


def _escape(name: str) -> str:
    return name.replace("%", "%25").replace(",", "%2C") if "%" in name or "," in name else name


def tally(joined: Iterable[str | None]) -> Counter[str]:
    """{value: count} of stored lists (as concatenated by the database), names unescaped."""
    counts = Counter(",".join(j for j in joined if j).split(","))
    counts.pop("", None)
    if any("%" in key for key in counts):
        return Counter({unquote(key): count for key, count in counts.items()})
    return counts


# ------------------------------------------------------------------ handoffs


def _dirty_handoff_hours(
    engine: sa.Engine, conn: sa.Connection, mark: datetime | None
) -> tuple[set[int], datetime | None]:
    """Hours holding a handoff of any live call with a handoff changed since the watermark."""
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    newest = _utc(conn.execute(sa.select(sa.func.max(h.updated_at))).scalar_one())
    bucket = bucket_expr(engine, h.created_at)
    if mark is None:
        return {_hour_of_bucket(b) for (b,) in conn.execute(sa.select(bucket).distinct())}, newest
    # Two steps, each on an index: a semi-join here makes PostgreSQL scan the whole table.
    changed = sorted(
        {
            int(i)
            for (i,) in conn.execute(
                sa.select(h.live_call_id).where(h.updated_at > mark - SAFETY_MARGIN)
            )
        }
    )
    found: set[int] = set()
    for chunk in _chunks(changed, 500):
        found |= {
            _hour_of_bucket(b)
            for (b,) in conn.execute(sa.select(bucket).where(h.live_call_id.in_(chunk)).distinct())
        }
    return found, newest


def first_connected(alias_of: Any, per_type: bool) -> ColumnElement[bool]:
    """True for a connected handoff that is the first connected one of its call (per type)."""
    from ivr.store.handoff_tables import handoffs

    other = handoffs.alias("earlier")
    conditions = [
        other.c.live_call_id == alias_of.c.live_call_id,
        other.c.connected_at.is_not(None),
        sa.or_(
            other.c.created_at < alias_of.c.created_at,
            sa.and_(other.c.created_at == alias_of.c.created_at, other.c.id < alias_of.c.id),
        ),
    ]
    if per_type:
        conditions.append(other.c.helper_type == alias_of.c.helper_type)
    return sa.and_(
        alias_of.c.connected_at.is_not(None), ~sa.exists(sa.select(other.c.id).where(*conditions))
    )


@dataclass
class _HourFigures:
    """One hour's handoff figures of one helper type in one jurisdiction, while building."""

    requested: int = 0
    connected: int = 0
    no_helper: int = 0
    diverted_type: int = 0
    diverted_call: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    durations: Counter[int] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, other: _HourFigures) -> None:
        """Add another cell's figures to these (to build the all-jurisdictions rows)."""
        self.requested += other.requested
        self.connected += other.connected
        self.no_helper += other.no_helper
        self.diverted_type += other.diverted_type
        self.diverted_call += other.diverted_call
        self.answers.update(other.answers)
        self.durations.update(other.durations)
        self.reasons.update(other.reasons)
        self.outcomes.update(other.outcomes)


def _handoff_rows(
    engine: sa.Engine, conn: sa.Connection, ranges: list[tuple[datetime, datetime]]
) -> dict[str, list[dict[str, Any]]]:
    from ivr.store.db import seconds_between
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    where = _in_ranges(h.created_at, ranges)
    bucket = bucket_expr(engine, h.created_at).label("bucket")
    place = sa.func.coalesce(h.jurisdiction, NO_JURISDICTION).label("place")
    connected = sa.case((h.connected_at.is_not(None), 1), else_=0).label("connected")
    answer = seconds_between(engine, h.accepted_at, h.created_at).label("answer")
    duration = seconds_between(engine, h.ended_at, h.connected_at).label("duration")
    cells: dict[tuple[int, str, str], _HourFigures] = defaultdict(_HourFigures)
    for b, juris, helper_type, is_connected, reason, outcome, count in conn.execute(
        sa.select(
            bucket, place, h.helper_type, connected, h.reason_code, h.outcome, sa.func.count()
        )
        .where(where)
        .group_by(bucket, place, h.helper_type, connected, h.reason_code, h.outcome)
    ):
        f = cells[(_hour_of_bucket(b), juris, helper_type)]
        f.requested += count
        if is_connected:
            f.connected += count
        elif reason:
            f.no_helper += count
            f.reasons[reason] += count
        if outcome:
            f.outcomes[outcome] += count
    for b, juris, helper_type, seconds, count in conn.execute(
        sa.select(bucket, place, h.helper_type, answer, sa.func.count())
        .where(where, h.accepted_at.is_not(None))
        .group_by(bucket, place, h.helper_type, answer)
    ):
        cells[(_hour_of_bucket(b), juris, helper_type)].answers[max(int(seconds), 0)] += count
    for b, juris, helper_type, seconds, count in conn.execute(
        sa.select(bucket, place, h.helper_type, duration, sa.func.count())
        .where(where, h.connected_at.is_not(None), h.ended_at.is_not(None))
        .group_by(bucket, place, h.helper_type, duration)
    ):
        cells[(_hour_of_bucket(b), juris, helper_type)].durations[max(int(seconds), 0)] += count
    this = handoffs.alias("this")
    this_bucket = bucket_expr(engine, this.c.created_at).label("bucket")
    this_place = sa.func.coalesce(this.c.jurisdiction, NO_JURISDICTION).label("place")
    this_where = _in_ranges(this.c.created_at, ranges)
    for per_type in (True, False):
        for b, juris, helper_type, count in conn.execute(
            sa.select(this_bucket, this_place, this.c.helper_type, sa.func.count())
            .where(this_where, first_connected(this, per_type=per_type))
            .group_by(this_bucket, this_place, this.c.helper_type)
        ):
            f = cells[(_hour_of_bucket(b), juris, helper_type)]
            if per_type:
                f.diverted_type += count
            else:
                f.diverted_call += count
    everywhere: dict[tuple[int, str, str], _HourFigures] = defaultdict(_HourFigures)
    for (hour, _, helper_type), f in cells.items():
        everywhere[(hour, ALL_JURISDICTIONS, helper_type)].add(f)
    return {
        report_handoff_hours.name: [
            {
                "jurisdiction": juris,
                "hour": hour,
                "helper_type": helper_type,
                "requested": f.requested,
                "connected": f.connected,
                "no_helper": f.no_helper,
                "diverted_type": f.diverted_type,
                "diverted_call": f.diverted_call,
                "answers": stored_list(f.answers),
                "durations": stored_list(f.durations),
                "reasons": stored_list(f.reasons),
                "outcomes": stored_list(f.outcomes),
            }
            for (hour, juris, helper_type), f in [*cells.items(), *everywhere.items()]
        ]
    }


# ------------------------------------------------------------------ self-service line


def _dirty_self_service_hours(
    engine: sa.Engine, conn: sa.Connection, mark: datetime | None
) -> tuple[set[int], datetime | None]:
    """Hours holding an event of any call with an event since the watermark."""
    ev = self_service_events.c
    newest = _utc(conn.execute(sa.select(sa.func.max(ev.at))).scalar_one())
    bucket = bucket_expr(engine, ev.at)
    if mark is None:
        return {_hour_of_bucket(b) for (b,) in conn.execute(sa.select(bucket).distinct())}, newest
    changed = sorted(
        {
            str(c)
            for (c,) in conn.execute(sa.select(ev.call_sid).where(ev.at > mark - SAFETY_MARGIN))
        }
    )
    found: set[int] = set()
    for chunk in _chunks(changed, 500):
        found |= {
            _hour_of_bucket(b)
            for (b,) in conn.execute(sa.select(bucket).where(ev.call_sid.in_(chunk)).distinct())
        }
    return found, newest


def _self_service_rows(
    engine: sa.Engine, conn: sa.Connection, ranges: list[tuple[datetime, datetime]]
) -> dict[str, list[dict[str, Any]]]:
    ev = self_service_events
    bucket = bucket_expr(engine, ev.c.at).label("bucket")
    detail = sa.func.coalesce(ev.c.detail, "").label("detail")
    events = [
        {"hour": _hour_of_bucket(b), "event": event, "detail": d, "count": count}
        for b, event, d, count in conn.execute(
            sa.select(bucket, ev.c.event, detail, sa.func.count())
            .where(_in_ranges(ev.c.at, ranges))
            .group_by(bucket, ev.c.event, detail)
        )
    ]
    # calls count in the hour of their first event; their other events may lie elsewhere
    calls_here = sa.select(ev.c.call_sid).where(_in_ranges(ev.c.at, ranges)).distinct()
    per_call = (
        sa.select(
            sa.func.min(ev.c.at).label("first_at"),
            sa.func.max(sa.case((ev.c.event.in_(PERSON_EVENTS), 1), else_=0)).label("person"),
        )
        .where(ev.c.call_sid.in_(calls_here))
        .group_by(ev.c.call_sid)
        .subquery()
    )
    first_bucket = bucket_expr(engine, per_call.c.first_at).label("bucket")
    wanted = {hour for lo, hi in ranges for hour in range(hour_of(lo), hour_of(hi))}
    calls: dict[int, dict[str, int]] = defaultdict(lambda: {"calls": 0, "resolved": 0})
    for b, person, count in conn.execute(
        sa.select(first_bucket, per_call.c.person, sa.func.count()).group_by(
            first_bucket, per_call.c.person
        )
    ):
        hour = _hour_of_bucket(b)
        if hour not in wanted:
            continue  # that hour is not being rebuilt; its own row already counts the call
        calls[hour]["calls"] += count
        if not person:
            calls[hour]["resolved"] += count
    return {
        report_self_service_hours.name: [{"hour": h, **f} for h, f in calls.items()],
        report_self_service_events.name: events,
    }

"""Hourly rollups of the dashboard figures, so a year-long view reads ~9,000 rows, not millions.

Each UTC hour holds, per helper type, the handoff counts and histograms the dashboard needs,
and for the self-service line its calls and event counts. `refresh` recomputes only the hours
whose records changed since the last view (handoffs by `updated_at`, self-service events by
`at`, both re-read with a safety margin for transactions that commit late), from the same
SQL the direct path uses. Hours map to local hours and weekdays in Python, which is exact
whenever the zone's offsets over the range are whole hours; `ivr.reports` uses the direct
queries otherwise.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ivr.store.report_tables import report_buckets, report_watermarks
from ivr.store.tables import self_service_events

HANDOFFS = "handoffs"
"""Rollup kind of the handoff figures."""

SELF_SERVICE = "self_service"
"""Rollup kind of the self-service line figures."""

ALL_TYPES = "*"
"""helper_type of rows holding figures over all helper types (calls diverted)."""

SAFETY_MARGIN = timedelta(minutes=15)
"""Records changed this long before the watermark are looked at again (late commits)."""

PERSON_EVENTS = ("to_person", "transfer", "callback_requested", "queue_callback")
"""Self-service events after which a person took or will take the call."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bucket_expr(engine: sa.Engine, col: ColumnElement[Any]) -> ColumnElement[str]:
    """The UTC hour of a stored timestamp as 'YYYY-MM-DD HH'."""
    if engine.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", col), "YYYY-MM-DD HH24")
    return sa.func.substr(col, 1, 13)


def bucket_of(at: datetime) -> str:
    """'YYYY-MM-DD HH' of an aware datetime, in UTC."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H")


def bucket_start(bucket: str) -> datetime:
    """The UTC instant an hour bucket starts."""
    return datetime(
        int(bucket[0:4]), int(bucket[5:7]), int(bucket[8:10]), int(bucket[11:13]), tzinfo=UTC
    )


def _ranges(buckets: Iterable[str]) -> list[tuple[datetime, datetime]]:
    """Contiguous [start, end) UTC ranges covering the given hour buckets."""
    out: list[tuple[datetime, datetime]] = []
    for bucket in sorted(set(buckets)):
        start = bucket_start(bucket)
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], start + timedelta(hours=1))
        else:
            out.append((start, start + timedelta(hours=1)))
    return out


def _in_ranges(col: ColumnElement[Any], ranges: list[tuple[datetime, datetime]]) -> Any:
    return sa.or_(*(sa.and_(col >= lo, col < hi) for lo, hi in ranges))


def _watermark(conn: sa.Connection, kind: str) -> datetime | None:
    value = conn.execute(
        sa.select(report_watermarks.c.seen_until).where(report_watermarks.c.kind == kind)
    ).scalar_one_or_none()
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _set_watermark(conn: sa.Connection, kind: str, value: datetime) -> None:
    updated = conn.execute(
        report_watermarks.update().where(report_watermarks.c.kind == kind).values(seen_until=value)
    ).rowcount
    if not updated:
        conn.execute(report_watermarks.insert().values(kind=kind, seen_until=value))


def refresh(engine: sa.Engine) -> None:
    """Fold every changed record into the rollups (idempotent; safe to run concurrently)."""
    for kind, dirty_fn, build_fn in (
        (HANDOFFS, _dirty_handoff_buckets, _handoff_rows),
        (SELF_SERVICE, _dirty_self_service_buckets, _self_service_rows),
    ):
        try:
            with engine.begin() as conn:
                mark = _watermark(conn, kind)
                dirty, newest = dirty_fn(engine, conn, mark)
                if dirty:
                    rows = build_fn(engine, conn, _ranges(dirty))
                    for chunk in _chunks(sorted(dirty), 500):
                        conn.execute(
                            report_buckets.delete().where(
                                report_buckets.c.kind == kind, report_buckets.c.bucket.in_(chunk)
                            )
                        )
                    if rows:
                        conn.execute(report_buckets.insert(), rows)
                if newest is not None and (mark is None or newest > mark):
                    _set_watermark(conn, kind, newest)
                elif mark is None:
                    _set_watermark(conn, kind, EPOCH)
        except sa.exc.IntegrityError:
            continue  # another view refreshed the same hours at the same moment


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _utc(value: Any) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------ handoffs


def _dirty_handoff_buckets(
    engine: sa.Engine, conn: sa.Connection, mark: datetime | None
) -> tuple[set[str], datetime | None]:
    """Hours holding a handoff of any live call with a handoff changed since the watermark."""
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    newest = _utc(conn.execute(sa.select(sa.func.max(h.updated_at))).scalar_one())
    bucket = bucket_expr(engine, h.created_at)
    if mark is None:
        return {str(b) for (b,) in conn.execute(sa.select(bucket).distinct())}, newest
    # Two steps, each on an index: a semi-join here makes PostgreSQL scan the whole table.
    changed = sorted(
        {
            int(i)
            for (i,) in conn.execute(
                sa.select(h.live_call_id).where(h.updated_at > mark - SAFETY_MARGIN)
            )
        }
    )
    found: set[str] = set()
    for chunk in _chunks(changed, 500):
        found |= {
            str(b)
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


def _handoff_rows(
    engine: sa.Engine, conn: sa.Connection, ranges: list[tuple[datetime, datetime]]
) -> list[dict[str, Any]]:
    from ivr.reports import seconds_between
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    where = _in_ranges(h.created_at, ranges)
    bucket = bucket_expr(engine, h.created_at).label("bucket")
    connected = sa.case((h.connected_at.is_not(None), 1), else_=0).label("connected")
    answer = seconds_between(engine, h.accepted_at, h.created_at).label("answer")
    duration = seconds_between(engine, h.ended_at, h.connected_at).label("duration")
    figures: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "c": 0, "d": 0, "r": {}, "o": {}, "a": {}, "u": {}}
    )
    for b, helper_type, is_connected, reason, outcome, count in conn.execute(
        sa.select(bucket, h.helper_type, connected, h.reason_code, h.outcome, sa.func.count())
        .where(where)
        .group_by(bucket, h.helper_type, connected, h.reason_code, h.outcome)
    ):
        f = figures[(b, helper_type)]
        f["n"] += count
        if is_connected:
            f["c"] += count
        elif reason:
            f["r"][reason] = f["r"].get(reason, 0) + count
        if outcome:
            f["o"][outcome] = f["o"].get(outcome, 0) + count
    for b, helper_type, seconds, count in conn.execute(
        sa.select(bucket, h.helper_type, answer, sa.func.count())
        .where(where, h.accepted_at.is_not(None))
        .group_by(bucket, h.helper_type, answer)
    ):
        hist = figures[(b, helper_type)]["a"]
        key = str(max(int(seconds), 0))
        hist[key] = hist.get(key, 0) + count
    for b, helper_type, seconds, count in conn.execute(
        sa.select(bucket, h.helper_type, duration, sa.func.count())
        .where(where, h.connected_at.is_not(None), h.ended_at.is_not(None))
        .group_by(bucket, h.helper_type, duration)
    ):
        hist = figures[(b, helper_type)]["u"]
        key = str(max(int(seconds), 0))
        hist[key] = hist.get(key, 0) + count
    this = handoffs.alias("this")
    this_bucket = bucket_expr(engine, this.c.created_at).label("bucket")
    this_where = _in_ranges(this.c.created_at, ranges)
    for b, helper_type, count in conn.execute(
        sa.select(this_bucket, this.c.helper_type, sa.func.count())
        .where(this_where, first_connected(this, per_type=True))
        .group_by(this_bucket, this.c.helper_type)
    ):
        figures[(b, helper_type)]["d"] += count
    for b, count in conn.execute(
        sa.select(this_bucket, sa.func.count())
        .where(this_where, first_connected(this, per_type=False))
        .group_by(this_bucket)
    ):
        figures[(b, ALL_TYPES)]["d"] += count
    per_hour: dict[str, dict[str, Any]] = defaultdict(dict)
    for (b, t), f in figures.items():
        per_hour[b][t] = f
    return [
        {"kind": HANDOFFS, "bucket": b, "helper_type": "", "data": json.dumps(types)}
        for b, types in per_hour.items()
    ]


# ------------------------------------------------------------------ self-service line


def _dirty_self_service_buckets(
    engine: sa.Engine, conn: sa.Connection, mark: datetime | None
) -> tuple[set[str], datetime | None]:
    """Hours holding an event of any call with an event since the watermark."""
    ev = self_service_events.c
    newest = _utc(conn.execute(sa.select(sa.func.max(ev.at))).scalar_one())
    bucket = bucket_expr(engine, ev.at)
    if mark is None:
        return {str(b) for (b,) in conn.execute(sa.select(bucket).distinct())}, newest
    changed = sorted(
        {
            str(c)
            for (c,) in conn.execute(sa.select(ev.call_sid).where(ev.at > mark - SAFETY_MARGIN))
        }
    )
    found: set[str] = set()
    for chunk in _chunks(changed, 500):
        found |= {
            str(b)
            for (b,) in conn.execute(sa.select(bucket).where(ev.call_sid.in_(chunk)).distinct())
        }
    return found, newest


def _self_service_rows(
    engine: sa.Engine, conn: sa.Connection, ranges: list[tuple[datetime, datetime]]
) -> list[dict[str, Any]]:
    ev = self_service_events
    figures: dict[str, dict[str, Any]] = defaultdict(lambda: {"calls": 0, "resolved": 0, "ev": {}})
    bucket = bucket_expr(engine, ev.c.at).label("bucket")
    for b, event, detail, count in conn.execute(
        sa.select(bucket, ev.c.event, ev.c.detail, sa.func.count())
        .where(_in_ranges(ev.c.at, ranges))
        .group_by(bucket, ev.c.event, ev.c.detail)
    ):
        key = f"{event}\t{detail or ''}"
        figures[b]["ev"][key] = figures[b]["ev"].get(key, 0) + count
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
    wanted = {
        bucket_of(lo + timedelta(hours=i))
        for lo, hi in ranges
        for i in range(int((hi - lo).total_seconds() // 3600))
    }
    for b, person, count in conn.execute(
        sa.select(first_bucket, per_call.c.person, sa.func.count()).group_by(
            first_bucket, per_call.c.person
        )
    ):
        if b not in wanted:
            continue  # that hour is not being rebuilt; its own row already counts the call
        figures[b]["calls"] += count
        if not person:
            figures[b]["resolved"] += count
    return [
        {"kind": SELF_SERVICE, "bucket": b, "helper_type": "", "data": json.dumps(f)}
        for b, f in figures.items()
    ]


# ------------------------------------------------------------------ reading


def read(
    engine: sa.Engine, kind: str, start: datetime, end: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    """(hour start, figures) of every stored hour in [start, end), one row per hour.

    Handoff figures are keyed by helper type (and ALL_TYPES); self-service figures are flat.
    """
    rb = report_buckets.c
    where = [rb.kind == kind, rb.bucket >= bucket_of(start), rb.bucket < bucket_of(end)]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(rb.bucket, rb.data).where(*where)).all()
    return [(bucket_start(b), json.loads(d)) for b, d in rows]

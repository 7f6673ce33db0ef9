"""The handoff histograms of the rollups summed over spans of 8 and 64 days, kept current.

The hourly rows (`ivr.reporting.rollups`) keep one list entry per handoff, so a year's view
at 10,000,000 events would count millions of entries. The spans hold the same histograms as
(value, count) rows over whole spans of UTC hours: answer seconds and durations per helper
type, reasons and outcomes, and answer seconds by UTC hour of day (per type and over all).
Each refresh adds the change of every hour it rebuilds (new hour minus old hour) to the spans
holding that hour, so the spans always equal the sum of their hours. A view covers its range
with whole spans, each inside one stretch of constant UTC offset (so the UTC hour of day
maps to one local hour), and reads the hourly lists only at the edges.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice, pairwise
from typing import Any

import sqlalchemy as sa

from ivr.store.report_tables import report_handoff_spans

SPANS = (1536, 192)
"""Hours per span, longest first (64 and 8 days); each span starts on a multiple of its size."""

ALL_TYPES = "*"
"""helper_type of the rows of kind ANSWER_BY_HOUR, which count every helper type."""

ANSWER = "a"
"""Answer seconds per helper type."""
ANSWER_BY_HOUR = "A"
"""Answer seconds by UTC hour of day, over every helper type."""
ANSWER_BY_HOUR_OF_TYPE = "T"
"""Answer seconds by UTC hour of day per helper type (read when the view picks one)."""
DURATION = "d"
REASON = "r"
OUTCOME = "o"
BY_HOUR = (ANSWER_BY_HOUR, ANSWER_BY_HOUR_OF_TYPE)
NO_HOUR = -1
"""utc_hour of the kinds not by hour."""

Key = tuple[int, int, str, str, str, int, str]
"""(span, start, jurisdiction, kind, helper_type, utc_hour, value): one span row's key."""


def add_hour(
    out: Counter[Key],
    jurisdiction: str,
    hour: int,
    helper_type: str,
    lists: Mapping[str, Mapping[str, int]],
    sign: int = 1,
) -> None:
    """Add (sign 1) or take away (sign -1) one hourly row's histograms, given as
    {kind: {value: count}} for ANSWER, DURATION, REASON and OUTCOME, to every span holding
    the hour."""
    utc_hour = hour % 24
    for span in SPANS:
        start = hour - hour % span
        for kind, counts in lists.items():
            for value, count in counts.items():
                out[(span, start, jurisdiction, kind, helper_type, NO_HOUR, value)] += sign * count
                if kind == ANSWER:
                    for key in (
                        (span, start, jurisdiction, ANSWER_BY_HOUR, ALL_TYPES, utc_hour, value),
                        (
                            span,
                            start,
                            jurisdiction,
                            ANSWER_BY_HOUR_OF_TYPE,
                            helper_type,
                            utc_hour,
                            value,
                        ),
                    ):
                        out[key] += sign * count


def _rows(counts: Iterable[tuple[Key, int]]) -> Iterator[dict[str, Any]]:
    return (
        {
            "span": span,
            "start": start,
            "jurisdiction": jurisdiction,
            "helper_type": helper_type,
            "kind": kind,
            "utc_hour": utc_hour,
            "value": value,
            "count": count,
        }
        for (span, start, jurisdiction, kind, helper_type, utc_hour, value), count in counts
        if count
    )


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while batch := list(islice(rows, size)):
        yield batch


def replace_all(conn: sa.Connection, counts: Mapping[Key, int]) -> None:
    """Every span row anew (the first build, from every hour)."""
    conn.execute(report_handoff_spans.delete())
    # in key order, so each span's rows lie together on disk (PostgreSQL keeps insertion
    # order): a year's view then reads ~1,000 pages instead of ~4,500
    for batch in _batches(_rows(sorted(counts.items())), 20_000):
        conn.execute(report_handoff_spans.insert(), batch)
    if conn.dialect.name == "postgresql":  # the first views plan with the real row counts
        conn.exec_driver_sql("ANALYZE report_handoff_spans")


def add(conn: sa.Connection, change: Mapping[Key, int]) -> None:
    """Add a change (counts may be negative) to the span rows; rows that reach 0 go."""
    rows = list(_rows(change.items()))
    if not rows:
        return
    t = report_handoff_spans
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(t)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(t)
    statement = statement.on_conflict_do_update(
        index_elements=[c for c in t.primary_key.columns],
        set_={"count": t.c["count"] + statement.excluded["count"]},
    )
    for index in range(0, len(rows), 10_000):
        conn.execute(statement, rows[index : index + 10_000])
    touched = sorted({(row["span"], row["start"]) for row in rows})
    for span, start in touched:
        conn.execute(t.delete().where(t.c.span == span, t.c.start == start, t.c["count"] <= 0))


def plan(
    steps: list[tuple[int, int]], first: int, last: int
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """How to read the hours [first, last): the whole spans inside it that lie within one
    stretch of constant offset, as (span, start, offset hours), and the runs of hours left
    over, [lo, hi), for the hourly rows. `steps` are (first hour, offset hours) of each
    offset in force, in order (as `RollupClock.steps`)."""
    bounds = [first, *(hour for hour, _ in steps[1:] if first < hour < last), last]
    blocks: list[tuple[int, int, int]] = []
    edges: list[tuple[int, int]] = []
    for lo, hi in pairwise(bounds):
        offset = _offset_at(steps, lo)
        at = lo
        while at < hi:
            for span in SPANS:
                if at % span == 0 and at + span <= hi:
                    blocks.append((span, at, offset))
                    at += span
                    break
            else:
                step = SPANS[-1]
                nxt = min(hi, (at // step + 1) * step)
                if edges and edges[-1][1] == at:
                    edges[-1] = (edges[-1][0], nxt)
                else:
                    edges.append((at, nxt))
                at = nxt
    return blocks, edges


def _offset_at(steps: list[tuple[int, int]], hour: int) -> int:
    offset = steps[0][1]
    for start, value in steps:
        if start <= hour:
            offset = value
    return offset


def read(
    conn: sa.Connection,
    blocks: Iterable[tuple[int, int, int]],
    jurisdiction: str,
    helper_type: str | None,
) -> list[tuple[str, str, int, str, int]]:
    """The spans' histograms summed: (helper_type, kind, local hour or -1, value, count), the
    kinds by hour given as ANSWER_BY_HOUR.

    Answers by hour are of `helper_type` when given, else over all types; their UTC hour of
    day becomes the local one with each span's offset."""
    t = report_handoff_spans
    blocks = list(blocks)
    if not blocks:
        return []
    by_span: dict[int, list[int]] = {}
    for span, start, _ in blocks:
        by_span.setdefault(span, []).append(start)
    offsets = sorted({offset for _, _, offset in blocks})
    if len(offsets) == 1:
        offset: Any = sa.literal(offsets[0])
    else:
        offset = sa.case(
            *(
                (sa.and_(t.c.span == span, t.c.start == start), value)
                for span, start, value in blocks
            ),
            else_=0,
        )
    local_hour = sa.case(
        (t.c.kind.in_(BY_HOUR), (t.c.utc_hour + offset + 48) % 24), else_=NO_HOUR
    ).label("local_hour")
    where = [
        t.c.jurisdiction == jurisdiction,
        sa.or_(
            *(sa.and_(t.c.span == span, t.c.start.in_(starts)) for span, starts in by_span.items())
        ),
    ]
    if helper_type:
        kinds = (ANSWER, ANSWER_BY_HOUR_OF_TYPE, DURATION, REASON, OUTCOME)
        where += [t.c.kind.in_(kinds), t.c.helper_type == helper_type]
    else:
        where.append(t.c.kind.in_((ANSWER, ANSWER_BY_HOUR, DURATION, REASON, OUTCOME)))
    query = (
        sa.select(t.c.helper_type, t.c.kind, local_hour, t.c.value, sa.func.sum(t.c["count"]))
        .where(*where)
        .group_by(t.c.helper_type, t.c.kind, local_hour, t.c.value)
    )
    return [
        (str(who), ANSWER_BY_HOUR if kind in BY_HOUR else str(kind), int(hour), str(value), int(n))
        for who, kind, hour, value, n in conn.execute(query)
    ]

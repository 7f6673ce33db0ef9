"""Handoff figures: requested, connected, no helper, outcomes, answer and talk times by type."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ivr.config.program import ProgramConfig
from ivr.reporting import rollup_spans, rollups
from ivr.reporting.measures import (
    Filters,
    LocalClock,
    RollupClock,
    _joined,
    _seconds,
    clock_for,
    rollups_exact,
)
from ivr.store.db import seconds_between as seconds_between


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
    # Without an hour or weekday filter the histograms come from whole 8- and 64-day spans,
    # and from the hourly lists only at the range's edges (and around an offset change).
    blocks: list[tuple[int, int, int]] = []
    lists_where = list(where)
    if not filters.hours and not filters.weekdays:
        first, last = rollups.hour_of(filters.start), rollups.hour_of(filters.end)
        blocks, edges = rollup_spans.plan(clock.steps, first, last)
        if blocks:
            lists_where.append(
                sa.or_(sa.false(), *(sa.and_(rh.c.hour >= lo, rh.c.hour < hi) for lo, hi in edges))
            )
    with engine.connect() as conn:
        # the counts: one index-only scan, at most helper types x 24 x 7 groups
        count_rows = conn.execute(
            sa.select(
                rh.c.helper_type,
                hour,
                weekday,
                sa.func.sum(rh.c.requested),
                sa.func.sum(rh.c.connected),
                sa.func.sum(rh.c.no_helper),
                sa.func.sum(rh.c.diverted_type if filters.helper_type else rh.c.diverted_call),
            )
            .where(*where)
            .group_by(rh.c.helper_type, hour, weekday)
        ).all()
        list_rows = conn.execute(
            sa.select(
                rh.c.helper_type,
                hour,
                _joined(engine, rh.c.answers),
                _joined(engine, rh.c.durations),
                _joined(engine, rh.c.reasons),
                _joined(engine, rh.c.outcomes),
            )
            .where(*lists_where)
            .group_by(rh.c.helper_type, hour)
        ).all()
        spans = rollup_spans.read(
            conn,
            blocks,
            filters.jurisdiction or rollups.ALL_JURISDICTIONS,
            filters.helper_type,
        )
    requested: dict[str, int] = defaultdict(int)
    connected: dict[str, int] = defaultdict(int)
    by_hour: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_weekday: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    answers_by_cell: dict[tuple[str, int], list[str | None]] = defaultdict(list)
    durations_by_type: dict[str, list[str | None]] = defaultdict(list)
    outcomes_by_type: dict[str, list[str | None]] = defaultdict(list)
    reasons: list[str | None] = []
    diverted = 0
    for helper_type, hr, wd, n, c, x, d in count_rows:
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
    for helper_type, hr, answers, durations, why, outcomes in list_rows:
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
    duration_seconds: dict[str, Counter[int]] = defaultdict(Counter)
    for t, joined in durations_by_type.items():
        duration_seconds[t].update(_seconds(joined))
    no_helper = rollups.tally(reasons)
    for helper_type, kind, local_hour, value, count in spans:
        if kind == rollup_spans.ANSWER:
            answer_seconds[helper_type][int(value)] += count
        elif kind == rollup_spans.ANSWER_BY_HOUR:
            answer_by_hour[local_hour][int(value)] += count
        elif kind == rollup_spans.DURATION:
            duration_seconds[helper_type][int(value)] += count
        elif kind == rollup_spans.REASON:
            no_helper[value] += count
        elif kind == rollup_spans.OUTCOME:
            by_type_outcomes.setdefault(helper_type, Counter())[value] += count
            outcomes_total[value] += count
    return HandoffFigures(
        requested={k: v for k, v in requested.items() if v},
        connected=dict(connected),
        no_helper=dict(no_helper),
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

"""Views over months read the handoff histograms from 8- and 64-day spans: they give exactly
the figures computed from the raw handoffs, across a daylight-saving change, in every
jurisdiction and for one helper type, and stay exact as records change or arrive late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.reporting import figures as reports
from ivr.reporting import rollup_spans, rollups
from ivr.reporting.measures import Filters, RollupClock
from ivr.store.report_tables import report_handoff_spans, report_watermarks
from tests.dashboard_fixtures import _forget_handoffs, add_handoff, add_live_call, program, utc
from tests.test_rollups import DENVER, FILTERS, LATER, _same, _seed, _set, local

FIXTURES = (program, _forget_handoffs)
"""Fixtures this module uses from tests/dashboard_fixtures.py (pytest finds them here)."""


def _spans_read(program: ProgramConfig, filters: Filters) -> list[tuple[int, int, int]]:
    """The spans a view of `filters` reads."""
    clock = RollupClock(program.zone, filters.start, filters.end)
    blocks, _ = rollup_spans.plan(
        clock.steps, rollups.hour_of(filters.start), rollups.hour_of(filters.end)
    )
    return blocks


def _span_rows(engine: sa.Engine) -> set[tuple[object, ...]]:
    with engine.connect() as conn:
        return {tuple(row) for row in conn.execute(sa.select(report_handoff_spans))}


def _rebuilt_from_scratch(engine: sa.Engine) -> set[tuple[object, ...]]:
    """The span rows a first build makes from every hour (the watermark forgotten)."""
    with engine.begin() as conn:
        conn.execute(report_watermarks.delete().where(report_watermarks.c.kind == "handoffs"))
    rollups.refresh(engine)
    return _span_rows(engine)


def test_a_season_across_a_daylight_saving_change_reads_spans_and_matches_the_raw_handoffs(
    engine: sa.Engine,
) -> None:
    # 15 January - 15 April in Denver: 8-day spans before and after 8 March's change
    # (a span never straddles it: the UTC hour of day maps to another local hour after it)
    _seed(engine, local(2026, 1, 15), hours=90 * 24, calls=160, seed=41)
    season = Filters(local(2026, 1, 15), local(2026, 4, 15))
    blocks = _spans_read(DENVER, season)
    assert {span for span, _, _ in blocks} == {192}
    assert {offset for _, _, offset in blocks} == {-7, -6}
    change = datetime(2026, 3, 8, 9, tzinfo=UTC)
    for span, start, _ in blocks:
        assert not rollups.hour_start(start) < change < rollups.hour_start(start + span)
    total = _same(engine, DENVER, season)
    assert sum(total.requested.values()) > 150
    assert total.answer_by_hour and total.duration_seconds and total.no_helper
    for extra in FILTERS:
        _same(engine, DENVER, Filters(season.start, season.end, **extra))  # type: ignore[arg-type]


def test_a_half_year_reads_a_64_day_span_and_stays_exact_as_records_change(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    start = utc(2026, 1, 1, 7)  # Phoenix midnight, UTC-7 all year
    ids = _seed(engine, start, hours=180 * 24, calls=150, seed=43)
    half = Filters(start, start + timedelta(days=180))
    assert 1536 in {span for span, _, _ in _spans_read(program, half)}
    before = _same(engine, program, half)
    for extra in FILTERS:
        _same(engine, program, Filters(half.start, half.end, **extra))  # type: ignore[arg-type]
    # later: an outcome recorded, a handoff corrected to have reached no one, one moved to
    # another jurisdiction, one that commits late into an hour long rolled up
    _set(engine, ids[0], outcome="involuntary_hold", updated_at=LATER)
    _set(
        engine,
        ids[1],
        status="returned",
        reason_code="caller_hung_up",
        accepted_at=None,
        connected_at=None,
        ended_at=None,
        outcome=None,
        updated_at=LATER,
    )
    _set(engine, ids[2], jurisdiction="county", updated_at=LATER)
    at = start + timedelta(days=40, hours=15)
    call = add_live_call(engine, "CA-span-late", at)
    late = add_handoff(engine, call, "navigator", at, answer_s=2, duration_s=4321)
    _set(engine, late, jurisdiction="city", updated_at=LATER)
    after = _same(engine, program, half)
    assert after.duration_seconds["navigator"].get(4321) == 1
    assert after.outcomes["involuntary_hold"] == before.outcomes.get("involuntary_hold", 0) + 1
    for extra in FILTERS:
        _same(engine, program, Filters(half.start, half.end, **extra))  # type: ignore[arg-type]
    # the spans, kept by adding each change, are what a build from scratch makes
    kept = _span_rows(engine)
    assert kept and all(row[-1] > 0 for row in kept)
    assert kept == _rebuilt_from_scratch(engine)


def test_the_year_view_on_the_dashboard_matches_the_raw_handoffs(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    """The whole main view (percentiles, NENA shares, outcomes, savings) over a year that
    reads spans is the same as the one built from the raw tables."""
    year = Filters(utc(2025, 11, 1, 7), utc(2026, 11, 1, 7))
    _seed(engine, year.start, hours=365 * 24, calls=120, seed=47)
    assert _spans_read(program, year)
    fast = reports.build_dashboard(engine, program, year, LATER)
    direct = reports.handoff_figures(engine, program, year, direct=True)
    assert fast.handoffs == direct
    assert fast.table("summary").rows[0][1] == direct.diverted_calls > 0
    assert fast.table("helper_types").lookup("all", "requested") == sum(direct.requested.values())

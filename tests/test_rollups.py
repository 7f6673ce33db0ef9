"""The dashboard's hourly rollups give exactly the figures the direct queries give, at the
edges: daylight-saving changes, ranges that start and end mid-day, records that change or
arrive late for hours already rolled up, many scattered changed hours, odd names."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.reporting import figures as reports
from ivr.reporting import rollups
from ivr.reporting.measures import Filters
from ivr.store.handoff_tables import handoffs
from tests.dashboard_fixtures import (
    _forget_handoffs,
    add_event,
    add_handoff,
    add_live_call,
    program,
    utc,
)

FIXTURES = (program, _forget_handoffs)
"""Fixtures this module uses from tests/dashboard_fixtures.py (pytest finds them here)."""

DENVER = ProgramConfig(timezone="America/Denver")
"""A zone with daylight saving time: 2026-03-08 02:00 MST -> 03:00 MDT (09:00 UTC) and
2026-11-01 02:00 MDT -> 01:00 MST (08:00 UTC)."""

ZONE = ZoneInfo("America/Denver")

TYPES = ("embedded_clinician", "telehealth_nurse", "crisis_988", "navigator")
PLACES = ("city", "county", None)
OUTCOMES = ("resolved_by_phone", "referred", "transport", None)
REASONS = ("chain_exhausted", "no_one_on_duty", "caller_hung_up")
LATER = utc(2027, 1, 5)
"""When late changes are stamped: after everything seeded."""


def local(year: int, month: int, day: int, hour: int = 0) -> datetime:
    """A Denver wall-clock time, in UTC (as records are stored)."""
    return datetime(year, month, day, hour, tzinfo=ZONE).astimezone(UTC)


def _set(engine: sa.Engine, handoff_id: int, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(handoffs.update().where(handoffs.c.id == handoff_id).values(**values))


def _seed(engine: sa.Engine, start: datetime, hours: int, calls: int, seed: int) -> list[int]:
    """`calls` live calls spread over `hours` hours from `start`, one to three handoffs each
    (some connected, some not, some still ringing), in three jurisdictions, with self-service
    calls alongside; returns the handoff ids."""
    rng = random.Random(seed)
    ids = []
    for n in range(calls):
        at = start + timedelta(seconds=rng.randrange(hours * 3600))
        call = add_live_call(engine, f"CA-r{seed}-{n}", at)
        place = rng.choice(PLACES)
        for k in range(rng.choice((1, 1, 2, 3))):
            when = at + timedelta(minutes=25 * k + rng.randrange(20))
            kind = rng.random()
            if kind < 0.6:
                handoff = add_handoff(
                    engine,
                    call,
                    rng.choice(TYPES),
                    when,
                    answer_s=rng.choice((4, 9, 9, 15, 21, 40)),
                    duration_s=rng.choice((60, 61, 300, 900, 1800)),
                    outcome=rng.choice(OUTCOMES),
                )
            elif kind < 0.9:
                handoff = add_handoff(
                    engine,
                    call,
                    rng.choice(TYPES),
                    when,
                    status="returned",
                    reason_code=rng.choice(REASONS),
                )
            else:
                handoff = add_handoff(engine, call, rng.choice(TYPES), when, status="ringing")
            _set(engine, handoff, jurisdiction=place)
            ids.append(handoff)
        sid = f"CA-s{seed}-{n}"
        add_event(engine, sid, "language", rng.choice(("en", "es")), at)
        add_event(engine, sid, "menu_item", "main:1:report", at + timedelta(minutes=1))
        last = rng.choice((("to_person", None), ("info_sms", "hours"), ("transfer", "nurse")))
        add_event(engine, sid, *last, at + timedelta(minutes=rng.choice((2, 50, 70))))
    return ids


def _same(engine: sa.Engine, program: ProgramConfig, filters: Filters) -> reports.HandoffFigures:
    """Assert that the rollups serve `filters` and agree with the direct queries."""
    assert reports.rollups_exact(program, filters)
    rolled = reports.handoff_figures(engine, program, filters)
    assert rolled == reports.handoff_figures(engine, program, filters, direct=True)
    assert reports.self_service_figures(engine, program, filters) == (
        reports.self_service_figures(engine, program, filters, direct=True)
    )
    return rolled


FILTERS = (
    {},
    {"helper_type": "embedded_clinician"},
    {"jurisdiction": "city"},
    {"jurisdiction": "county", "helper_type": "crisis_988"},
    {"hours": frozenset({1, 2, 3})},
    {"weekdays": frozenset({6})},
    {"hours": frozenset({0, 1, 2, 23}), "weekdays": frozenset({5, 6}), "jurisdiction": "city"},
)


@pytest.mark.parametrize(
    "first_day",
    [local(2026, 3, 6), local(2026, 10, 30)],
    ids=["spring-forward", "fall-back"],
)
def test_figures_across_a_daylight_saving_change_match_the_direct_queries(
    engine: sa.Engine, first_day: datetime
) -> None:
    _seed(engine, first_day, hours=4 * 24, calls=90, seed=first_day.month)
    last = (first_day.astimezone(ZONE) + timedelta(days=4)).date()
    start, end = first_day, local(last.year, last.month, last.day)  # local midnight
    assert len({at for at, _ in reports._offsets(ZONE, start, end)}) == 2  # one change inside
    total = _same(engine, DENVER, Filters(start, end))
    assert sum(total.requested.values()) > 50
    for extra in FILTERS:
        _same(engine, DENVER, Filters(start, end, **extra))  # type: ignore[arg-type]


def test_a_range_that_starts_and_ends_mid_day_matches_the_direct_queries(
    engine: sa.Engine,
) -> None:
    _seed(engine, local(2026, 3, 7), hours=3 * 24, calls=60, seed=11)
    start, end = local(2026, 3, 7, 13), local(2026, 3, 9, 9)  # across the spring change
    whole = reports.handoff_figures(engine, DENVER, Filters(local(2026, 3, 7), local(2026, 3, 10)))
    part = _same(engine, DENVER, Filters(start, end))
    assert 0 < sum(part.requested.values()) < sum(whole.requested.values())
    for extra in FILTERS:
        _same(engine, DENVER, Filters(start, end, **extra))  # type: ignore[arg-type]


def test_late_changes_to_hours_already_rolled_up_are_folded_in(engine: sa.Engine) -> None:
    ids = _seed(engine, local(2026, 3, 7), hours=3 * 24, calls=40, seed=21)
    week = Filters(local(2026, 3, 7), local(2026, 3, 10))
    before = _same(engine, DENVER, week)  # rolls every hour up
    # a clinician records an outcome days later
    first = min(ids)
    _set(engine, first, outcome="involuntary_hold", updated_at=LATER)
    # a record for an hour already rolled up commits late (stamped now, created back then)
    call = add_live_call(engine, "CA-late", local(2026, 3, 8, 4))
    late = add_handoff(engine, call, "navigator", local(2026, 3, 8, 4), answer_s=7, duration_s=77)
    _set(engine, late, jurisdiction="county", updated_at=LATER)
    # a call whose first handoff found no one, then a second one an hour later reached a
    # helper: the second counts as the diverted call...
    call = add_live_call(engine, "CA-two-hours", local(2026, 3, 9, 10))
    early = add_handoff(
        engine,
        call,
        "crisis_988",
        local(2026, 3, 9, 10),
        status="returned",
        reason_code="chain_exhausted",
    )
    add_handoff(engine, call, "crisis_988", local(2026, 3, 9, 11), answer_s=5, duration_s=50)
    _set(engine, early, updated_at=LATER)
    middle = _same(engine, DENVER, week)
    assert middle.outcomes["involuntary_hold"] == before.outcomes.get("involuntary_hold", 0) + 1
    assert middle.requested["navigator"] == before.requested.get("navigator", 0) + 1
    assert middle.diverted_calls == before.diverted_calls + 2
    # ...until the first one's record is corrected to say it connected after all: the diverted
    # call moves to the earlier hour, which the refresh must rebuild along with the later one
    _set(
        engine,
        early,
        status="completed",
        reason_code=None,
        accepted_at=local(2026, 3, 9, 10) + timedelta(seconds=3),
        connected_at=local(2026, 3, 9, 10) + timedelta(seconds=3),
        updated_at=LATER + timedelta(minutes=1),
    )
    after = _same(engine, DENVER, week)
    assert after.diverted_calls == middle.diverted_calls
    assert after.by_hour[10].get("connected", 0) == middle.by_hour[10].get("connected", 0) + 1
    # a self-service call reaches a person in a later hour: its first hour is rebuilt too
    add_event(engine, "CA-s21-0", "to_person", None, LATER)
    _same(engine, DENVER, week)


def test_many_scattered_changed_hours_are_rebuilt_in_batches(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    month = Filters(utc(2026, 3, 1, 7), utc(2026, 4, 1, 7))  # Phoenix, UTC-7
    _seed(engine, month.start, hours=24, calls=5, seed=31)
    _same(engine, program, month)
    # every other hour for 12 days: more separate runs than one set of queries takes
    for n in range(rollups.RANGES_PER_QUERY + 40):
        at = month.start + timedelta(days=1, hours=2 * n, minutes=10)
        call = add_live_call(engine, f"CA-sparse-{n}", at)
        handoff = add_handoff(engine, call, "navigator", at, answer_s=n % 30, duration_s=60 + n)
        _set(engine, handoff, updated_at=LATER)
    figures = _same(engine, program, month)
    assert figures.requested["navigator"] >= rollups.RANGES_PER_QUERY + 40


def test_reason_and_outcome_names_with_commas_and_percent_signs_stay_exact(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    at = utc(2026, 3, 2, 18)
    for n, (reason, outcome) in enumerate(
        (("a,b", None), ("50%2C", None), ("a,b", None), (None, "x%y,z"), (None, "%25"))
    ):
        call = add_live_call(engine, f"CA-odd-{n}", at)
        if reason:
            add_handoff(engine, call, "navigator", at, status="returned", reason_code=reason)
        else:
            add_handoff(engine, call, "navigator", at, answer_s=3, duration_s=9, outcome=outcome)
    figures = _same(engine, program, Filters(utc(2026, 3, 1, 7), utc(2026, 3, 8, 7)))
    assert figures.no_helper == {"a,b": 2, "50%2C": 1}
    assert figures.outcomes == {"x%y,z": 1, "%25": 1}


def test_handoffs_without_a_jurisdiction_count_in_the_whole_view_only(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    at = utc(2026, 3, 2, 18)
    for n, place in enumerate(("city", None, "county", None)):
        call = add_live_call(engine, f"CA-place-{n}", at)
        handoff = add_handoff(engine, call, "navigator", at, answer_s=3 + n, duration_s=60)
        _set(engine, handoff, jurisdiction=place)
    week = Filters(utc(2026, 3, 1, 7), utc(2026, 3, 8, 7))
    assert _same(engine, program, week).requested == {"navigator": 4}
    for place, answers in (("city", {3: 1}), ("county", {5: 1}), ("south_side", {})):
        got = _same(engine, program, Filters(week.start, week.end, jurisdiction=place))
        assert got.answer_seconds.get("navigator", {}) == answers


def test_a_range_given_in_local_time_selects_the_same_records_on_every_database(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    phoenix = ZoneInfo("America/Phoenix")  # UTC-7
    # 2026-03-02 06:30 UTC is 23:30 on 1 March in Phoenix: outside a range from 2 March
    for n, at in enumerate((utc(2026, 3, 2, 6, 30), utc(2026, 3, 2, 7, 30))):
        call = add_live_call(engine, f"CA-edge-{n}", at)
        add_handoff(engine, call, "navigator", at, answer_s=3, duration_s=60)
    given = Filters(datetime(2026, 3, 2, tzinfo=phoenix), datetime(2026, 3, 3, tzinfo=phoenix))
    assert given.start == utc(2026, 3, 2, 7) and given.start.tzinfo is UTC
    for direct in (True, False):
        figures = reports.handoff_figures(engine, program, given, direct=direct)
        assert figures.requested == {"navigator": 1}
        assert reports.handoff_log(engine, program, given)[1][0][1] == "2026-03-02T07:30:00+00:00"

"""Report figures: seed records, work each figure out by hand here, compare with ivr.reports."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from ivr import reports
from ivr.config.program import ProgramConfig
from ivr.reports import Filters
from tests.dashboard_fixtures import add_callback, add_event, program, utc

FIXTURES = (program,)
"""Fixtures this module uses from tests/dashboard_fixtures.py (pytest finds them here)."""

NOV = Filters(start=utc(2026, 11, 1), end=utc(2026, 12, 1))


def _seed_self_service(engine: sa.Engine) -> None:
    # Phoenix is UTC-7: 2026-11-08 09:00 UTC is Sunday 02:00 local.
    sunday_2am = utc(2026, 11, 8, 9, 0)
    # call A: English, hears hours by text, hangs up: resolved without a person.
    add_event(engine, "CA-a", "language", "en", sunday_2am)
    add_event(engine, "CA-a", "menu_item", "main:3:submenu", sunday_2am + timedelta(seconds=10))
    add_event(engine, "CA-a", "menu_item", "info:1:info", sunday_2am + timedelta(seconds=20))
    add_event(engine, "CA-a", "info_sms", "hours", sunday_2am + timedelta(seconds=30))
    # call B: Spanish, files a report: resolved without a person.
    wed_2pm = utc(2026, 11, 11, 21, 0)  # Wednesday 14:00 local
    add_event(engine, "CA-b", "language", "es", wed_2pm, "es")
    add_event(engine, "CA-b", "menu_item", "main:1:report", wed_2pm + timedelta(seconds=5), "es")
    add_event(engine, "CA-b", "report_filed", "pothole", wed_2pm + timedelta(seconds=50), "es")
    # call C: crisis words -> 988: a person.
    add_event(engine, "CA-c", "language", "en", wed_2pm + timedelta(minutes=3))
    add_event(engine, "CA-c", "crisis_words", "crisis_988", wed_2pm + timedelta(minutes=4))
    add_event(engine, "CA-c", "transfer", "crisis_988", wed_2pm + timedelta(minutes=4))
    # call D: talks to a 311 agent after re-asks: a person.
    add_event(engine, "CA-d", "language", "en", sunday_2am + timedelta(minutes=20))
    add_event(engine, "CA-d", "attempts_exhausted", None, sunday_2am + timedelta(minutes=21))
    add_event(engine, "CA-d", "to_person", None, sunday_2am + timedelta(minutes=21))
    # call E: asks for a callback: a person will call.
    add_event(engine, "CA-e", "language", "en", wed_2pm + timedelta(hours=1))
    add_event(engine, "CA-e", "menu_item", "main:4:callback", wed_2pm + timedelta(hours=1))
    add_event(engine, "CA-e", "callback_requested", "resident_menu", wed_2pm + timedelta(hours=1))
    # call F: October, outside the range.
    add_event(engine, "CA-f", "language", "en", utc(2026, 10, 31, 23, 0))
    add_event(engine, "CA-f", "transfer", "nurse", utc(2026, 10, 31, 23, 1))


def test_self_service_calls_items_transfers_and_calls_resolved_without_a_person(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    _seed_self_service(engine)
    got = reports.self_service_figures(engine, program, NOV)
    # by hand: calls A-E in November; A and B never reached a person.
    assert got.calls == 5
    assert got.resolved_without_person == 2
    assert got.to_person == 1
    assert got.items == {
        "main:3:submenu": 1,
        "info:1:info": 1,
        "main:1:report": 1,
        "main:4:callback": 1,
    }
    assert got.transfers == {"crisis_988": 1}  # the October nurse transfer is out of range
    assert got.crisis_words == {"crisis_988": 1}
    assert got.languages == {"en": 4, "es": 1}
    assert got.events["report_filed"] == 1 and got.events["info_sms"] == 1
    # A and D started Sunday 02:xx local; B, C at Wednesday 14:xx, E at 15:00.
    assert got.calls_by_hour == {2: 2, 14: 2, 15: 1}
    assert got.calls_by_weekday == {6: 2, 2: 3}


def test_self_service_filtered_to_two_am_sunday(engine: sa.Engine, program: ProgramConfig) -> None:
    _seed_self_service(engine)
    got = reports.self_service_figures(
        engine, program, Filters(NOV.start, NOV.end, hours=frozenset({2}), weekdays=frozenset({6}))
    )
    assert got.calls == 2  # A and D
    assert got.resolved_without_person == 1  # A
    assert got.items == {"main:3:submenu": 1, "info:1:info": 1}
    assert got.transfers == {}


def test_self_service_counts_only_in_the_lines_own_jurisdiction(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    _seed_self_service(engine)
    own = program.self_service_jurisdiction
    assert own == "city"
    assert (
        reports.self_service_figures(engine, program, Filters(NOV.start, NOV.end, "city")).calls
        == 5
    )
    other = reports.self_service_figures(engine, program, Filters(NOV.start, NOV.end, "county"))
    assert other.calls == 0 and other.items == {}


def test_local_hours_follow_daylight_saving_time_on_both_databases(engine: sa.Engine) -> None:
    denver = ProgramConfig(timezone="America/Denver")
    # 2026-11-01 is the fall-back day in Denver: 07:30 UTC is 01:30 MDT, 08:30 UTC is 01:30 MST.
    add_event(engine, "CA-1", "language", "en", utc(2026, 11, 1, 7, 30))
    add_event(engine, "CA-2", "language", "en", utc(2026, 11, 1, 8, 30))
    add_event(engine, "CA-3", "language", "en", utc(2026, 10, 31, 20, 0))  # Sat 14:00 MDT
    add_event(engine, "CA-4", "language", "en", utc(2026, 11, 2, 21, 0))  # Mon 14:00 MST
    got = reports.self_service_figures(engine, denver, Filters(utc(2026, 10, 25), utc(2026, 11, 8)))
    assert got.calls_by_hour == {1: 2, 14: 2}
    assert got.calls_by_weekday == {6: 2, 5: 1, 0: 1}
    assert denver.zone == ZoneInfo("America/Denver")


def test_callbacks_open_done_failed_and_overdue(engine: sa.Engine, program: ProgramConfig) -> None:
    now = utc(2026, 11, 20, 12)
    day = timedelta(days=1)
    add_callback(
        engine, status="pending", created_at=utc(2026, 11, 2), deadline_at=utc(2026, 11, 3)
    )
    add_callback(engine, status="pending", created_at=utc(2026, 11, 19), deadline_at=now + day)
    add_callback(
        engine, status="dialing", created_at=utc(2026, 11, 5), deadline_at=utc(2026, 11, 6)
    )
    add_callback(engine, status="done", created_at=utc(2026, 11, 6), deadline_at=utc(2026, 11, 7))
    add_callback(
        engine,
        status="failed",
        created_at=utc(2026, 11, 7),
        deadline_at=utc(2026, 11, 8),
        source="dropped_handoff",
        helper_type="telehealth_nurse",
    )
    add_callback(engine, status="draft", created_at=utc(2026, 11, 7))
    add_callback(
        engine, status="pending", created_at=utc(2026, 10, 7), deadline_at=utc(2026, 10, 8)
    )
    got = reports.callback_figures(engine, program, NOV, now)
    # by hand: 6 non-draft in November; open = 2 pending + 1 dialing; overdue = those 3 minus
    # the one due tomorrow.
    assert got.open == 3 and got.done == 1 and got.failed == 1
    assert got.overdue == 2
    assert got.by_source == {"resident_menu": 4, "dropped_handoff": 1}
    nurse = reports.callback_figures(
        engine, program, Filters(NOV.start, NOV.end, helper_type="telehealth_nurse"), now
    )
    assert nurse.failed == 1 and nurse.open == 0


def test_percentiles_of_a_histogram_match_the_sorted_list() -> None:
    values = [3, 5, 5, 8, 12, 14, 15, 16, 22, 40]
    hist: dict[int, int] = {}
    for v in values:
        hist[v] = hist.get(v, 0) + 1
    assert reports.median(hist) == (12 + 14) / 2
    assert reports.percentile(hist, 0.9) == 22  # 9th of 10 values
    assert reports.percentile(hist, 0.5) == 12
    assert reports.share_within(hist, 15) == 0.7
    assert reports.median({}) is None and reports.percentile({}, 0.9) is None
    assert reports.median({7: 3}) == 7


def test_filters_refuse_a_backwards_or_naive_range() -> None:
    with pytest.raises(ValueError):
        Filters(utc(2026, 11, 2), utc(2026, 11, 1))
    with pytest.raises(ValueError):
        Filters(utc(2026, 11, 1), utc(2026, 11, 2), hours=frozenset({24}))


def test_program_config_defaults_and_errors_name_the_file_line_and_field(tmp_path) -> None:
    from ivr.config import ConfigError
    from ivr.config.program import load_program

    assert load_program(tmp_path, default_timezone="America/Phoenix").timezone == "America/Phoenix"
    defaults = load_program(tmp_path)
    assert defaults.savings.per_avoided_dispatch == 250
    assert [(t.within_seconds, t.share) for t in defaults.answer_targets] == [(15, 0.9), (20, 0.95)]
    path = tmp_path / "program.yaml"
    path.write_text(
        "timezone: UTC\njurisdictions:\n  - {id: city, name: City, kind: agency}\n"
        "  - {id: city, name: Again, kind: community}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_program(tmp_path)
    assert err.value.line == 4 and err.value.field == "jurisdictions[1].id"
    path.write_text("qa:\n  random_sample_rate: 1.5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_program(tmp_path)
    assert err.value.line == 2 and err.value.field == "qa.random_sample_rate"
    path.write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_program(tmp_path)

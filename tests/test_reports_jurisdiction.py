# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""Each live call and handoff records its jurisdiction when it starts (program.yaml
call_jurisdictions), and the dashboard's jurisdiction filter counts handoffs by it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.accounts import Staff
from ivr.config.errors import ConfigError
from ivr.config.program import ProgramConfig, load_program
from ivr.flows import handoffs
from ivr.flows.desk import TransferDesk
from ivr.reporting import figures as reports
from ivr.reporting.measures import Filters
from ivr.simulator import Call
from ivr.store import callbacks as callback_store
from ivr.store.callback_records import CallbackSource
from ivr.store.handoff_tables import handoffs as handoffs_table
from tests.dashboard_fixtures import _forget_handoffs, program, utc
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    CALL_TAKER_ID,
    CALL_TAKER_PIN,
    PSAP_LINE,
    WEDNESDAY_11AM,
    call_taker,
    desk,
)

FIXTURES = (program, _forget_handoffs)
"""Fixtures this module uses from tests/dashboard_fixtures.py (pytest finds them here)."""

COUNTY_PSAP_LINE = "+15205550172"
"""config/program.yaml: the county PSAP calls the desk from this line."""

SOUTH_SIDE_INTAKE = "+15205550180"
"""config/program.yaml: the intake number of the south side neighborhoods."""

NOV = Filters(start=utc(2026, 11, 1), end=utc(2026, 12, 1))


def _hand_to_navigator(c: Call) -> None:
    """Sign in, answer the tree (no danger, consent), choose the navigator for
    a housing or food call, give a callback."""
    assert "Enter your staff ID" in c.heard_since_last()
    c.press(CALL_TAKER_ID + "#")
    c.press(CALL_TAKER_PIN + "#")
    for digit in (
        "2",
        "2",
        "2",
        "1",
        "2",
        "2",
    ):  # weapon, danger, violence, consent, medical, health
        c.press(digit)
    assert "For a community navigator, press 3." in c.heard_since_last()
    c.press("3")
    c.press("5")  # what the call is about: housing or food
    c.press("5205550123#")
    assert "Calling a community navigator now." in c.heard_since_last()


def test_a_desk_call_from_the_county_psap_line_is_reported_under_the_county(
    call: Callable[..., Call],
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    program: ProgramConfig,
) -> None:
    county_call = call("/voice/transfer-desk", from_number=COUNTY_PSAP_LINE)
    _hand_to_navigator(county_call)
    city_call = call("/voice/transfer-desk", from_number=PSAP_LINE)  # not mapped: the default
    _hand_to_navigator(city_call)
    county_live = handoffs.live_call_by_sid(engine, county_call.call_sid)
    city_live = handoffs.live_call_by_sid(engine, city_call.call_sid)
    assert county_live is not None and county_live.jurisdiction == "county"
    assert city_live is not None and city_live.jurisdiction == "city"
    # The county navigator answers after 12 s and talks 5 minutes; the city one never answers.
    with engine.begin() as conn:
        conn.execute(
            handoffs_table.update()
            .where(handoffs_table.c.live_call_id == county_live.id)
            .values(
                accepted_at=WEDNESDAY_11AM + timedelta(seconds=12),
                connected_at=WEDNESDAY_11AM + timedelta(seconds=12),
                ended_at=WEDNESDAY_11AM + timedelta(seconds=312),
            )
        )
    county = reports.handoff_figures(engine, program, Filters(NOV.start, NOV.end, "county"))
    # by hand: one navigator handoff, reached, answered in 12 s, 300 s long; 11:00 Wednesday.
    assert county.requested == {"navigator": 1}
    assert county.connected == {"navigator": 1}
    assert county.diverted_calls == 1
    assert county.all_answers() == {12: 1}
    assert county.all_durations() == {300: 1}
    assert county.by_hour == {11: {"handoffs": 1, "connected": 1}}
    assert not county.jurisdiction_missing
    city = reports.handoff_figures(engine, program, Filters(NOV.start, NOV.end, "city"))
    assert city.requested == {"navigator": 1} and city.connected == {}
    assert city.diverted_calls == 0 and city.all_answers() == {}
    south = reports.handoff_figures(engine, program, Filters(NOV.start, NOV.end, "south_side"))
    assert south.requested == {}
    everyone = reports.handoff_figures(engine, program, NOV)
    assert everyone.requested == {"navigator": 2} and everyone.diverted_calls == 1
    board = reports.build_dashboard(
        engine, program, Filters(NOV.start, NOV.end, "county"), WEDNESDAY_11AM + timedelta(hours=1)
    )
    assert board.savings == 250  # one diverted dispatch at $250


def test_a_county_call_refused_for_a_weapon_is_counted_under_the_county(
    call: Callable[..., Call],
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    program: ProgramConfig,
) -> None:
    c = call("/voice/transfer-desk", from_number=COUNTY_PSAP_LINE)
    c.press(CALL_TAKER_ID + "#")
    c.press(CALL_TAKER_PIN + "#")
    c.press("1")  # weapon: yes, so no helper can be offered
    assert c.ended
    county = reports.handoff_figures(engine, program, Filters(NOV.start, NOV.end, "county"))
    # by hand: one handoff, no helper reached, reason: a weapon
    assert county.requested == {"none": 1}  # the desk records it with helper type "none"
    assert county.no_helper == {"not_eligible_weapon": 1}
    city = reports.handoff_figures(engine, program, Filters(NOV.start, NOV.end, "city"))
    assert city.requested == {} and city.no_helper == {}


def test_an_intake_call_counts_under_the_number_it_dialed(
    signed_post: Callable[..., object], engine: sa.Engine
) -> None:
    signed_post("/voice/intake", {"CallSid": "CA" + "1" * 32, "To": SOUTH_SIDE_INTAKE})
    signed_post("/voice/intake", {"CallSid": "CA" + "2" * 32, "To": "+15205550100"})
    south = handoffs.live_call_by_sid(engine, "CA" + "1" * 32)
    other = handoffs.live_call_by_sid(engine, "CA" + "2" * 32)
    assert south is not None and south.jurisdiction == "south_side"
    assert other is not None and other.jurisdiction == "city"  # the configured default


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        (
            "call_jurisdictions:\n  default: atlantis\n",
            2,
            "call_jurisdictions.default",
            "unknown jurisdiction 'atlantis'",
        ),
        (
            "call_jurisdictions:\n  desk_callers:\n"
            "    - {number: '+1 520 555 0172', jurisdiction: city}\n"
            "    - {number: '555-12', jurisdiction: city}\n",
            4,
            "call_jurisdictions.desk_callers[1].number",
            "not a valid phone number",
        ),
        (
            "call_jurisdictions:\n  intake_numbers:\n"
            "    - {number: '+1 520 555 0180', jurisdiction: city}\n"
            "    - {number: '(520) 555-0180', jurisdiction: city}\n",
            4,
            "call_jurisdictions.intake_numbers[1].number",
            "listed twice",
        ),
        (
            "call_jurisdictions:\n  desk_callers:\n"
            "    - {number: '+1 520 555 0172', jurisdiction: atlantis}\n",
            3,
            "call_jurisdictions.desk_callers[0].jurisdiction",
            "unknown jurisdiction 'atlantis'",
        ),
    ],
)
def test_call_jurisdictions_are_checked_with_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, message: str
) -> None:
    known = "jurisdictions:\n  - {id: city, name: City, kind: agency}\n"
    (tmp_path / "program.yaml").write_text(body + known, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        load_program(tmp_path)
    assert err.value.line == line and err.value.field == field
    assert "program.yaml" in str(err.value)


def test_callbacks_count_under_their_handoffs_jurisdiction_and_the_lines_own(
    call: Callable[..., Call],
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    program: ProgramConfig,
) -> None:
    county_call = call("/voice/transfer-desk", from_number=COUNTY_PSAP_LINE)
    _hand_to_navigator(county_call)
    county_live = handoffs.live_call_by_sid(engine, county_call.call_sid)
    assert county_live is not None
    (county_handoff,) = handoffs.handoffs_for_call(engine, county_live.id)
    # The county caller drops before anyone takes them: a callback, under the county.
    dropped_id = handoffs.record_dropped_callback(engine, county_handoff.id, WEDNESDAY_11AM)
    assert dropped_id is not None
    # A resident asks for a callback on the self-service line (the city's, program.yaml).
    callback_store.create_callback(
        engine, key="menu:CA1", source=CallbackSource.RESIDENT_MENU,
        phone_number="+15205550111", language="en", helper_type="navigator",
        due_at=WEDNESDAY_11AM, deadline_at=WEDNESDAY_11AM + timedelta(hours=4), consent=True,
        now=WEDNESDAY_11AM,
    )  # fmt: skip
    later = WEDNESDAY_11AM + timedelta(minutes=30)

    def by_source(jurisdiction: str | None) -> dict[str, int]:
        filters = Filters(NOV.start, NOV.end, jurisdiction)
        return reports.callback_figures(engine, program, filters, later).by_source

    assert by_source("county") == {"dropped_handoff": 1}
    assert by_source("city") == {"resident_menu": 1}
    assert by_source("south_side") == {}
    assert by_source(None) == {"dropped_handoff": 1, "resident_menu": 1}
    board = reports.build_dashboard(engine, program, Filters(NOV.start, NOV.end, "county"), later)
    assert all("all jurisdictions" not in (t.note or "") for t in board.tables)

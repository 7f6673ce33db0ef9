"""The roster as operators write it: who is on duty when, the fallback chain, and clear errors."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.config import ConfigError, load_roster
from ivr.config.roster import Roster
from ivr.decisions import routing

PHOENIX = ZoneInfo("America/Phoenix")
REPO_CONFIG = Path(__file__).resolve().parent.parent / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO_CONFIG, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _phoenix(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in Phoenix, November 2026 (the 23rd is a Monday, the 25th a Wednesday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=PHOENIX)


@pytest.fixture(scope="module")
def roster() -> Roster:
    return load_roster(REPO_CONFIG)


def _ids(members: list[routing.Member]) -> list[str]:
    return [m.member_id for m in members]


def test_the_shipped_roster_loads_with_every_address_dialable(roster: Roster) -> None:
    assert set(roster.helper_types) == {
        "embedded_clinician",
        "telehealth_nurse",
        "telehealth_doctor",
        "crisis_988",
        "navigator",
    }
    rivera = roster.member("clin-rivera")
    assert rivera == routing.Member(
        member_id="clin-rivera",
        name="Dana Rivera",
        helper_type="embedded_clinician",
        address="+15205550151",
        kind="number",
        staff_id="5101",
    )
    assert roster.member("clin-okafor").kind == "sip"  # type: ignore[union-attr]
    assert roster.member("nurse-night").address == "client:nurse_night"  # type: ignore[union-attr]
    assert roster.member("line-nurse_line").address == "+15205550140"  # type: ignore[union-attr]


def test_who_is_on_duty_follows_the_shifts_in_the_roster_time_zone(roster: Roster) -> None:
    assert _ids(routing.on_duty(roster, "embedded_clinician", _phoenix(25, 9, 59))) == []
    assert _ids(routing.on_duty(roster, "embedded_clinician", _phoenix(25, 10))) == ["clin-rivera"]
    assert _ids(routing.on_duty(roster, "embedded_clinician", _phoenix(25, 15))) == [
        "clin-rivera",
        "clin-okafor",
    ]
    assert _ids(routing.on_duty(roster, "embedded_clinician", _phoenix(25, 18))) == ["clin-okafor"]
    # Saturday: the weekday-only clinicians are off, 988 never is.
    assert routing.on_duty(roster, "embedded_clinician", _phoenix(28, 12)) == []
    assert _ids(routing.on_duty(roster, "crisis_988", _phoenix(28, 3))) == ["crisis-988-center"]


def test_an_overnight_shift_covers_the_small_hours_of_the_next_day(roster: Roster) -> None:
    assert _ids(routing.on_duty(roster, "telehealth_nurse", _phoenix(25, 23))) == ["nurse-night"]
    assert _ids(routing.on_duty(roster, "telehealth_nurse", _phoenix(26, 3))) == ["nurse-night"]
    assert _ids(routing.on_duty(roster, "telehealth_nurse", _phoenix(26, 8))) == ["nurse-lee"]


def test_next_on_duty_change_says_when_someone_comes_on(roster: Roster) -> None:
    change = routing.next_on_duty_change(roster, "embedded_clinician", _phoenix(25, 8))
    assert change is not None
    assert change.astimezone(roster.timezone).strftime("%a %H:%M") == "Wed 10:00"
    friday_night = routing.next_on_duty_change(roster, "embedded_clinician", _phoenix(27, 23))
    assert friday_night is not None
    assert friday_night.astimezone(roster.timezone).strftime("%a %H:%M") == "Mon 10:00"
    assert routing.next_on_duty_change(roster, "crisis_988", _phoenix(25, 8)) is None


def test_the_fallback_chain_is_members_on_duty_then_each_fallback_in_order(roster: Roster) -> None:
    at = _phoenix(25, 15)  # Wednesday afternoon
    assert _ids(routing.fallback_chain(roster, "embedded_clinician", at)) == [
        "clin-rivera",
        "clin-okafor",
        "crisis-988-center",
    ]
    assert _ids(routing.fallback_chain(roster, "telehealth_nurse", at)) == [
        "nurse-lee",
        "doc-patel",
        "line-nurse_line",
    ]
    # Saturday: no clinician, so the chain starts at the fallback.
    assert _ids(routing.fallback_chain(roster, "embedded_clinician", _phoenix(28, 12))) == [
        "crisis-988-center"
    ]
    assert routing.fallback_chain(roster, "navigator", _phoenix(28, 12)) == []


def test_ring_timeout_comes_from_the_helper_type_or_the_default(roster: Roster) -> None:
    assert routing.ring_timeout(roster, roster.member("clin-rivera")) == 25  # type: ignore[arg-type]
    assert routing.ring_timeout(roster, roster.member("nav-brooks")) == 20  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (
            'number: "+1 520 555 0151"',
            'number: "+1 900 555 0151"',
            "helper_types.embedded_clinician.members[0].number",
            "premium_rate",
        ),
        (
            'number: "+1 520 555 0151"',
            'number: "+44 20 7946 0958"',
            "helper_types.embedded_clinician.members[0].number",
            "outside_us_canada",
        ),
        (
            'number: "+1 520 555 0151"',
            'number: "+1 876 555 0151"',  # Jamaica: +1, yet international rates
            "helper_types.embedded_clinician.members[0].number",
            "outside_us_canada",
        ),
        (
            'number: "+1 520 555 0140"',
            'number: "+1 809 555 0140"',  # the Dominican Republic, as a fallback line
            "fallback_lines.nurse_line.number",
            "outside_us_canada",
        ),
        (
            'number: "+1 520 555 0151"',
            'number: "12"',
            "helper_types.embedded_clinician.members[0].number",
            "invalid",
        ),
        (
            "fallback: [crisis_988]",
            "fallback: [crisis_line]",
            "helper_types.embedded_clinician.fallback[0]",
            "unknown helper type or fallback line 'crisis_line'",
        ),
        (
            "timezone: America/Phoenix",
            "timezone: Mars/Olympus",
            "timezone",
            "unknown time zone",
        ),
        (
            'start: "10:00", end: "18:00"',
            'start: "10:00", end: "25:00"',
            "helper_types.embedded_clinician.members[0].shifts[0].end",
            "must be a time like 08:00",
        ),
        (
            "id: clin-okafor",
            "id: clin-rivera",
            "helper_types.embedded_clinician.members[1].id",
            "used twice",
        ),
        (
            'sip: "sip:okafor@pbx.example.org"',
            'sip: "okafor at pbx"',
            "helper_types.embedded_clinician.members[1].sip",
            "is not a SIP URI",
        ),
        (
            'days: [mon, tue, wed, thu, fri], start: "10:00"',
            'days: [monday], start: "10:00"',
            "helper_types.embedded_clinician.members[0].shifts[0].days[0]",
            "Input should be",
        ),
    ],
)
def test_a_roster_mistake_names_the_file_the_line_and_the_field(
    config_dir: Path, old: str, new: str, field: str, reason: str
) -> None:
    _edit(config_dir / "roster.yaml", old, new)
    with pytest.raises(ConfigError) as err:
        load_roster(config_dir)
    assert err.value.file.endswith("roster.yaml")
    assert err.value.line is not None
    assert err.value.field == field
    assert reason in err.value.reason


def test_a_member_with_two_addresses_is_refused(config_dir: Path) -> None:
    _edit(
        config_dir / "roster.yaml",
        'number: "+1 520 555 0151"',
        'number: "+1 520 555 0151"\n        client: rivera_app',
    )
    with pytest.raises(ConfigError) as err:
        load_roster(config_dir)
    assert err.value.field == "helper_types.embedded_clinician.members[0]"
    assert "exactly one of number, sip or client" in err.value.reason


def test_a_roster_in_a_zone_with_daylight_saving_keeps_wall_clock_shifts(config_dir: Path) -> None:
    _edit(config_dir / "roster.yaml", "timezone: America/Phoenix", "timezone: America/New_York")
    roster = load_roster(config_dir)
    # 10:00 New York is 15:00 UTC in winter and 14:00 UTC in summer.
    assert _ids(
        routing.on_duty(roster, "embedded_clinician", datetime(2026, 11, 25, 15, 0, tzinfo=UTC))
    ) == ["clin-rivera"]
    assert _ids(
        routing.on_duty(roster, "embedded_clinician", datetime(2026, 7, 15, 14, 0, tzinfo=UTC))
    ) == ["clin-rivera"]
    assert (
        routing.on_duty(roster, "embedded_clinician", datetime(2026, 7, 15, 13, 59, tzinfo=UTC))
        == []
    )

"""When a callback may be placed, decided without Flask, Redis or SQL; and the rules file."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.config.callbacks import CallbacksConfig, load_callbacks
from ivr.config.errors import ConfigError
from ivr.decisions import callback_rules as rules
from ivr.decisions.callback_rules import CallOutcome

REPO = Path(__file__).resolve().parent.parent
PHOENIX = ZoneInfo("America/Phoenix")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """March 2030 in Phoenix: the 6th is a Wednesday, the 8th a Friday."""
    return datetime(2030, 3, day, hour, minute, tzinfo=PHOENIX)


@pytest.fixture(scope="module")
def config() -> CallbacksConfig:
    return load_callbacks(
        REPO / "config", "America/Phoenix", ("operator",), ("navigator", "embedded_clinician")
    )


def standard(config: CallbacksConfig):  # type: ignore[no-untyped-def]
    return config.window("standard")


@pytest.mark.parametrize(
    ("local", "allowed"),
    [
        (at(6, 7, 59), False),
        (at(6, 8, 0), True),
        (at(6, 20, 59), True),
        (at(6, 21, 0), False),
        (at(6, 21, 5), False),
        (at(7, 3, 0), False),
    ],
)
def test_quiet_hours_allow_8_am_to_9_pm_local(
    config: CallbacksConfig, local: datetime, allowed: bool
) -> None:
    assert rules.in_window(local.astimezone(UTC), standard(config), config.zone) is allowed


def test_a_callback_due_at_9_05_pm_is_first_placed_at_8_am(config: CallbacksConfig) -> None:
    due = at(6, 21, 5)
    first = rules.first_attempt_at(due, due, standard(config), config.zone)
    assert first == at(7, 8, 0)
    assert not rules.is_due(due, due, standard(config), config.zone)
    assert rules.is_due(due, at(7, 8, 0), standard(config), config.zone)


def test_after_midnight_waits_until_8_the_same_morning(config: CallbacksConfig) -> None:
    assert rules.next_allowed(at(7, 2, 30), standard(config), config.zone) == at(7, 8, 0)


def test_a_crisis_follow_up_has_its_own_window(config: CallbacksConfig) -> None:
    crisis = config.window("crisis")
    assert crisis.start == time(7) and crisis.end == time(22)
    assert rules.in_window(at(6, 21, 30), crisis, config.zone)
    assert rules.next_allowed(at(6, 22, 0), crisis, config.zone) == at(7, 7, 0)


def test_due_and_deadline_per_source(config: CallbacksConfig) -> None:
    recorded = at(6, 10, 0)
    due, deadline = rules.times_for(config, "dropped_handoff", recorded)
    assert due == recorded and deadline == recorded + timedelta(minutes=15)
    due, deadline = rules.times_for(config, "resident_menu", recorded)
    assert due == recorded and deadline == at(6, 17, 0)  # within the business day
    _, friday_evening = rules.times_for(config, "resident_menu", at(8, 18, 0))
    assert friday_evening == datetime(2030, 3, 11, 17, 0, tzinfo=PHOENIX)  # Monday
    _, saturday = rules.times_for(config, "resident_menu", at(9, 10, 0))
    assert saturday == datetime(2030, 3, 11, 17, 0, tzinfo=PHOENIX)


def test_backoff_then_quiet_hours(config: CallbacksConfig) -> None:
    window = standard(config)
    assert rules.retry_at(at(6, 10, 0), 1, config, window) == at(6, 10, 10)
    assert rules.retry_at(at(6, 10, 0), 2, config, window) == at(6, 10, 30)
    assert rules.retry_at(at(6, 10, 0), 5, config, window) == at(6, 10, 30)  # last repeats
    assert rules.retry_at(at(6, 20, 55), 1, config, window) == at(7, 8, 0)


def test_the_plan_gives_up_after_the_configured_attempts(config: CallbacksConfig) -> None:
    class Made:
        source = "resident_menu"

        def __init__(self, made: int) -> None:
            self.attempts_made = made

    plan = rules.retry_plan(config, at(6, 10, 0))
    assert plan(Made(1)) == at(6, 10, 10)
    assert plan(Made(2)) == at(6, 10, 30)
    assert plan(Made(3)) is None


def test_overdue_only_past_the_deadline() -> None:
    deadline = at(6, 17, 0)
    assert not rules.is_overdue(deadline, at(6, 17, 0))
    assert rules.is_overdue(deadline, at(6, 17, 1))
    assert not rules.is_overdue(None, at(6, 17, 1))


@pytest.mark.parametrize(
    ("status", "answered_by", "outcome"),
    [
        ("no-answer", None, CallOutcome.NO_ANSWER),
        ("busy", "", CallOutcome.BUSY),
        ("failed", None, CallOutcome.FAILED),
        ("canceled", None, CallOutcome.CANCELED),
        ("completed", "machine_end_beep", CallOutcome.MACHINE),
        ("completed", "fax", CallOutcome.MACHINE),
        ("completed", "human", CallOutcome.HUMAN),
        ("completed", "unknown", CallOutcome.HUMAN),
        ("exploded", None, CallOutcome.UNKNOWN),
    ],
)
def test_twilio_statuses_are_classified(
    status: str, answered_by: str | None, outcome: CallOutcome
) -> None:
    assert rules.outcome_of(status, answered_by) is outcome


def test_times_must_carry_a_time_zone(config: CallbacksConfig) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rules.in_window(datetime(2030, 3, 6, 10), standard(config), config.zone)


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "config"
    folder.mkdir()
    text = (REPO / "config" / "callbacks.yaml").read_text(encoding="utf-8")
    assert old in text
    (folder / "callbacks.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("deadline: 4h", "deadline: soon", "sources.queue_overflow.deadline"),
        (
            'standard: {start: "08:00", end: "21:00"}',
            'standard: {start: "21:00", end: "08:00"}',
            "windows.standard.end",
        ),
        ("max_attempts: 3", "max_attempts: 0", "attempts.max_attempts"),
        ("call_back_line: operator", "call_back_line: nobody", "call_back_line"),
        ("helper_type: navigator", "helper_type: astronaut", "sources.resident_menu.helper_type"),
        ("timezone: America/Phoenix", "timezone: Mars/Olympus", "timezone"),
        ("  clinician_follow_up:", "  clinician_follow_upp:", "sources"),
    ],
)
def test_a_mistake_in_callbacks_yaml_names_the_file_line_and_field(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    folder = _broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_callbacks(
            folder, "America/Phoenix", ("operator",), ("navigator", "embedded_clinician")
        )
    error = caught.value
    assert error.file.endswith("callbacks.yaml")
    assert error.line is not None
    assert error.field.startswith(message), str(error)


def test_a_missing_rules_file_stops_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_callbacks(tmp_path)
    shutil.rmtree(tmp_path)

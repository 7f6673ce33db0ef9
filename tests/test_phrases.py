"""What the line says back: digits, phone numbers and callback deadlines, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ivr.decisions.phrases import (
    all_phrase_names,
    phrase,
    spoken_deadline,
    spoken_digits,
    spoken_phone,
)

PHOENIX = ZoneInfo("America/Phoenix")
WEDNESDAY_NOON = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)  # 12:00 in Phoenix


def test_every_phrase_exists_in_english_and_spanish() -> None:
    for name in all_phrase_names():
        assert phrase(name, "en") and phrase(name, "es"), name


def test_references_and_numbers_are_read_digit_by_digit() -> None:
    assert spoken_digits("48190273") == "4 8 1 9 0 2 7 3"
    assert spoken_phone("5205550123") == "5 2 0, 5 5 5, 0 1 2 3"


def test_callback_deadlines_are_said_in_local_time() -> None:
    five_pm = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 17:00 Wednesday in Phoenix
    assert spoken_deadline(five_pm, WEDNESDAY_NOON, PHOENIX, "en") == "5 p.m. today"
    assert spoken_deadline(five_pm, WEDNESDAY_NOON, PHOENIX, "es") == "hoy a las 5 p.m."
    tomorrow = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)  # 8:30 Thursday
    assert spoken_deadline(tomorrow, WEDNESDAY_NOON, PHOENIX, "en") == "8:30 a.m. tomorrow"
    monday = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
    assert spoken_deadline(monday, WEDNESDAY_NOON, PHOENIX, "en") == "Monday at 12 p.m."
    assert spoken_deadline(monday, WEDNESDAY_NOON, PHOENIX, "es") == "el lunes a las 12 p.m."

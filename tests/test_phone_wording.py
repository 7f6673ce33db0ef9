"""What a resident hears, sentence by sentence: 911 before any choice, 9 at every prompt, a
plain word when they are passed to a person, and sentences that read right ("5 p.m.", not
"5 p.m..", and a capital at the start)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ivr.decisions.phrases import phrase, spoken_deadline
from ivr.simulator import Call
from tests.test_phrases import PHOENIX, WEDNESDAY_NOON

Place = Callable[..., Call]
EMERGENCY_LINE = "+15205550911"


def test_the_greeting_says_how_to_reach_911_before_the_language_choice_in_both_languages(
    call: Place,
) -> None:
    heard = call().heard_since_last()
    en_911 = heard.index("If this is an emergency, hang up and dial 9 1 1.")
    es_911 = heard.index("Si es una emergencia, cuelgue y marque el 9 1 1.")
    assert en_911 < heard.index("For English, press 1.")
    assert es_911 < heard.index("Para español, oprima 2.")


def _to_the_readback(call: Place) -> Call:
    c = call()
    c.press("1")
    c.press("5")
    c.press("2")  # another number than caller ID
    c.press("5205550188#")
    assert "You entered 5 2 0, 5 5 5, 0 1 8 8" in c.heard_since_last()
    return c


def test_9_at_the_number_confirmation_reaches_911(call: Place) -> None:
    c = _to_the_readback(call)
    c.press("9")
    assert c.dialed == [EMERGENCY_LINE]


def test_9_at_the_consent_question_reaches_911(call: Place) -> None:
    c = _to_the_readback(call)
    c.press("1")  # the number is right
    assert "Do you agree to receive this call?" in c.heard_since_last()
    c.press("9")
    assert c.dialed == [EMERGENCY_LINE]


@pytest.mark.parametrize("lang_key", ["1", "2"])
def test_a_third_invalid_callback_number_is_explained_and_passed_to_a_person(
    call: Place, lang_key: str
) -> None:
    lang = "en" if lang_key == "1" else "es"
    c = call()
    c.press(lang_key)
    c.press("5")
    c.press("2")
    for _ in range(2):
        c.press("123#")
        assert phrase("callback_invalid", lang) in c.heard_since_last()
    c.press("8765550123#")  # the third: a number outside the US and Canada
    heard = c.heard_since_last()
    assert phrase("callback_outside_us_canada", lang) in heard
    assert phrase("to_person", lang) in heard
    assert c.waiting_for == "Enqueue"


def test_a_deadline_ending_in_p_m_ends_the_sentence_once_in_both_languages() -> None:
    five_pm = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    for lang in ("en", "es"):
        when = spoken_deadline(five_pm, WEDNESDAY_NOON, PHOENIX, lang)
        text = phrase("callback_saved", lang, when=when)
        assert ("p.m.." not in text and text.endswith("p.m.")) or text.endswith("today.")
    monday = datetime(2026, 11, 30, 19, 0, tzinfo=UTC)
    text = phrase(
        "callback_saved", "en", when=spoken_deadline(monday, WEDNESDAY_NOON, PHOENIX, "en")
    )
    assert text.endswith("We will call you back by Monday at 12 p.m.")


def test_a_sentence_that_opens_with_a_name_starts_with_a_capital() -> None:
    assert phrase("line_unanswered", "en", name="the nurse advice line") == (
        "The nurse advice line did not answer."
    )
    assert phrase("line_unanswered", "es", name="la línea de enfermería") == (
        "La línea de enfermería no contestó."
    )

"""The self-service line as residents live it, played through the call simulator."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from ivr.simulator import Call
from ivr.store.tables import callbacks, self_service_events, service_requests
from tests.twiml_check import check_twiml

Place = Callable[..., Call]


def test_resident_hears_greeting_in_both_languages_and_chooses_spanish(call: Place) -> None:
    c = call()
    greeting = c.heard_since_last()
    assert "For English, press 1" in greeting and "Para español, oprima 2" in greeting
    c.press("2")
    assert "Para reportar un problema" in c.heard_since_last()
    root = check_twiml(c.last_xml)
    assert {el.get("language") for el in root.iter("Say", "Gather")} == {"es-US"}


def test_resident_files_a_pothole_report_and_hears_the_reference_digit_by_digit(
    call: Place, engine: sa.Engine
) -> None:
    c = call()
    c.press("1")  # English
    c.press("1")  # report
    assert "For a pothole or road damage, press 2" in c.heard_since_last()
    c.press("2")
    assert "After the tone" in c.heard_since_last()
    c.record(seconds=14)
    assert "Where is the problem?" in c.heard_since_last()
    c.speak("1200 North Stone Avenue.")
    assert "I heard: 1200 North Stone Avenue." in c.heard_since_last()
    c.press("1")
    heard = c.heard_since_last()
    with engine.connect() as conn:
        row = conn.execute(sa.select(service_requests)).one()
    assert row.category == "pothole" and row.language == "en"
    assert row.recording_status == "completed" and row.recording_duration == 14
    assert row.address == "1200 North Stone Avenue"
    spoken = " ".join(row.reference)
    assert f"Your reference number is {spoken}" in heard
    c.press("1")
    assert f"Your reference number is {spoken}" in c.heard_since_last()


def test_twilio_retrying_the_recording_webhook_files_one_report(
    signed_post, engine: sa.Engine
) -> None:
    data = {
        "RecordingSid": "RE" + "a" * 32,
        "RecordingUrl": "https://api.twilio.com/x/Recordings/REa",
        "RecordingDuration": "9",
    }
    first = signed_post("/voice/self-service/report/recorded?lang=en&cat=noise", data)
    second = signed_post("/voice/self-service/report/recorded?lang=en&cat=noise", data)
    assert first.status_code == second.status_code == 200
    assert first.data == second.data
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(service_requests)).scalar() == 1


def test_resident_says_nothing_at_the_recording_and_is_asked_again_then_sent_to_a_person(
    call: Place,
) -> None:
    c = call()
    c.press("1")
    c.press("1")
    c.press("5")
    c.silence()
    assert "I did not hear a description" in c.heard_since_last()
    c.silence()
    c.silence()
    assert "connect you to a person" in c.heard_since_last()
    assert c.waiting_for == "Enqueue"


def test_resident_presses_a_key_that_is_not_a_choice_and_is_asked_again(call: Place) -> None:
    c = call()
    c.press("1")
    c.heard_since_last()
    c.press("7")
    heard = c.heard_since_last()
    assert "Sorry, 7 is not one of the choices" in heard
    assert "To report a non-emergency problem, press 1" in heard


def test_silence_is_asked_again_then_the_caller_goes_to_a_person_never_hung_up_on(
    call: Place,
) -> None:
    c = call()
    c.press("1")
    c.silence()
    assert "I did not hear a choice" in c.heard_since_last()
    c.silence()
    c.silence()
    assert "connect you to a person" in c.heard_since_last()
    assert c.waiting_for == "Enqueue" and not c.ended


def test_crisis_words_at_the_main_menu_go_straight_to_988(call: Place, engine: sa.Engine) -> None:
    c = call()
    c.press("1")
    c.speak("I just want to kill myself")
    assert "connecting you to the nine eight eight crisis line" in c.heard_since_last()
    assert c.dialed == ["+15205550988"]
    with engine.connect() as conn:
        events = conn.execute(
            sa.select(self_service_events.c.event, self_service_events.c.detail)
        ).all()
    assert ("crisis_words", "crisis_988") in [tuple(e) for e in events]


def test_spanish_crisis_words_at_the_language_prompt_go_to_911(call: Place) -> None:
    c = call()
    c.speak("mi hermano tiene una pistola")
    assert c.dialed == ["+15205550911"]


def test_emergency_is_one_key_away_in_every_menu(app, signed_post) -> None:
    config = app.extensions["bridgeline"].config
    for menu_id, menu in config.menus.menus.items():
        emergency_keys = [item.key for item in menu.items if item.action == "emergency"]
        assert emergency_keys, menu_id
        response = signed_post(
            f"/voice/self-service/menu/{menu_id}/choose?lang=en", {"Digits": emergency_keys[0]}
        )
        root = check_twiml(response.data)
        assert [n.text for n in root.iter("Number")] == ["+15205550911"], menu_id


def test_resident_asks_for_hours_by_text_and_the_worker_sends_it(
    call: Place, run_jobs, twilio_api, engine
) -> None:
    c = call()
    c.press("1")
    c.press("3")
    c.press("1")
    assert "open Monday to Friday" in c.heard_since_last()
    c.press("1")
    assert "We are sending a text message" in c.heard_since_last()
    sent = twilio_api.post(
        "https://api.twilio.com/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json",
        json={"sid": "SM" + "1" * 32, "status": "queued"},
        status=201,
    )
    assert run_jobs() == 1
    from urllib.parse import parse_qs

    body = parse_qs(sent.calls[0].request.body)
    assert body == {
        "To": ["+15205550123"],
        "From": ["+15205550100"],
        "Body": ["City offices: Mon-Fri 8am-5pm. Non-emergency line: 24/7."],
    }
    run_jobs()  # the same job again sends nothing more
    assert sent.call_count == 1


def test_resident_transfers_to_the_nurse_line_and_no_one_answers(call: Place) -> None:
    c = call()
    c.press("1")
    c.press("4")
    c.press("1")
    assert "Connecting you to the nurse advice line" in c.heard_since_last()
    assert c.dialed == ["+15205550140"]
    c.answer_dial("no-answer")
    heard = c.heard_since_last()
    assert "The nurse advice line did not answer." in heard
    assert c.waiting_for == "Enqueue"


def test_caller_waits_for_an_agent_hears_their_place_and_takes_a_callback_instead(
    call: Place, engine: sa.Engine
) -> None:
    c = call()
    c.press("1")
    c.press("0")
    heard = c.heard_since_last()
    assert "You are number 1 in line" in heard
    assert "call you back" not in heard
    c.keep_waiting()
    c.keep_waiting()
    assert "To have us call you back instead of waiting, press 1" in c.heard_since_last()
    c.press("1")
    assert "We can call you back at 5 2 0, 5 5 5, 0 1 2 3" in c.heard_since_last()
    c.press("1")
    assert "Do you agree to receive this call" in c.heard_since_last()
    c.press("1")
    assert "Your call back request is saved" in c.heard_since_last()
    with engine.connect() as conn:
        row = conn.execute(sa.select(callbacks)).one()
    assert (row.source, row.status, row.consent, row.phone_number) == (
        "queue_overflow",
        "pending",
        True,
        "+15205550123",
    )


def _file_report(call: Place, engine: sa.Engine) -> str:
    c = call()
    c.press("1")
    c.press("1")
    c.press("3")
    c.record()
    with engine.connect() as conn:
        return conn.execute(sa.select(service_requests.c.reference)).scalar_one()


def test_resident_checks_a_report_by_its_reference_number(call: Place, engine: sa.Engine) -> None:
    reference = _file_report(call, engine)
    c = call()
    c.press("1")
    c.press("2")
    assert "enter your 8 digit reference number" in c.heard_since_last()
    c.press(reference + "#")
    heard = c.heard_since_last()
    assert f"Report {' '.join(reference)}, for noise, has been received" in heard


def test_resident_enters_an_unknown_reference_hears_it_plainly_and_is_asked_again(
    call: Place,
) -> None:
    c = call()
    c.press("1")
    c.press("2")
    c.press("12345678#")
    heard = c.heard_since_last()
    assert "I could not find a report with the number 1 2 3 4 5 6 7 8" in heard
    assert "enter your 8 digit reference number" in heard
    c.press("12#")
    assert "A reference number has 8 digits" in c.heard_since_last()
    c.press("99999999#")
    assert "connect you to a person" in c.heard_since_last()


def _utc(moment):
    """SQLite hands back naive UTC datetimes; PostgreSQL aware ones."""
    from datetime import UTC

    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_resident_presses_5_enters_a_bad_number_and_is_asked_again(
    call: Place, engine: sa.Engine, app
) -> None:
    c = call()
    c.press("1")
    c.press("5")
    c.press("2")  # a different number
    assert "enter the 10 digit phone number" in c.heard_since_last()
    c.press("123#")
    heard = c.heard_since_last()
    assert "That is not a valid phone number" in heard
    assert "enter the 10 digit phone number" in heard
    c.press("9005550100#")
    assert "We cannot call numbers that charge a fee" in c.heard_since_last()
    c.press("5205550188#")
    assert "You entered 5 2 0, 5 5 5, 0 1 8 8" in c.heard_since_last()
    c.press("1")
    c.press("1")
    assert "Your call back request is saved. We will call you back by " in c.heard_since_last()
    with engine.connect() as conn:
        row = conn.execute(sa.select(callbacks)).one()
    # The promise follows callbacks.yaml's rule for resident requests (end of the business day).
    from ivr.decisions.callback_rules import times_for
    from ivr.voice.callback_routes import line_of

    rules = line_of(app).config
    assert _utc(row.deadline_at) == times_for(rules, "resident_menu", _utc(row.consent_at))[1]
    assert (row.phone_number, row.status, row.consent, row.source) == (
        "+15205550188",
        "pending",
        True,
        "resident_menu",
    )
    assert row.deadline_at is not None and row.consent_at is not None


def test_a_number_outside_north_america_is_refused_with_the_reason(signed_post) -> None:
    response = signed_post(
        "/voice/self-service/callback/entered?lang=en&src=resident_menu", {"Digits": "33123456789"}
    )
    assert b"only call back numbers in the United States and Canada" in response.data


def test_a_withheld_caller_id_is_asked_for_a_number(call: Place) -> None:
    c = call(from_number="anonymous")
    c.press("1")
    c.press("5")
    heard = c.heard_since_last()
    assert "We cannot call back the number you are calling from" in heard
    assert "enter the 10 digit phone number" in heard


def test_resident_who_does_not_consent_is_not_called_and_goes_to_a_person(
    call: Place, engine: sa.Engine
) -> None:
    c = call()
    c.press("1")
    c.press("5")
    c.press("1")
    c.press("2")
    heard = c.heard_since_last()
    assert "We will not call you back" in heard and "connect you to a person" in heard
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(callbacks.c.status)).scalars().all()
    assert statuses == ["draft"]


def test_spanish_resident_asks_for_a_callback_in_spanish(call: Place, engine: sa.Engine) -> None:
    c = call()
    c.press("2")
    c.press("5")
    assert "Podemos devolverle la llamada al 5 2 0, 5 5 5, 0 1 2 3" in c.heard_since_last()
    c.speak("sí")
    c.press("1")
    assert "Su solicitud quedó guardada" in c.heard_since_last()
    with engine.connect() as conn:
        assert conn.execute(sa.select(callbacks.c.language)).scalar_one() == "es"


def test_spoken_menu_choice_and_spoken_number_words(call: Place) -> None:
    c = call()
    c.speak("English")
    c.speak("I'd like information please")
    assert "For office hours, press 1" in c.heard_since_last()
    c.speak("two")
    assert "City Hall is at 255 West Alameda Street" in c.heard_since_last()


def test_caller_presses_9_at_the_information_prompt_and_reaches_911(call: Place) -> None:
    c = call()
    c.press("1")
    c.press("3")
    c.press("2")
    c.press("9")
    assert c.dialed == ["+15205550911"]
    c.answer_dial("failed")
    heard = c.heard_since_last()
    assert "hang up and dial 9 1 1 now" in heard
    assert c.dialed[-1] == "+15205550311"

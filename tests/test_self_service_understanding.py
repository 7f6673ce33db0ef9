"""Residents talk to the self-service line in sentences, in English and Spanish; callers in
crisis are heard at every prompt, a failed crisis transfer never reaches the 311 queue, and
recorded reports are transcribed and screened. Real signed posts, TwiML checked against the XSD.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.config.program import ProgramConfig, QASettings
from ivr.reporting import qa
from ivr.reporting.measures import Filters
from ivr.reporting.qa import QAReason
from ivr.simulator import Call
from ivr.store.qa_tags import qa_tags, tags_of
from ivr.store.tables import callbacks, self_service_events, service_requests
from tests.dashboard_fixtures import program
from tests.twiml_check import check_twiml

FIXTURES = (program,)
"""Fixtures this module uses from tests/dashboard_fixtures.py (pytest finds them here)."""

Place = Callable[..., Call]
SID = "CA" + "f" * 32
CRISIS_988 = "+15205550988"
BACKUP_988 = "+15205550989"
EMERGENCY = "+15205550911"


def _numbers(body: bytes) -> list[str]:
    return [(n.text or "").strip() for n in check_twiml(body).iter("Number")]


def _said(body: bytes) -> str:
    return " ".join((s.text or "") for s in check_twiml(body).iter("Say"))


def _events(engine: sa.Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(self_service_events.c.event, self_service_events.c.detail).order_by(
                self_service_events.c.id
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


# ------------------------------------------------------------------ sentences, not keywords


def test_asking_for_someone_reaches_a_person_not_the_reference_number_prompt(call: Place) -> None:
    c = call()
    c.press("1")
    c.speak("I'd like to speak to someone")
    assert "reference number" not in c.heard_since_last()
    assert c.waiting_for == "Enqueue"


def test_calling_for_my_mother_is_asked_again_not_sent_to_the_health_menu(call: Place) -> None:
    c = call()
    c.press("1")
    c.speak("I'm calling for my mother")
    heard = c.heard_since_last()
    assert "did not understand" in heard and "Health and crisis help" not in heard


def test_a_spanish_pothole_sentence_files_a_pothole_report(call: Place, engine: sa.Engine) -> None:
    c = call()
    c.press("2")
    c.speak("hay un bache enorme en mi calle")
    assert "describa el problema" in c.heard_since_last() or "tono" in c.heard
    c.record(seconds=9)
    with engine.connect() as conn:
        row = conn.execute(sa.select(service_requests)).one()
    assert (row.category, row.language) == ("pothole", "es")


def test_checking_on_a_report_is_not_filing_a_new_one(call: Place) -> None:
    c = call()
    c.press("1")
    c.speak("I want to check on my report")
    assert "reference number" in c.heard_since_last()


def test_a_question_about_hours_is_answered_at_once(call: Place) -> None:
    c = call()
    c.press("1")
    c.speak("what time does city hall open")
    assert "Monday to Friday" in c.heard_since_last()


def test_the_category_prompt_understands_words(call: Place, engine: sa.Engine) -> None:
    c = call()
    c.press("1")
    c.press("1")
    c.speak("pothole")
    c.record(seconds=5)
    with engine.connect() as conn:
        assert conn.execute(sa.select(service_requests.c.category)).scalar_one() == "pothole"


def test_a_sentence_at_the_greeting_picks_spanish_and_what_was_asked(call: Place) -> None:
    c = call()
    c.speak("necesito hablar con una persona")
    root = check_twiml(c.last_xml)
    assert {el.get("language") for el in root.iter("Say")} == {"es-US"}
    assert c.waiting_for == "Enqueue"


def test_a_language_named_with_a_request_at_the_greeting_goes_straight_there(
    call: Place, engine: sa.Engine
) -> None:
    c = call()
    c.speak("español por favor, hay un bache enorme en mi calle")
    root = check_twiml(c.last_xml)
    assert {el.get("language") for el in root.iter("Say")} == {"es-US"}
    assert c.waiting_for == "Record"  # the pothole report, no menu in between
    c.record(seconds=5)
    with engine.connect() as conn:
        row = conn.execute(sa.select(service_requests.c.category, service_requests.c.language))
        assert tuple(row.one()) == ("pothole", "es")


def test_low_confidence_speech_is_confirmed_not_guessed(signed_post) -> None:
    asked = signed_post(
        "/voice/self-service/menu/main/choose?lang=en",
        {"SpeechResult": "I want to report something", "Confidence": "0.21"},
    )
    assert "I think you said: To report a non-emergency problem" in _said(asked.data)
    action = check_twiml(asked.data).find("Gather").get("action")
    path = action.replace("https://bridgeline.example.org", "")
    yes = signed_post(path, {"Digits": "1"})
    assert "What would you like to report?" in _said(yes.data)
    no = signed_post(path, {"SpeechResult": "no"})
    assert "let's try again" in _said(no.data) and "To report a non-emergency problem" in _said(
        no.data
    )


# ------------------------------------------------------------------ crisis at every prompt

PROMPTS = [
    "/voice/self-service/menu/main/choose?lang=en",
    "/voice/self-service/menu/information/choose?lang=en",
    "/voice/self-service/report/category?lang=en",
    "/voice/self-service/report/after?lang=en&ref=12345678",
    "/voice/self-service/status/check?lang=en",
    "/voice/self-service/info/hours/choose?lang=en",
    "/voice/self-service/after?lang=en",
    "/voice/self-service/callback/caller-id?lang=en&src=resident_menu",
    "/voice/self-service/callback/entered?lang=en&src=resident_menu",
    "/voice/self-service/callback/confirm?lang=en&src=resident_menu",
    "/voice/self-service/callback/consent?lang=en&src=resident_menu",
    "/voice/self-service/menu/main/confirm?lang=en&item=1",
    "/voice/self-service/crisis/offer?lang=en&rule=1",
]


CRISIS_SAID = [
    ("my son says he wants to kill himself", CRISIS_988, "nine eight eight crisis line"),
    ("I think my friend overdosed", EMERGENCY, "nine one one"),
    ("me quiero matar", CRISIS_988, "línea de crisis"),
    ("le dispararon a mi vecino", EMERGENCY, "nueve uno uno"),
    # Asking for help to come is an emergency at every prompt, not "I didn't understand".
    ("please send the police, he's back", EMERGENCY, "nine one one"),
    ("necesito una ambulancia en la calle Roble", EMERGENCY, "nueve uno uno"),
]


@pytest.mark.parametrize("path", PROMPTS)
def test_crisis_words_at_any_prompt_go_straight_to_the_line(signed_post, path: str) -> None:
    for said, number, explained in CRISIS_SAID:
        response = signed_post(path, {"SpeechResult": said, "Confidence": "0.9"})
        assert _numbers(response.data) == [number], (path, said)
        assert explained in _said(response.data), (path, said)


def test_a_crisis_in_words_no_phrase_has_is_heard_by_the_learned_reader(
    signed_post, engine: sa.Engine
) -> None:
    # "He dejado cartas para mis hijos": no crisis phrase in menus.yaml; examples.yaml taught it.
    said = "he dejado cartas para mis hijos, ya no van a tener que preocuparse por mí"
    response = signed_post("/voice/self-service/menu/main/choose?lang=es", {"SpeechResult": said})
    root = check_twiml(response.data)
    assert _numbers(response.data) == [CRISIS_988]
    assert "línea de crisis" in _said(response.data)
    assert {el.get("language") for el in root.iter("Say")} == {"es-US"}
    # No QA phrase was said, yet the call is tagged for behavioral-health review.
    assert "behavioral_health" in tags_of(engine, "call", SID)
    consent = signed_post(
        "/voice/self-service/callback/consent?lang=en&src=resident_menu",
        {
            "SpeechResult": "I've been putting aside my pills for weeks and tonight I'm taking them all"
        },
    )
    assert _numbers(consent.data) == [CRISIS_988]


def test_crisis_words_at_the_greeting_are_answered_in_their_language(signed_post) -> None:
    response = signed_post("/voice/self-service/language", {"SpeechResult": "me quiero matar"})
    root = check_twiml(response.data)
    assert _numbers(response.data) == [CRISIS_988]
    assert "No está solo" in _said(response.data)
    assert {el.get("language") for el in root.iter("Say")} == {"es-US"}
    english = signed_post("/voice/self-service/language", {"SpeechResult": "I want to die"})
    assert "You are not alone" in _said(english.data)


def test_crisis_words_while_waiting_in_the_queue_leave_it_for_the_crisis_line(
    call: Place, engine: sa.Engine
) -> None:
    c = call()
    c.press("1")
    c.press("0")
    assert c.waiting_for == "Enqueue"
    gather = check_twiml(c.last_xml).find("Gather")
    assert gather is not None and gather.get("input") == "dtmf speech"
    assert gather.find("Play") is not None  # the hold music plays while it listens
    c.speak("my husband swallowed a whole bottle of pills")
    assert c.dialed == [EMERGENCY]
    assert "connecting you to nine one one" in c.heard_since_last()
    assert ("transfer", "emergency") in _events(engine)


def test_hedged_words_are_offered_the_line_and_one_key_connects(signed_post) -> None:
    offered = signed_post(
        "/voice/self-service/menu/main/choose?lang=en",
        {"SpeechResult": "I'm not going to kill myself, I just need to talk"},
    )
    assert "It sounds like you may need the nine eight eight crisis line" in _said(offered.data)
    assert _numbers(offered.data) == []
    action = check_twiml(offered.data).find("Gather").get("action")
    path = action.replace("https://bridgeline.example.org", "")
    assert _numbers(signed_post(path, {"Digits": "1"}).data) == [CRISIS_988]
    assert "To report a non-emergency problem" in _said(signed_post(path, {"Digits": "2"}).data)
    silence_twice = signed_post(path.replace("attempt=0", "attempt=1"), {})
    assert _numbers(silence_twice.data) == [CRISIS_988]


@pytest.mark.parametrize(
    "said", ["this traffic light is killing me", "me muero de hambre", "my phone died"]
)
def test_idioms_are_not_crises(signed_post, said: str) -> None:
    response = signed_post("/voice/self-service/menu/main/choose?lang=en", {"SpeechResult": said})
    assert _numbers(response.data) == []
    assert "It sounds like" not in _said(response.data)
    assert "not alone" not in _said(response.data)


# ------------------------------------------------------------------ a failed crisis transfer


def test_an_unanswered_988_goes_down_the_backup_chain_never_to_the_queue(
    call: Place, engine: sa.Engine, program: ProgramConfig
) -> None:
    c = call()
    c.press("1")
    c.speak("I want to kill myself")
    assert c.dialed == [CRISIS_988]
    c.answer_dial("no-answer")
    assert c.dialed == [CRISIS_988, BACKUP_988]
    assert "did not answer" in c.heard_since_last()
    c.answer_dial("busy")
    assert c.dialed == [CRISIS_988, BACKUP_988, EMERGENCY]
    assert c.waiting_for == "Dial"
    c.answer_dial("failed")
    assert "Enqueue" not in c.last_xml.decode()
    failures = [d for e, d in _events(engine) if e == "crisis_transfer_failed"]
    assert failures == ["crisis_988:no-answer", "crisis_988_backup:busy", "emergency:failed"]
    now = datetime.now(UTC)
    prog = program.model_copy(update={"qa": QASettings(random_sample_rate=0.0)})
    qa.refresh_queue(engine, prog, now - timedelta(days=1), now + timedelta(days=1), now)
    items = qa.list_queue(
        engine, prog, Filters(now - timedelta(days=1), now + timedelta(days=1)), reviewed=None
    )
    assert [(i.ref, i.reason) for i in items] == [(c.call_sid, QAReason.CRISIS_TRANSFER_FAILED)]


def test_the_988_answering_ends_the_call_without_any_backup(call: Place) -> None:
    c = call()
    c.press("1")
    c.speak("quiero morir")
    c.answer_dial("completed")
    assert c.dialed == [CRISIS_988] and c.ended


# ------------------------------------------------------------------ recordings transcribed


def _file_report(call: Place, engine: sa.Engine) -> Any:
    c = call()
    c.press("1")
    c.press("1")
    c.press("3")
    record = check_twiml(c.last_xml).find("Record")
    assert record is not None and record.get("transcribe") == "true"
    assert "/report/transcription" in record.get("transcribeCallback", "")
    c.record(seconds=20)
    with engine.connect() as conn:
        return conn.execute(sa.select(service_requests)).one()


def test_a_recorded_report_with_crisis_words_is_urgent_and_gets_an_urgent_callback(
    call: Place, signed_post, engine: sa.Engine, program: ProgramConfig, caplog
) -> None:
    report = _file_report(call, engine)
    words = "the music is loud and honestly I can't do this anymore, I'm going to end it"
    response = signed_post(
        "/voice/self-service/report/transcription?lang=en",
        {
            "CallSid": report.call_sid,
            "RecordingSid": report.recording_sid,
            "TranscriptionSid": "TR" + "1" * 32,
            "TranscriptionText": words,
            "TranscriptionStatus": "completed",
        },
    )
    assert response.status_code == 200
    with engine.connect() as conn:
        saved = conn.execute(sa.select(service_requests)).one()
        callback = conn.execute(sa.select(callbacks)).one()
    assert saved.urgent is True and saved.transcript == words
    assert saved.transcript_status == "completed"
    assert (callback.source, callback.status, callback.consent) == (
        "urgent_report",
        "pending",
        False,
    )
    assert callback.phone_number == "+15205550123"
    assert "suicide_self_harm" in tags_of(engine, "call", report.call_sid)
    assert "end it" not in caplog.text and "do this anymore" not in caplog.text
    now = datetime.now(UTC)
    prog = program.model_copy(update={"qa": QASettings(random_sample_rate=0.0)})
    qa.refresh_queue(engine, prog, now - timedelta(days=1), now + timedelta(days=1), now)
    window = Filters(now - timedelta(days=1), now + timedelta(days=1))
    reasons = {i.reason for i in qa.list_queue(engine, prog, window, reviewed=None)}
    assert QAReason.URGENT_REPORT in reasons
    assert qa.list_queue(engine, prog, window, reviewed=None, tag="suicide_self_harm")
    assert qa.list_queue(engine, prog, window, reviewed=None, tag="housing_food") == []


def test_an_everyday_transcript_is_stored_and_not_urgent(
    call: Place, signed_post, engine: sa.Engine
) -> None:
    report = _file_report(call, engine)
    data = {
        "CallSid": report.call_sid,
        "RecordingSid": report.recording_sid,
        "TranscriptionText": "the neighbors play loud music every night after midnight",
        "TranscriptionStatus": "completed",
    }
    signed_post("/voice/self-service/report/transcription?lang=en", data)
    signed_post("/voice/self-service/report/transcription?lang=en", data)  # Twilio retried
    with engine.connect() as conn:
        saved = conn.execute(sa.select(service_requests)).one()
        assert conn.execute(sa.select(sa.func.count()).select_from(callbacks)).scalar() == 0
    assert saved.urgent is False and saved.transcript.startswith("the neighbors")


def test_speech_at_the_menus_tags_the_call_for_qa(signed_post, engine: sa.Engine) -> None:
    signed_post(
        "/voice/self-service/menu/main/choose?lang=en",
        {"SpeechResult": "my mother lives alone and is not answering, I'm worried about her"},
    )
    assert tags_of(engine, "call", SID) == ["welfare_check"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(qa_tags.c.source)).scalar_one() == "speech"


def test_a_handoff_reason_is_tagged_for_qa(app, engine: sa.Engine) -> None:
    from ivr.decisions.handoffs import Origin
    from ivr.flows import handoffs

    with app.app_context():
        handoffs.open_live_call(
            engine,
            call_sid=SID,
            origin=Origin.INTAKE,
            callback_number="+15205550123",
            call_taker_staff_id=None,
            now=datetime.now(UTC),
        )
        handoff = handoffs.start_handoff(
            engine,
            app.extensions["bridgeline"].queues,
            call_sid=SID,
            call_taker_staff_id=None,
            helper_type="embedded_clinician",
            answers={},
            reason="caller's son took too much fentanyl last week, now talking about suicide",
        )
    assert tags_of(engine, "handoff", str(handoff.id)) == ["substance_use", "suicide_self_harm"]


# ------------------------------------------------------------------ street names are not crises


def _at_the_address_prompt(call: Place, lang_key: str = "1") -> Call:
    c = call()
    c.press(lang_key)  # language
    c.press("1")  # report
    c.press("2")  # pothole
    c.record(seconds=9)
    return c


@pytest.mark.parametrize(
    ("said", "lang_key", "read_back"),
    [
        ("Gun Club Road.", "1", "I heard: Gun Club Road."),
        ("1400 Gun Club Rd", "1", "I heard: 1400 Gun Club Rd."),
        ("2200 Shooting Star Lane", "1", "I heard: 2200 Shooting Star Lane."),
        ("on Gun Club Road and Main Street", "1", "I heard: on Gun Club Road and Main Street."),
        ("calle Pistola 12", "2", "calle Pistola 12"),
    ],
)
def test_a_street_named_like_a_crisis_word_is_an_address_not_an_emergency(
    call: Place, said: str, lang_key: str, read_back: str
) -> None:
    c = _at_the_address_prompt(call, lang_key)
    c.speak(said)
    assert read_back in c.heard_since_last()
    assert c.dialed == []


def test_a_weapon_named_at_the_address_prompt_still_reaches_911(call: Place) -> None:
    c = _at_the_address_prompt(call)
    c.speak("1400 Gun Club Road, a man out here has a gun")
    assert c.dialed == [EMERGENCY]
    c = _at_the_address_prompt(call)
    c.speak("he has a gun")
    assert c.dialed == [EMERGENCY]
    c = _at_the_address_prompt(call, "2")
    c.speak("calle Pistola 12, le dispararon a mi vecino")
    assert c.dialed == [EMERGENCY]

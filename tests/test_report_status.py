"""A report's status as the resident lives it: the phone says the status, the city's note and
when it changed, in their language; a resident who asked gets one text per change, never
during quiet hours (8 a.m. to 9 p.m. in the program's time zone)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import workers.sms
from ivr.flows.self_service import is_skip, spoken_address
from ivr.simulator import Call
from ivr.store import service_requests
from ivr.store.service_requests import Notify, RequestStatus
from ivr.store.tables import outbound_sms, service_request_changes
from ivr.store.tables import service_requests as requests_table

Place = Callable[..., Call]
PHOENIX = ZoneInfo("America/Phoenix")
MESSAGES_URL = (
    "https://api.twilio.com/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json"
)


def file_by_phone(call: Place, engine: sa.Engine, lang_key: str = "1", text: bool = True) -> str:
    """A resident reports a streetlight, says where, and (if `text`) asks for texts."""
    c = call()
    c.press(lang_key)
    c.press("1")
    c.press("1")  # streetlight
    c.record(seconds=8)
    c.speak("Fourth Avenue and Ninth Street")
    c.press("1")
    if text:
        c.press("2")
        assert ("text message" in c.heard_since_last()) or lang_key == "2"
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(requests_table.c.reference).order_by(requests_table.c.id.desc())
            ).scalar()
        )


def change(engine: sa.Engine, reference: str, status: RequestStatus, note: str | None) -> int:
    found = service_requests.find_by_reference(engine, reference)
    assert found is not None
    return service_requests.change(
        engine,
        found.id,
        actor="staff:4101",
        status=status,
        public_note=note,
        internal_note="crew 7 has it",
        assigned_to="Transportation",
    ).id


def check_status(call: Place, reference: str, lang_key: str = "1") -> str:
    c = call()
    c.press(lang_key)
    c.press("2")
    c.press(reference)
    return c.heard_since_last()


def at_local(hour: int, minute: int = 0) -> datetime:
    today = datetime.now(PHOENIX).date()
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=PHOENIX)


def test_a_second_call_hears_the_new_status_its_note_and_when_it_changed(
    call: Place, engine: sa.Engine
) -> None:
    reference = file_by_phone(call, engine, text=False)
    heard = check_status(call, reference)
    assert "has been received and is waiting to be reviewed" in heard
    change(engine, reference, RequestStatus.IN_PROGRESS, "A crew is scheduled for Thursday.")
    heard = check_status(call, reference)
    assert "for a streetlight or traffic signal, is being worked on." in heard
    assert "The city's note: A crew is scheduled for Thursday." in heard
    assert "This was last updated today at" in heard
    assert "crew 7" not in heard  # the internal note stays with staff


def test_a_spanish_caller_hears_the_status_in_spanish(call: Place, engine: sa.Engine) -> None:
    reference = file_by_phone(call, engine, lang_key="2", text=False)
    change(engine, reference, RequestStatus.RESOLVED, None)
    heard = check_status(call, reference, lang_key="2")
    assert "sobre un poste de luz o semáforo, fue resuelto." in heard
    assert "Esto se actualizó por última vez hoy a la" in heard


def test_the_resident_who_asked_gets_one_text_per_change_in_the_daytime(
    call: Place, engine: sa.Engine, run_jobs, twilio_api, queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = file_by_phone(call, engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(requests_table)).one()
    assert row.notify_sms and row.notify_consent_at is not None
    monkeypatch.setattr(workers.sms, "_now", lambda: at_local(10))
    sent = twilio_api.post(MESSAGES_URL, json={"sid": "SM" + "2" * 32}, status=201)
    change_id = change(engine, reference, RequestStatus.IN_PROGRESS, "Crew on the way.")
    queues.enqueue("default", "workers.report_texts.record_status_text", change_id)
    queues.enqueue("default", "workers.report_texts.record_status_text", change_id)  # twice
    run_jobs()
    assert sent.call_count == 1
    body = parse_qs(sent.calls[0].request.body)
    assert body["To"] == ["+15205550123"]
    assert body["Body"] == [
        f"City 311: your report {reference} (a streetlight or traffic signal) is being worked on."
        " Note: Crew on the way. Reply STOP to stop these texts."
    ]
    queues.enqueue("default", "workers.report_texts.sweep_report_texts")
    queues.enqueue("default", "workers.sms.sweep_sms")
    run_jobs()
    assert sent.call_count == 1  # the sweeps find nothing left to send
    # a second change is a second text
    second = change(engine, reference, RequestStatus.RESOLVED, None)
    queues.enqueue("default", "workers.report_texts.record_status_text", second)
    run_jobs()
    assert sent.call_count == 2
    assert "has been resolved" in parse_qs(sent.calls[1].request.body)["Body"][0]


def test_a_change_at_night_is_texted_after_8_am(
    call: Place, engine: sa.Engine, run_jobs, twilio_api, queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = file_by_phone(call, engine, lang_key="2")
    monkeypatch.setattr(workers.sms, "_now", lambda: at_local(21, 30))
    change_id = change(engine, reference, RequestStatus.RESOLVED, "Bombilla cambiada.")
    queues.enqueue("default", "workers.report_texts.record_status_text", change_id)
    run_jobs()  # Twilio is not called: an unexpected request would fail the test
    with engine.connect() as conn:
        text = conn.execute(sa.select(outbound_sms)).one()
    assert text.status == "pending" and text.quiet_hours
    assert text.body.startswith(f"Ciudad 311: su reporte {reference} (un poste de luz")
    assert "fue resuelto. Nota: Bombilla cambiada." in text.body
    monkeypatch.setattr(workers.sms, "_now", lambda: at_local(6, 59))
    queues.enqueue("default", "workers.sms.sweep_sms")
    run_jobs()
    sent = twilio_api.post(MESSAGES_URL, json={"sid": "SM" + "3" * 32}, status=201)
    monkeypatch.setattr(workers.sms, "_now", lambda: at_local(8, 1))
    queues.enqueue("default", "workers.sms.sweep_sms")
    run_jobs()
    assert sent.call_count == 1


def test_no_consent_no_text_and_a_note_only_change_sends_none(
    call: Place, engine: sa.Engine, run_jobs, queues
) -> None:
    reference = file_by_phone(call, engine, text=False)
    first = change(engine, reference, RequestStatus.IN_PROGRESS, "Scheduled.")
    queues.enqueue("default", "workers.report_texts.record_status_text", first)
    run_jobs()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbound_sms)).scalar() == 0
        notify = conn.execute(sa.select(service_request_changes.c.notify)).scalar()
    assert notify == Notify.NONE.value


def test_the_address_step_understands_skip_and_tidies_what_it_heard() -> None:
    assert is_skip("Skip.") and is_skip("saltar") and not is_skip("Skipper Lane")
    assert spoken_address("  1200 North  Stone Avenue. ") == "1200 North Stone Avenue"
    assert spoken_address("") is None and spoken_address(None) is None
    assert spoken_address("x" * 500) == "x" * 400


def test_a_caller_who_says_no_twice_is_asked_again_then_moves_on(
    call: Place, engine: sa.Engine
) -> None:
    c = call()
    c.press("1")
    c.press("1")
    c.press("3")
    c.record()
    c.speak("Main Street")
    c.speak("no")
    assert "Where is the problem?" in c.heard_since_last()
    c.speak("Congress Street")
    c.press("2")
    c.speak("Broadway")
    c.press("2")
    heard = c.heard_since_last()
    assert "We will use your description to find the place." in heard
    assert "Your reference number is" in heard
    with engine.connect() as conn:
        assert conn.execute(sa.select(requests_table.c.address)).scalar() is None


def test_crisis_words_at_the_address_question_go_straight_to_help(call: Place) -> None:
    c = call()
    c.press("1")
    c.press("1")
    c.press("3")
    c.record()
    c.speak("there is a man with a gun outside")
    assert "connecting you to nine one one" in c.heard_since_last()
    assert c.dialed == ["+15205550911"]


def test_status_changes_are_in_the_audit_trail_without_the_notes(engine: sa.Engine, call) -> None:
    from ivr.store import audit

    reference = file_by_phone(call, engine, text=False)
    change(engine, reference, RequestStatus.CLOSED, "Duplicate of 12345678.")
    (entry,) = [e for e in audit.entries(engine) if e.action == "service_request.change"]
    assert entry.actor == "staff:4101" and entry.subject == f"service_request:{reference}"
    assert '"to":"closed"' in entry.details and "Duplicate" not in entry.details
    assert audit.verify(engine).intact

# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""The transfer desk as call-takers live it: sign in by keypad, walk the tree, hear who is on duty,
and put the caller in a conference. Played through the call simulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.accounts import Staff
from ivr.flows import handoffs
from ivr.flows.desk import TransferDesk
from ivr.simulator import Call
from ivr.store.handoff_tables import desk_sign_in_failures, handoff_events, live_calls
from ivr.store.handoff_tables import handoffs as handoffs_table
from tests.conftest import PUBLIC_BASE
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    CALL_TAKER_ID,
    CALL_TAKER_PIN,
    PSAP_LINE,
    WEDNESDAY_8AM,
    WEDNESDAY_11AM,
    call_taker,
    desk,
)
from tests.twiml_check import check_twiml

Place = Callable[..., Call]
DESK = "/voice/transfer-desk"


def _sign_in(c: Call, staff_id: str = CALL_TAKER_ID, pin: str = CALL_TAKER_PIN) -> None:
    assert "Enter your staff ID" in c.heard_since_last()
    c.press(staff_id + "#")
    assert "Enter your PIN" in c.heard_since_last()
    c.press(pin + "#")


def _failures(engine: sa.Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(desk_sign_in_failures.c.staff_id, desk_sign_in_failures.c.kind).order_by(
                desk_sign_in_failures.c.id
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def test_call_taker_signs_in_and_is_asked_the_first_question(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    c = call(DESK, from_number=PSAP_LINE)
    _sign_in(c)
    heard = c.heard_since_last()
    assert "Signed in, Casey Morgan." in heard
    assert "Is a weapon involved? Press 1 for yes, 2 for no." in heard


def test_three_wrong_pins_end_the_call_and_are_recorded(
    call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    c = call(DESK, from_number=PSAP_LINE)
    _sign_in(c, pin="1111")
    assert "That staff ID and PIN do not match." in c.heard_since_last()
    c.press(CALL_TAKER_ID + "#")
    c.press("2222#")
    c.heard_since_last()
    c.press(CALL_TAKER_ID + "#")
    c.press("3333#")
    assert "Too many wrong PINs. This attempt has been recorded." in c.heard_since_last()
    assert c.ended
    assert _failures(engine) == [
        (CALL_TAKER_ID, "wrong_pin"),
        (CALL_TAKER_ID, "wrong_pin"),
        (CALL_TAKER_ID, "wrong_pin"),
        (CALL_TAKER_ID, "call_ended"),
    ]


def test_a_staff_id_with_too_many_wrong_pins_is_locked_whatever_number_calls(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    numbers = ["+15205550181", "+15205550182", "+15205550183", "+15205550184", "+15205550185"]
    for number in numbers:
        c = call(DESK, from_number=number)
        _sign_in(c, CALL_TAKER_ID, "0000")
    c = call(DESK, from_number=PSAP_LINE)
    _sign_in(c)  # the right PIN, but the ID is locked for now
    assert "That staff ID and PIN do not match." in c.heard_since_last()


def test_a_weapon_ends_the_walk_with_no_diversion_and_the_reason_is_recorded(
    call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    c = call(DESK, from_number=PSAP_LINE)
    _sign_in(c)
    c.heard_since_last()
    c.press("1")  # weapon: yes
    heard = c.heard_since_last()
    assert "cannot be diverted because a weapon is involved" in heard
    assert c.ended
    with engine.connect() as conn:
        row = conn.execute(sa.select(handoffs_table)).one()
        events = conn.execute(sa.select(handoff_events.c.event, handoff_events.c.reason)).all()
        live = conn.execute(sa.select(live_calls)).one()
    assert row.status == "not_started" and row.reason_code == "not_eligible_weapon"
    assert row.call_taker_staff_id == CALL_TAKER_ID
    assert [tuple(e) for e in events] == [
        ("requested", None),
        ("not_started", "not_eligible_weapon"),
    ]
    assert live.status == "ended"


def _walk_to_offer(c: Call) -> str:
    _sign_in(c)
    c.heard_since_last()
    c.press("2")  # weapon
    c.press("2")  # immediate danger
    c.press("2")  # violence
    assert "Does the caller agree" in c.heard_since_last()
    c.press("1")  # consent
    c.press("2")  # medical emergency
    assert "health question" in c.heard_since_last()
    c.press("2")  # not a health question
    return c.heard_since_last()


def test_only_eligible_helpers_on_duty_are_offered_and_the_others_are_said_with_their_hours(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    desk.clock = lambda: WEDNESDAY_8AM
    c = call(DESK, from_number=PSAP_LINE)
    heard = _walk_to_offer(c)
    assert "No embedded clinician is on duty until 10 a.m." in heard
    assert "No community navigator is on duty until 9 a.m." in heard
    assert "a.m.." not in heard and "p.m.." not in heard
    assert "For a nine eight eight crisis counselor, press 1." in heard
    assert "telehealth" not in heard  # not eligible for these answers
    assert c.waiting_for == "Gather"


def test_choosing_a_helper_records_the_handoff_and_holds_the_call_in_a_conference(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    app: Flask,
) -> None:
    c = call(DESK, from_number=PSAP_LINE)
    heard = _walk_to_offer(c)
    assert "For an embedded clinician, press 1." in heard
    assert "For a community navigator, press 3." in heard
    c.press("3")
    assert "What is the call about? For mental health, press 1." in c.heard_since_last()
    c.press("1")  # mental health
    assert "callback number" in c.heard_since_last()
    c.press("5205550123#")
    heard = c.heard_since_last()
    assert "Calling a community navigator now." in heard
    assert f"[in conference bl-{c.call_sid}, hold music]" in heard
    root = check_twiml(c.last_xml)
    conference = root.find("./Dial/Conference")
    assert conference is not None
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None and live.callback_number == "+15205550123"
    assert conference.text == live.conference_name
    assert conference.get("participantLabel") == "caller"
    assert conference.get("endConferenceOnExit") == "true"
    assert conference.get("startConferenceOnEnter") == "true"
    assert conference.get("waitUrl", "").endswith(".mp3")
    assert conference.get("statusCallbackEvent") == "start end join leave"
    assert conference.get("statusCallback") == (
        f"{PUBLIC_BASE}/voice/handoff/conference-status?live={live.id}"
    )
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    assert handoff.status is handoffs.HandoffStatus.REQUESTED
    assert handoff.helper_type == "navigator"
    assert handoff.reason == "mental health"
    assert handoff.chain == ("nav-brooks",)
    assert handoff.answers == {
        "weapon": False,
        "immediate_danger": False,
        "violence": False,
        "consent": True,
        "medical": False,
        "health_question": False,
    }
    queue = app.extensions["bridgeline"].queues.queue("urgent")
    assert queue.job_ids == [f"handoff-{handoff.id}-dial-1"]


def test_twilio_retrying_the_start_webhook_records_one_handoff(
    signed_post, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    path = f"{DESK}/start?h=crisis_988&t=0&s={CALL_TAKER_ID}&a=nnnynn&n=1"
    first = signed_post(path, {"Digits": "", "From": PSAP_LINE})
    second = signed_post(path, {"Digits": "", "From": PSAP_LINE})
    assert first.status_code == second.status_code == 200
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(handoffs_table)).scalar() == 1


def test_desk_urls_without_a_valid_signature_are_refused(client, signed_post) -> None:
    assert client.post(DESK, data={"CallSid": "CA1"}).status_code == 403
    forged = signed_post(f"{DESK}/start?h=navigator&s=4821&a=nnnynn", {}, token="wrong-token")
    assert forged.status_code == 403


def test_a_database_outage_is_said_plainly_and_no_one_is_dialed(
    call: Place, call_taker: Staff, desk: TransferDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = call(DESK, from_number=PSAP_LINE)
    _walk_to_offer(c)

    def down(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is down"))

    monkeypatch.setattr(handoffs, "open_live_call", down)
    c.press("3")
    c.press("3")  # welfare check
    c.press("#")
    heard = c.heard_since_last()
    assert "cannot record transfers right now, so no one was dialed" in heard
    assert c.ended

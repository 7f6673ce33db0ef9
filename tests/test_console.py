"""The console as call-takers and clinicians use it: live calls, the tree, handoffs, outcomes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr import create_app
from ivr.decisions.handoffs import EventSource, HandoffEvent, HandoffStatus, LiveCall, Origin
from ivr.flows import handoffs
from ivr.queueing import Queues
from ivr.store.account_tables import call_notes
from ivr.store.tables import callbacks
from tests.console_fixtures import (
    CLINICIAN_STAFF_ID,
    OTHER_CLINICIAN_STAFF_ID,
    LoggedIn,
    StaffClient,
    logged_in_client,
    make_staff,
    write_console_config,
)
from tests.eido_check import assert_conforms

FIXTURES = (make_staff, logged_in_client)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

CALLER_NUMBER = "+15205550177"
CALL_SID = "CA" + "c" * 32
SAFE_ANSWERS = {
    "weapon": False,
    "immediate_danger": False,
    "violence": False,
    "consent": True,
    "medical": False,
    "health_question": False,
}


@pytest.fixture
def app(
    env: dict[str, str], _table_names: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app with a roster whose clinicians are always on duty and linked to accounts."""
    folder = write_console_config(tmp_path_factory.mktemp("console-config"))
    application = create_app({**env, "BRIDGELINE_CONFIG": str(folder), "TESTING": True})
    engine = application.extensions["bridgeline"].engine
    with engine.begin() as conn:
        for name in _table_names:
            conn.exec_driver_sql(f"DELETE FROM {name}")
    yield application
    engine.dispose()


def open_call(engine: sa.Engine, call_sid: str = CALL_SID) -> LiveCall:
    """A caller waiting in the intake conference, as /voice/intake records them."""
    return handoffs.open_live_call(
        engine,
        call_sid=call_sid,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id=None,
        now=datetime.now(UTC),
    )


def twilio_says(
    engine: sa.Engine, handoff_id: int, event: HandoffEvent, seconds: int, **fields: object
) -> None:
    """A status callback reaching the handoff log, as the desk's webhooks record it."""
    handoffs.record_event(
        engine,
        handoff_id,
        event,
        source=EventSource.TWILIO,
        dedupe_key=f"test:{handoff_id}:{event.value}:{seconds}",
        occurred_at=datetime.now(UTC) + timedelta(seconds=seconds),
        **fields,  # type: ignore[arg-type]
    )


def dial_jobs(queues: Queues) -> list[str]:
    return [job.func_name for job in queues.queue(handoffs.DIAL_QUEUE).get_jobs()]


@pytest.fixture
def call_taker(logged_in_client: LoggedIn) -> StaffClient:
    return logged_in_client("call_taker", staff_id="4501", name="Casey Call-Taker")


def test_call_taker_sees_the_waiting_call_with_its_callback_number(
    call_taker: StaffClient, engine: sa.Engine
) -> None:
    assert call_taker.get("/api/console/calls").json["calls"] == []
    live = open_call(engine)
    listed = call_taker.get("/api/console/calls").json["calls"]
    assert [(c["id"], c["status"], c["origin"]) for c in listed] == [(live.id, "waiting", "intake")]
    assert CALLER_NUMBER not in str(listed)  # the list names calls by number only in detail
    detail = call_taker.get(f"/api/console/calls/{live.id}").json
    assert detail["call"]["callback_number"] == CALLER_NUMBER
    assert detail["handoffs"] == [] and detail["notes"] == []
    assert detail["call"]["can_leave"] is False
    page = call_taker.get("/console").get_data(as_text=True)
    assert "Is a weapon involved?" in page and 'name="weapon"' in page


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ({"weapon": True}, "not_eligible_weapon"),
        ({"weapon": False, "immediate_danger": True}, "not_eligible_danger"),
        ({**SAFE_ANSWERS, "consent": False}, "no_consent"),
    ],
)
def test_a_weapon_a_danger_or_no_consent_offers_no_helper(
    call_taker: StaffClient, answers: dict[str, bool], reason: str
) -> None:
    answer = call_taker.post("/api/console/eligibility", json={"answers": answers}).json
    assert answer["decided"] is True and answer["allowed"] == [] and answer["offers"] == []
    assert answer["reason"] == reason


def test_the_tree_asks_the_next_question_until_it_can_decide(call_taker: StaffClient) -> None:
    answer = call_taker.post("/api/console/eligibility", json={"answers": {}}).json
    assert answer["decided"] is False and answer["next_question"] == "weapon"
    answer = call_taker.post("/api/console/eligibility", json={"answers": {"weapon": False}}).json
    assert answer["next_question"] == "immediate_danger"


def test_safe_answers_offer_each_eligible_type_with_who_is_on_duty(
    call_taker: StaffClient,
) -> None:
    answer = call_taker.post("/api/console/eligibility", json={"answers": SAFE_ANSWERS}).json
    offers = {o["helper_type"]: o for o in answer["offers"]}
    assert list(offers) == ["embedded_clinician", "crisis_988", "navigator"]
    clinicians = offers["embedded_clinician"]
    assert clinicians["available"] is True
    assert [m["name"] for m in clinicians["on_duty"]] == ["Dana Rivera", "Sam Okafor"]
    assert offers["crisis_988"]["on_duty"][0]["name"] == "Regional 988 center"
    assert "+1" not in str(answer) and "sip:" not in str(answer)  # no helper's address


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"weapon": "no"}, "must be true or false"),
        ({"pets": True}, "unknown question"),
        (["weapon"], "answers must be an object"),
    ],
)
def test_answers_the_form_never_sends_are_refused(
    call_taker: StaffClient, answers: object, message: str
) -> None:
    answer = call_taker.post("/api/console/eligibility", json={"answers": answers})
    assert answer.status_code == 400 and message in answer.json["error"]


def test_call_taker_conferences_in_a_clinician_and_watches_it_progress_then_leaves(
    call_taker: StaffClient, engine: sa.Engine, queues: Queues
) -> None:
    live = open_call(engine)
    started = call_taker.post(
        f"/api/console/calls/{live.id}/handoffs",
        json={"helper_type": "embedded_clinician", "answers": SAFE_ANSWERS, "reason": "panic"},
    )
    assert started.status_code == 201
    handoff = started.json["handoff"]
    assert handoff["status"] == "requested" and handoff["call_taker_staff_id"] == "4501"
    assert [e["event"] for e in handoff["events"]] == ["requested"]
    assert dial_jobs(queues) == ["workers.handoffs.dial_helper"]  # a worker dials, not the page
    assert call_taker.post(f"/api/console/calls/{live.id}/leave", json={}).status_code == 409

    hid = handoff["id"]

    def progress() -> tuple[str, list[str]]:
        detail = call_taker.get(f"/api/console/calls/{live.id}").json
        (only,) = detail["handoffs"]
        return only["status"], [e["event"] for e in only["events"]]

    twilio_says(engine, hid, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    twilio_says(engine, hid, HandoffEvent.RINGING, 2, attempt=1, call_sid="CA" + "1" * 32)
    assert progress()[0] == "ringing"
    twilio_says(engine, hid, HandoffEvent.DECLINED, 5, attempt=1)
    status, seen = progress()
    assert status == "falling_back" and seen[-1] == "declined"
    twilio_says(engine, hid, HandoffEvent.DIALING, 6, attempt=2, member_id="clin-okafor")
    twilio_says(engine, hid, HandoffEvent.ACCEPTED, 9, attempt=2)
    assert progress()[0] == "accepted"
    twilio_says(engine, hid, HandoffEvent.HELPER_JOINED, 10, attempt=2)
    status, seen = progress()
    assert status == "connected"
    assert seen == ["requested", "dialing", "ringing", "declined", "dialing", "accepted",
                    "helper_joined"]  # fmt: skip
    detail = call_taker.get(f"/api/console/calls/{live.id}").json
    assert detail["handoffs"][0]["member"] == "Sam Okafor"
    assert detail["call"]["can_leave"] is True

    left = call_taker.post(f"/api/console/calls/{live.id}/leave", json={})
    assert left.status_code == 202
    assert "workers.handoffs.remove_call_taker" in dial_jobs(queues)


def test_a_handoff_the_tree_forbids_is_recorded_with_its_reason_and_nobody_is_dialed(
    call_taker: StaffClient, engine: sa.Engine, queues: Queues
) -> None:
    live = open_call(engine)
    answer = call_taker.post(
        f"/api/console/calls/{live.id}/handoffs",
        json={"helper_type": "crisis_988", "answers": {**SAFE_ANSWERS, "weapon": True}},
    )
    assert answer.status_code == 201
    handoff = answer.json["handoff"]
    assert handoff["status"] == HandoffStatus.NOT_STARTED.value
    assert handoff["reason_code"] == "not_eligible_weapon"
    assert dial_jobs(queues) == []


def test_a_handoff_on_an_ended_or_unknown_call_is_refused(
    call_taker: StaffClient, engine: sa.Engine
) -> None:
    live = open_call(engine)
    handoffs.end_live_call(engine, live.id, datetime.now(UTC))
    body = {"helper_type": "crisis_988", "answers": SAFE_ANSWERS}
    assert call_taker.post(f"/api/console/calls/{live.id}/handoffs", json=body).status_code == 409
    missing = call_taker.post("/api/console/calls/999999/handoffs", json=body)
    assert missing.status_code == 404 and missing.is_json
    no_type = call_taker.post(f"/api/console/calls/{live.id}/handoffs", json={"answers": {}})
    assert no_type.status_code == 400


def test_call_taker_keeps_notes_and_they_never_reach_the_logs(
    call_taker: StaffClient, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    live = open_call(engine)
    caplog.set_level(logging.DEBUG)
    saved = call_taker.post(
        f"/api/console/calls/{live.id}/notes", json={"body": "Caller is Ana, lives on 4th St"}
    )
    assert saved.status_code == 201
    assert [n["body"] for n in saved.json["notes"]] == ["Caller is Ana, lives on 4th St"]
    detail = call_taker.get(f"/api/console/calls/{live.id}").json
    assert detail["notes"][0]["staff_id"] == "4501"
    assert "Ana" not in caplog.text and "4th St" not in caplog.text
    assert (
        call_taker.post(f"/api/console/calls/{live.id}/notes", json={"body": "  "}).status_code
        == 400
    )
    too_long = {"body": "x" * 2001}
    assert call_taker.post(f"/api/console/calls/{live.id}/notes", json=too_long).status_code == 400
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(call_notes)).scalar() == 1


# ------------------------------------------------------------------------ clinicians


@pytest.fixture
def handed_off(call_taker: StaffClient, engine: sa.Engine) -> int:
    """A handoff that rang Dana Rivera (console account 7001) and that she accepted."""
    live = open_call(engine)
    started = call_taker.post(
        f"/api/console/calls/{live.id}/handoffs",
        json={"helper_type": "embedded_clinician", "answers": SAFE_ANSWERS, "reason": "panic"},
    )
    hid: int = started.json["handoff"]["id"]
    twilio_says(engine, hid, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    twilio_says(engine, hid, HandoffEvent.ACCEPTED, 4, attempt=1)
    twilio_says(engine, hid, HandoffEvent.HELPER_JOINED, 5, attempt=1)
    return hid


@pytest.fixture
def clinician(logged_in_client: LoggedIn) -> StaffClient:
    return logged_in_client(
        "clinician",
        staff_id=CLINICIAN_STAFF_ID,
        name="Dana Rivera",
        helper_type="embedded_clinician",
    )


def test_clinician_sees_the_handoff_sent_to_them_with_its_context(
    clinician: StaffClient, handed_off: int
) -> None:
    listed = clinician.get("/api/console/clinician/handoffs").json["handoffs"]
    assert [h["id"] for h in listed] == [handed_off]
    assert listed[0]["callback_number"] == CALLER_NUMBER and listed[0]["status"] == "connected"
    page = clinician.get("/console/clinician").get_data(as_text=True)
    assert f"#{handed_off}" in page and CALLER_NUMBER in page
    detail = clinician.get(f"/console/clinician/handoffs/{handed_off}").get_data(as_text=True)
    assert "panic" in detail and CALLER_NUMBER in detail
    assert "Is a weapon involved? <strong>no</strong>" in detail
    assert '<dd id="call-taker">Casey Call-Taker</dd>' in detail  # a name, not "4501"
    assert "Dana Rivera joined the caller" in detail
    # Risk answers in the tree's order (weapon first, consent after violence), not alphabetical.
    order = [detail.index(q) for q in ("Is a weapon involved?", "immediate danger", "caller agree")]
    assert order == sorted(order)
    # Local time in words, not "2026-11-30T22:51:07.123456+00:00" on the screen.
    shown = re.findall(r'<time datetime="[^"]+">([^<]+)</time>', detail)
    assert shown and all(re.fullmatch(r"(today|yesterday) \d\d:\d\d", t) for t in shown)


def test_another_clinician_cannot_see_or_close_that_handoff(
    logged_in_client: LoggedIn, handed_off: int, engine: sa.Engine
) -> None:
    other = logged_in_client(
        "clinician", staff_id=OTHER_CLINICIAN_STAFF_ID, helper_type="embedded_clinician"
    )
    assert other.get("/api/console/clinician/handoffs").json == {"handoffs": []}
    assert other.get(f"/console/clinician/handoffs/{handed_off}").status_code == 404
    answer = other.post(
        f"/console/clinician/handoffs/{handed_off}/outcome", data={"outcome": "referred"}
    )
    assert answer.status_code == 404
    handoff = handoffs.get_handoff(engine, handed_off)
    assert handoff is not None and handoff.outcome is None


def test_clinician_records_an_outcome_and_a_follow_up_that_becomes_a_callback(
    clinician: StaffClient, handed_off: int, engine: sa.Engine
) -> None:
    follow_up = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    answer = clinician.post(
        f"/console/clinician/handoffs/{handed_off}/outcome",
        data={"outcome": "callback_scheduled", "follow_up": follow_up, "note": "check in"},
    )
    assert answer.status_code == 303
    page = clinician.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Outcome saved." in page and "Saved: <strong>Callback scheduled" in page
    assert '<span id="saved-note">check in</span>' in page  # what was saved is shown
    handoff = handoffs.get_handoff(engine, handed_off)
    assert handoff is not None
    assert handoff.outcome == "callback_scheduled" and handoff.outcome_by == CLINICIAN_STAFF_ID
    assert handoff.outcome_note == "check in"
    assert handoff.follow_up_at is not None
    assert handoff.follow_up_at.date().isoformat() == follow_up
    history = [e.event for e in handoffs.handoff_events(engine, handed_off)]
    assert history.count(HandoffEvent.OUTCOME_RECORDED) == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(callbacks)).one()
    assert row.source == "clinician_follow_up" and row.phone_number == CALLER_NUMBER


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"outcome": "went_fishing"}, "Choose how the call ended."),
        ({"note": "kept"}, "Choose how the call ended."),
        ({"outcome": "callback_scheduled"}, "A scheduled callback needs a follow-up date."),
        ({"outcome": "referred", "follow_up": "2020-01-01"}, "The follow-up date is in the past."),
        ({"outcome": "referred", "follow_up": "tomorrow"}, "Follow-up date must look like"),
    ],
)
def test_a_bad_outcome_form_is_sent_back_with_a_message_and_records_nothing(
    clinician: StaffClient, handed_off: int, engine: sa.Engine, form: dict, message: str
) -> None:
    answer = clinician.post(f"/console/clinician/handoffs/{handed_off}/outcome", data=form)
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert message in page
    # What was typed is still there to fix, not cleared.
    if form.get("outcome") in ("callback_scheduled", "referred"):
        assert f'value="{form["outcome"]}" required checked' in page
    if "follow_up" in form and form["follow_up"] != "tomorrow":
        assert f'value="{form["follow_up"]}"' in page
    if "note" in form:
        assert f">{form['note']}</textarea>" in page
    handoff = handoffs.get_handoff(engine, handed_off)
    assert handoff is not None and handoff.outcome is None


def test_the_outcome_form_needs_its_csrf_token(clinician: StaffClient, handed_off: int) -> None:
    bare = clinician.client.post(
        f"/console/clinician/handoffs/{handed_off}/outcome", data={"outcome": "referred"}
    )
    assert bare.status_code == 400


def test_every_outcome_programs_report_is_on_the_form(
    clinician: StaffClient, handed_off: int
) -> None:
    page = clinician.get(f"/console/clinician/handoffs/{handed_off}").get_data(as_text=True)
    for label in (
        "Resolved by phone", "Resolved on scene", "Police backup required",
        "Medical backup required", "Transport", "Involuntary hold", "Referred",
        "Callback scheduled",
    ):  # fmt: skip
        assert label in page


def test_a_handoff_exports_as_eido_for_call_takers_and_its_own_clinician_only(
    call_taker: StaffClient,
    clinician: StaffClient,
    logged_in_client: LoggedIn,
    handed_off: int,
) -> None:
    url = f"/api/console/handoffs/{handed_off}/eido"
    answer = call_taker.get(url)
    assert answer.mimetype == "application/json"
    document = answer.json
    assert_conforms(document)  # NENA's schema, 0 errors, 0 unknown members
    assert document["incidentComponent"]["internalIncidentId"] == str(handed_off)
    assert document["callbackComponent"][0]["callBackInformationUri"] == [f"tel:{CALLER_NUMBER}"]
    assert clinician.get(url).json == document
    other = logged_in_client("clinician", staff_id=OTHER_CLINICIAN_STAFF_ID)
    assert other.get(url).status_code == 404
    assert call_taker.get("/api/console/handoffs/999999/eido").status_code == 404


def test_a_desk_call_opens_with_the_keypad_answers_and_says_where_it_stands(
    call_taker: StaffClient, engine: sa.Engine, app: Flask
) -> None:
    live = handoffs.open_live_call(
        engine,
        call_sid="CA" + "e" * 32,
        origin=Origin.DESK,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id="4501",
        now=datetime.now(UTC),
    )
    with app.app_context():
        started = handoffs.start_handoff(
            engine,
            app.extensions["bridgeline"].queues,
            call_sid=live.call_sid,
            call_taker_staff_id="4501",
            helper_type="embedded_clinician",
            answers=SAFE_ANSWERS,
            reason="welfare check",
            key="desk:test:1",
        )
    twilio_says(engine, started.id, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    twilio_says(engine, started.id, HandoffEvent.HELPER_JOINED, 2, attempt=1)
    detail = call_taker.get(f"/api/console/calls/{live.id}").json
    assert detail["call"]["answers"] == SAFE_ANSWERS  # the form opens already answered
    assert detail["call"]["state_words"] == "helper connected: Dana Rivera"
    assert detail["call"]["call_taker"] == "Casey Call-Taker"
    (listed,) = call_taker.get("/api/console/calls").json["calls"]
    assert listed["state"] == "helper_connected" and listed["state_since"]
    (handoff,) = detail["handoffs"]
    assert [line["text"] for line in handoff["story"]] == [
        "Embedded clinician asked for",
        "Calling Dana Rivera",
        "Dana Rivera joined the caller",
    ]
    assert handoff["timer"]["label"] == "connected" and handoff["cancellable"] is False


def test_a_second_save_is_an_explicit_edit_kept_in_the_audit_trail(
    clinician: StaffClient, handed_off: int, engine: sa.Engine
) -> None:
    from ivr.store import audit

    url = f"/console/clinician/handoffs/{handed_off}/outcome"
    first = clinician.post(url, data={"outcome": "resolved_by_phone", "note": "talked it through"})
    assert first.status_code == 303
    # The same first-save form sent again (a second tab, a resubmit) overwrites nothing.
    again = clinician.post(url, data={"outcome": "referred", "note": "other"})
    assert again.status_code == 409
    assert "An outcome was already saved" in again.get_data(as_text=True)
    saved = handoffs.get_handoff(engine, handed_off)
    assert saved is not None and saved.outcome == "resolved_by_phone"
    assert [e.action for e in audit.entries(engine)] == []

    page = clinician.get(f"/console/clinician/handoffs/{handed_off}").get_data(as_text=True)
    assert 'name="edit" value="1"' in page and "Save the change" in page
    assert ">talked it through</textarea>" in page  # the edit form starts from what was saved
    edited = clinician.post(
        url, data={"outcome": "referred", "note": "talked it through", "edit": "1"}
    )
    assert edited.status_code == 303
    assert "Outcome changed." in clinician.get(edited.headers["Location"]).get_data(as_text=True)
    changed = handoffs.get_handoff(engine, handed_off)
    assert changed is not None and changed.outcome == "referred"
    (entry,) = list(audit.entries(engine))
    assert (entry.actor, entry.action, entry.subject) == (
        CLINICIAN_STAFF_ID,
        "handoff.outcome_edited",
        f"handoff:{handed_off}",
    )
    assert "talked it through" not in entry.details  # codes only, never the note itself
    assert audit.verify(engine).broken_at is None

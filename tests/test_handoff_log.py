# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""Whole warm handoffs, with Twilio's REST API mocked and its callbacks late, twice and out of
order: the log shows every step and its reason."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.accounts import Staff
from ivr.decisions.handoffs import HandoffStatus
from ivr.flows import handoffs
from ivr.flows.desk import TransferDesk
from ivr.simulator import Call
from ivr.store.tables import callbacks
from tests.conftest import ACCOUNT_SID, PUBLIC_BASE
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    CALLS_URL,
    PSAP_LINE,
    WEDNESDAY_11AM,
    call_json,
    call_taker,
    call_url,
    desk,
    form_of,
    participant_url,
    twilio_post,
    worker_clock,
)
from tests.twiml_check import check_twiml

Place = Callable[..., Call]
CONFERENCE_SID = "CF" + "c" * 32
HELPER_1 = "CA" + "1" * 32
HELPER_2 = "CA" + "2" * 32
CALLER_ID = "+15205550100"


def ts(seconds: int) -> str:
    """Twilio's Timestamp field, `seconds` after Wednesday 11:00 Phoenix."""
    return format_datetime(WEDNESDAY_11AM + timedelta(seconds=seconds), usegmt=True)


def _desk_to_conference(call: Place, key: str) -> Call:
    """A call-taker signs in, answers the tree for a calm caller, picks helper `key`
    and says the call is about mental health."""
    c = call("/voice/transfer-desk", from_number=PSAP_LINE)
    c.press("4821#")
    c.press("2468#")
    for answer in ("2", "2", "2", "1", "2", "2"):
        c.press(answer)
    c.press(key)
    c.press("1")  # what the call is about: mental health
    c.press("5205550123#")
    assert c.waiting_for == "Dial"
    return c


def _expect_helper_dial(twilio_api: responses.RequestsMock, sid: str) -> None:
    twilio_api.add(responses.POST, CALLS_URL, body=call_json(sid), status=201)


def _status(
    post: Callable[..., Any],
    handoff_id: int,
    attempt: int,
    sid: str,
    status: str,
    seq: int,
    at: int,
    token: str | None = None,
) -> None:
    post(
        f"/voice/handoff/helper-status?h={handoff_id}&at={attempt}",
        {
            "AccountSid": ACCOUNT_SID,
            "CallSid": sid,
            "CallStatus": status,
            "SequenceNumber": str(seq),
            "Timestamp": ts(at),
            "CallbackSource": "call-progress-events",
        },
        token=token,
    )


def _conference(
    post: Callable[..., Any],
    live: handoffs.LiveCall,
    event: str,
    seq: int,
    at: int,
    label: str | None = None,
    sid: str | None = None,
    token: str | None = None,
    name: str | None = None,
) -> None:
    data = {
        "AccountSid": ACCOUNT_SID,
        "ConferenceSid": CONFERENCE_SID,
        "FriendlyName": name or live.conference_name,
        "StatusCallbackEvent": event,
        "SequenceNumber": str(seq),
        "Timestamp": ts(at),
    }
    if label:
        data["ParticipantLabel"] = label
    if sid:
        data["CallSid"] = sid
    post(f"/voice/handoff/conference-status?live={live.id}", data, token=token)


def _log(
    engine: sa.Engine, handoff_id: int
) -> list[tuple[str, int | None, str | None, str | None]]:
    return [
        (e.event.value, e.attempt, e.member_id, e.reason)
        for e in handoffs.handoff_events(engine, handoff_id)
    ]


def test_a_declined_helper_falls_back_to_the_next_who_accepts_and_the_caller_stays(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    c = _desk_to_conference(call, "1")  # embedded clinician
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    hid = handoff.id
    assert handoff.chain == ("clin-rivera", "crisis-988-center")
    # The record exists before anyone is dialed.
    assert _log(engine, hid) == [("requested", None, None, None)]

    _expect_helper_dial(twilio_api, HELPER_1)
    assert run_jobs() == 1
    sent = form_of(twilio_api.calls[-1].request)
    assert sent == {
        "To": ["+15205550151"],
        "From": [CALLER_ID],
        "Url": [f"{PUBLIC_BASE}/voice/handoff/whisper?h={hid}&at=1"],
        "Method": ["POST"],
        "Timeout": ["25"],
        "StatusCallback": [
            f"{PUBLIC_BASE}/voice/handoff/helper-status?h={hid}&at=1&live={live.id}"
        ],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
    }
    assert run_jobs() == 0  # nothing left: the dial job ran once

    # The conference starts; Twilio sends the caller's join twice.
    _conference(twilio_post, live, "conference-start", 1, 1)
    _conference(twilio_post, live, "participant-join", 2, 1, label="caller", sid=c.call_sid)
    _conference(twilio_post, live, "participant-join", 2, 1, label="caller", sid=c.call_sid)

    # Helper 1's progress arrives out of order (answered before ringing) and ringing twice.
    _status(twilio_post, hid, 1, HELPER_1, "in-progress", 2, 6, token="tok-a")
    _status(twilio_post, hid, 1, HELPER_1, "ringing", 1, 3, token="tok-r")
    _status(twilio_post, hid, 1, HELPER_1, "ringing", 1, 3, token="tok-r")
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.SCREENING  # type: ignore[union-attr]

    # Helper 1 hears the whisper and declines.
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=10)
    helper = call(f"/voice/handoff/whisper?h={hid}&at=1", from_number=CALLER_ID, call_sid=HELPER_1)
    whisper = helper.heard_since_last()
    assert "Bridgeline warm handoff for an embedded clinician, from call-taker 4 8 2 1." in whisper
    assert (
        "Risk answers: weapon: no, immediate danger: no, violence: no, medical: no, consent: yes, health question: no."
        in whisper
    )
    assert "Callback number 5 2 0, 5 5 5, 0 1 2 3." in whisper
    assert "To accept and join the caller, press 1. To decline, press 2." in whisper
    helper.press("2")
    assert "We will try someone else" in helper.heard_since_last()
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.FALLING_BACK  # type: ignore[union-attr]
    # Helper 1's leg ends after the decline: late news about an attempt already over.
    _status(twilio_post, hid, 1, HELPER_1, "completed", 3, 12)

    _expect_helper_dial(twilio_api, HELPER_2)
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=13))
    assert run_jobs() == 1
    sent = form_of(twilio_api.calls[-1].request)
    assert sent["To"] == ["+15205550988"]
    assert sent["Timeout"] == ["20"]
    assert sent["Url"] == [f"{PUBLIC_BASE}/voice/handoff/whisper?h={hid}&at=2"]
    assert sent["StatusCallback"] == [
        f"{PUBLIC_BASE}/voice/handoff/helper-status?h={hid}&at=2&live={live.id}"
    ]

    _status(twilio_post, hid, 2, HELPER_2, "ringing", 1, 15)
    helper2 = call(f"/voice/handoff/whisper?h={hid}&at=2", from_number=CALLER_ID, call_sid=HELPER_2)
    assert "Bridgeline warm handoff" in helper2.heard_since_last()
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=18)
    helper2.press("1")
    assert "Connecting you to the caller." in helper2.heard_since_last()
    joined = check_twiml(helper2.last_xml).find("./Dial/Conference")
    assert joined is not None
    assert joined.text == live.conference_name
    assert joined.get("participantLabel") == f"helper-{hid}-2"
    assert joined.get("endConferenceOnExit") == "false"
    assert joined.get("statusCallback") == (
        f"{PUBLIC_BASE}/voice/handoff/conference-status?live={live.id}"
    )
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.ACCEPTED  # type: ignore[union-attr]

    # The join arrives twice, and the helper leg's 'answered' only after it.
    _conference(twilio_post, live, "participant-join", 4, 20, label=f"helper-{hid}-2", sid=HELPER_2)
    _conference(twilio_post, live, "participant-join", 4, 20, label=f"helper-{hid}-2", sid=HELPER_2)
    _status(twilio_post, hid, 2, HELPER_2, "in-progress", 2, 17)
    after = handoffs.get_handoff(engine, hid)
    assert after is not None and after.status is HandoffStatus.CONNECTED
    assert after.member_id == "crisis-988-center" and after.helper_call_sid == HELPER_2

    # The call-taker is told they may hang up (announced to the desk leg).
    twilio_api.add(
        responses.POST,
        participant_url(CONFERENCE_SID, "caller"),
        json={"call_sid": c.call_sid, "conference_sid": CONFERENCE_SID, "label": "caller"},
    )
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=21))
    assert run_jobs() == 1
    assert form_of(twilio_api.calls[-1].request) == {
        "AnnounceUrl": [f"{PUBLIC_BASE}/voice/handoff/announce?kind=connected"],
        "AnnounceMethod": ["POST"],
    }
    announced = twilio_post("/voice/handoff/announce?kind=connected", {"CallSid": c.call_sid})
    assert b"Call-taker, you may hang up now." in announced.data

    # The caller stays: the conference and the handoff go on until the caller hangs up.
    live_now = handoffs.get_live_call(engine, live.id)
    assert live_now is not None and live_now.status is not handoffs.LiveCallStatus.ENDED
    assert live_now.conference_sid == CONFERENCE_SID
    _conference(twilio_post, live, "participant-leave", 6, 300, label="caller", sid=c.call_sid)
    _conference(twilio_post, live, "conference-end", 7, 300)
    done = handoffs.get_handoff(engine, hid)
    assert done is not None and done.status is HandoffStatus.COMPLETED
    assert done.reason_code is None  # it reached a helper

    assert _log(engine, hid) == [
        ("requested", None, None, None),
        ("dialing", 1, "clin-rivera", None),
        ("dialing", 1, "clin-rivera", None),  # the call placed, with its CallSid
        ("ringing", 1, None, None),
        ("answered", 1, None, None),
        ("declined", 1, "clin-rivera", "declined"),
        ("helper_left", 1, None, None),
        ("dialing", 2, "crisis-988-center", None),
        ("dialing", 2, "crisis-988-center", None),
        ("ringing", 2, None, None),
        ("answered", 2, None, None),  # arrived after the join, ordered by Twilio's time
        ("accepted", 2, "crisis-988-center", None),
        ("helper_joined", 2, None, None),
        ("announced", None, None, None),
        ("caller_left", None, None, None),
    ]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(callbacks)).scalar() == 0


def test_the_caller_hanging_up_before_anyone_accepts_records_a_callback_at_once(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    c = _desk_to_conference(call, "3")  # navigator
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    _expect_helper_dial(twilio_api, HELPER_1)
    run_jobs()
    _status(twilio_post, handoff.id, 1, HELPER_1, "ringing", 1, 2)
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=10)
    _conference(twilio_post, live, "participant-leave", 3, 9, label="caller", sid=c.call_sid)
    dropped = handoffs.get_handoff(engine, handoff.id)
    assert dropped is not None
    assert dropped.status is HandoffStatus.CALLER_DROPPED
    assert dropped.reason_code == "caller_hung_up"
    with engine.connect() as conn:
        row = conn.execute(sa.select(callbacks)).one()
    assert row.source == "dropped_handoff" and row.status == "pending"
    assert row.consent is False and row.phone_number == "+15205550123"
    assert row.helper_type == "navigator"
    assert dropped.callback_id == row.id
    # The ringing helper's phone is stopped; the conference end that follows changes nothing.
    twilio_api.add(responses.POST, call_url(HELPER_1), body=call_json(HELPER_1, status="completed"))
    assert run_jobs() == 1
    assert form_of(twilio_api.calls[-1].request) == {"Status": ["completed"]}
    _conference(twilio_post, live, "conference-end", 4, 9)
    assert _log(engine, handoff.id) == [
        ("requested", None, None, None),
        ("dialing", 1, "nav-brooks", None),
        ("dialing", 1, "nav-brooks", None),
        ("ringing", 1, None, None),
        ("caller_left", None, None, None),
        ("callback_recorded", None, None, "caller_hung_up"),
    ]
    ended = handoffs.get_live_call(engine, live.id)
    assert ended is not None and ended.status is handoffs.LiveCallStatus.ENDED
    assert handoffs.get_handoff(engine, handoff.id).status is HandoffStatus.CALLER_DROPPED  # type: ignore[union-attr]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(callbacks)).scalar() == 1


def test_nobody_answering_returns_the_call_to_the_call_taker_with_what_happened(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    signed_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    c = _desk_to_conference(call, "1")  # embedded clinician: Rivera, then 988
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    _expect_helper_dial(twilio_api, HELPER_1)
    run_jobs()
    _status(twilio_post, handoff.id, 1, HELPER_1, "no-answer", 2, 30)
    # The 988 center's line is refused by Twilio itself: recorded, and the chain goes on.
    twilio_api.add(
        responses.POST,
        CALLS_URL,
        json={"code": 13224, "message": "Invalid phone number", "status": 400},
        status=400,
    )
    twilio_api.add(
        responses.POST,
        call_url(c.call_sid),
        body=call_json(c.call_sid, to="+15205550100", status="in-progress"),
    )
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=31))
    assert run_jobs() == 3  # dial attempt 2, then the return, then the desk leg is redirected
    returned = handoffs.get_handoff(engine, handoff.id)
    assert returned is not None
    assert returned.status is HandoffStatus.RETURNED
    assert returned.reason_code == "dial_refused"
    redirect = form_of(twilio_api.calls[-1].request)
    assert redirect["Method"] == ["POST"]
    url = redirect["Url"][0]
    assert url.startswith(f"{PUBLIC_BASE}/voice/transfer-desk/returned?handoff={handoff.id}")
    answer = signed_post(url[len(PUBLIC_BASE) :], {"From": PSAP_LINE, "CallSid": c.call_sid})
    spoken = answer.data.decode()
    assert "No helper took the call. Dana Rivera did not answer." in spoken
    assert "Regional 988 center could not be dialed." in spoken
    assert "The caller is still with you." in spoken
    assert "For an embedded clinician, press 1." in spoken
    assert _log(engine, handoff.id)[-3:] == [
        ("dialing", 2, "crisis-988-center", None),
        ("dial_refused", 2, "crisis-988-center", "dial_refused"),
        ("returned", None, None, "dial_refused"),
    ]
    # The redirect ended the first conference; its end arrives while the call-taker picks again.
    _conference(twilio_post, live, "conference-end", 9, 33)
    choose = check_twiml(answer.data).find("./Gather")
    assert choose is not None
    desk_leg = {"From": PSAP_LINE, "CallSid": c.call_sid}
    picked = signed_post(choose.get("action")[len(PUBLIC_BASE) :], {**desk_leg, "Digits": "3"})
    reason = check_twiml(picked.data).find("./Gather")
    assert reason is not None and "What is the call about?" in picked.data.decode()
    given = signed_post(reason.get("action")[len(PUBLIC_BASE) :], {**desk_leg, "Digits": "1"})
    number = check_twiml(given.data).find("./Gather")
    assert number is not None
    held = signed_post(number.get("action")[len(PUBLIC_BASE) :], {**desk_leg, "Digits": ""})
    conference = check_twiml(held.data).find("./Dial/Conference")
    assert conference is not None and conference.text == f"bl-{c.call_sid}-2"
    second_round = handoffs.live_call_by_sid(engine, c.call_sid)
    assert second_round is not None and second_round.id == live.id
    assert second_round.status is handoffs.LiveCallStatus.WAITING
    # A late event of the old conference does not end the new round.
    _conference(twilio_post, live, "conference-end", 9, 33, token="late-retry")
    first, second = handoffs.handoffs_for_call(engine, live.id)
    assert first.id == handoff.id and second.helper_type == "navigator"
    assert second.status is HandoffStatus.REQUESTED
    assert handoffs.live_call_by_sid(engine, c.call_sid).status is handoffs.LiveCallStatus.WAITING  # type: ignore[union-attr]


def _participants_url(conference: str) -> str:
    return (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
        f"/Conferences/{conference}/Participants.json"
    )


def test_intake_caller_waits_the_call_taker_hands_off_from_the_console_and_leaves(
    call: Place,
    desk: TransferDesk,
    engine: sa.Engine,
    app: Any,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    caller = call("/voice/intake", from_number="+15205550123")
    assert "someone will be with you shortly" in caller.heard_since_last()
    waiting = check_twiml(caller.last_xml).find("./Dial/Conference")
    assert waiting is not None and waiting.get("participantLabel") == "caller"
    assert waiting.get("endConferenceOnExit") == "true"
    live = handoffs.live_call_by_sid(engine, caller.call_sid)
    assert live is not None and live.callback_number == "+15205550123"

    # The on-duty call-taker does not answer; the fallback line (the PSAP's admin line) is next.
    twilio_api.add(
        responses.POST,
        _participants_url(live.conference_name),
        json={"call_sid": "CA" + "7" * 32, "label": "call-taker"},
        status=201,
    )
    assert run_jobs() == 1
    assert form_of(twilio_api.calls[-1].request) == {
        "From": [CALLER_ID],
        "To": ["+15205550171"],
        "Label": ["call-taker"],
        "Timeout": ["20"],
        "StatusCallback": [f"{PUBLIC_BASE}/voice/intake/call-taker-status?live={live.id}&at=1"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated ringing answered completed"],
        "StartConferenceOnEnter": ["true"],
        "EndConferenceOnExit": ["false"],
        "Beep": ["false"],
        "ConferenceStatusCallback": [
            f"{PUBLIC_BASE}/voice/handoff/conference-status?live={live.id}"
        ],
        "ConferenceStatusCallbackMethod": ["POST"],
        "ConferenceStatusCallbackEvent": ["start end join leave"],
    }
    no_answer = {"CallSid": "CA" + "7" * 32, "CallStatus": "no-answer", "SequenceNumber": "2"}
    twilio_post(f"/voice/intake/call-taker-status?live={live.id}&at=1", no_answer)
    twilio_post(f"/voice/intake/call-taker-status?live={live.id}&at=1", no_answer)  # twice
    twilio_api.add(
        responses.POST,
        _participants_url(live.conference_name),
        json={"call_sid": "CA" + "8" * 32, "label": "call-taker"},
        status=201,
    )
    # The callback came twice, so the job runs twice: the second run asks Twilio whether the
    # call-taker leg already exists (it does) instead of dialing the line again.
    twilio_api.add(
        responses.GET,
        participant_url(live.conference_name, "call-taker"),
        json={"call_sid": "CA" + "8" * 32, "label": "call-taker", "status": "ringing"},
    )
    assert run_jobs() == 2
    assert [r.request.method for r in twilio_api.calls] == ["POST", "POST", "GET"]
    assert form_of(twilio_api.calls[1].request)["To"] == ["+15205550311"]
    call_taker_leg = "CA" + "8" * 32
    _conference(twilio_post, live, "conference-start", 1, 1)
    _conference(
        twilio_post, live, "participant-join", 2, 25, label="call-taker", sid=call_taker_leg
    )
    on_call = handoffs.get_live_call(engine, live.id)
    assert on_call is not None and on_call.status is handoffs.LiveCallStatus.WITH_CALL_TAKER
    assert [c.id for c in handoffs.list_live_calls(engine)] == [live.id]

    # From the console: the decision tree as a form, then a button per eligible helper.
    answers = {
        "weapon": False,
        "immediate_danger": False,
        "violence": False,
        "medical": False,
        "consent": True,
        "health_question": False,
    }
    queues = app.extensions["bridgeline"].queues
    with app.app_context():
        handoff = handoffs.start_handoff(
            engine,
            queues,
            call_sid=caller.call_sid,
            call_taker_staff_id="4821",
            helper_type="navigator",
            answers=answers,
            reason="needs shelter tonight",
            now=WEDNESDAY_11AM + timedelta(seconds=40),
        )
    assert handoff.status is HandoffStatus.REQUESTED and handoff.callback_number == "+15205550123"
    assert not handoffs.leave_call(engine, queues, live.id, "4821")  # no helper yet: refused
    _expect_helper_dial(twilio_api, HELPER_1)
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=41))
    assert run_jobs() == 1
    assert form_of(twilio_api.calls[-1].request)["To"] == ["+15205550161"]
    helper = call(
        f"/voice/handoff/whisper?h={handoff.id}&at=1", from_number=CALLER_ID, call_sid=HELPER_1
    )
    assert "Reason: needs shelter tonight." in helper.heard_since_last()
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=50)
    helper.press("1")
    _conference(
        twilio_post,
        live,
        "participant-join",
        3,
        51,
        label=f"helper-{handoff.id}-1",
        sid=HELPER_1,
    )
    assert handoffs.get_handoff(engine, handoff.id).status is HandoffStatus.CONNECTED  # type: ignore[union-attr]

    # The announcement goes to the call-taker's leg only.
    twilio_api.add(
        responses.POST,
        participant_url(CONFERENCE_SID, "call-taker"),
        json={"call_sid": call_taker_leg, "label": "call-taker"},
    )
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=52))
    assert run_jobs() == 1

    # "Leave call": the call-taker is removed; the conference, the caller and the helper stay.
    assert handoffs.leave_call(engine, queues, live.id, "4821")
    twilio_api.add(responses.DELETE, participant_url(CONFERENCE_SID, "call-taker"), status=204)
    assert run_jobs() == 1
    assert twilio_api.calls[-1].request.method == "DELETE"
    _conference(
        twilio_post, live, "participant-leave", 4, 60, label="call-taker", sid=call_taker_leg
    )
    still = handoffs.get_handoff(engine, handoff.id)
    assert still is not None and still.status is HandoffStatus.CONNECTED
    assert handoffs.get_live_call(engine, live.id).status is not handoffs.LiveCallStatus.ENDED  # type: ignore[union-attr]
    _conference(twilio_post, live, "participant-leave", 5, 400, label="caller", sid=caller.call_sid)
    _conference(twilio_post, live, "conference-end", 6, 400)
    assert handoffs.get_handoff(engine, handoff.id).status is HandoffStatus.COMPLETED  # type: ignore[union-attr]
    assert [e[0] for e in _log(engine, handoff.id)] == [
        "requested",
        "dialing",
        "dialing",
        "accepted",
        "helper_joined",
        "announced",
        "call_taker_left",
        "caller_left",
    ]
    assert handoffs.list_live_calls(engine) == []
    assert [h.id for h in handoffs.handoffs_for_helper(engine, "nav-brooks")] == [handoff.id]


def test_a_dial_that_times_out_is_checked_with_twilio_and_never_placed_twice(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    worker_clock: Callable[..., None],
    monkeypatch: Any,
) -> None:
    import requests

    import workers.handoff_legs
    import workers.handoffs

    monkeypatch.setattr(workers.handoff_legs, "_sleep", lambda seconds: None)
    c = _desk_to_conference(call, "3")  # navigator
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    twilio_api.add(responses.POST, CALLS_URL, body=requests.exceptions.ReadTimeout("slow"))
    twilio_api.add(
        responses.GET,
        CALLS_URL,
        json={
            "calls": [
                {
                    "sid": HELPER_1,
                    "to": "+15205550161",
                    "from": CALLER_ID,
                    "status": "ringing",
                    "date_created": "Wed, 25 Nov 2026 18:00:01 +0000",
                }
            ],
            "end": 0,
            "first_page_uri": "/2010-04-01/Accounts/AC/Calls.json?PageSize=20&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 20,
            "previous_page_uri": None,
            "start": 0,
            "uri": "/2010-04-01/Accounts/AC/Calls.json?PageSize=20&Page=0",
        },
    )
    assert run_jobs() == 1
    assert [r.request.method for r in twilio_api.calls] == ["POST", "GET"]
    listed = twilio_api.calls[1].request.url
    assert "To=%2B15205550161" in listed and "From=%2B15205550100" in listed
    dialing = handoffs.get_handoff(engine, handoff.id)
    assert dialing is not None and dialing.helper_call_sid == HELPER_1
    assert dialing.status is HandoffStatus.DIALING


def test_the_sweep_settles_a_dial_twilio_never_reported_on(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    worker_clock: Callable[..., None],
) -> None:
    from workers.handoffs import sweep_handoffs

    c = _desk_to_conference(call, "3")  # navigator: a chain of one
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    _expect_helper_dial(twilio_api, HELPER_1)
    run_jobs()
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=79))
    assert sweep_handoffs() == 0  # within ring timeout (20 s) + 60 s: still waiting for news
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=81))
    assert sweep_handoffs() == 1
    twilio_api.add(responses.POST, call_url(c.call_sid), body=call_json(c.call_sid))
    assert run_jobs() == 2  # attempt 2 finds the chain exhausted, then the desk leg is returned
    settled = handoffs.get_handoff(engine, handoff.id)
    assert settled is not None and settled.status is HandoffStatus.RETURNED
    assert settled.reason_code == "no_answer"
    assert _log(engine, handoff.id)[-2:] == [
        ("no_answer", 1, None, "no_answer"),
        ("returned", None, None, "no_answer"),
    ]


def test_the_helper_records_an_outcome_and_a_follow_up_becomes_a_callback(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    twilio_post: Callable[..., Any],
) -> None:
    c = _desk_to_conference(call, "3")  # navigator
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    # Without a dial job in this story, the attempt is written as the job would.
    handoffs.record_event(
        engine,
        handoff.id,
        handoffs.HandoffEvent.DIALING,
        source=handoffs.EventSource.BRIDGELINE,
        dedupe_key=f"h{handoff.id}:a1:dialing",
        occurred_at=WEDNESDAY_11AM,
        attempt=1,
        member_id="nav-brooks",
    )
    helper = call(f"/voice/handoff/whisper?h={handoff.id}&at=1", call_sid=HELPER_1)
    helper.press("1")
    _conference(
        twilio_post, live, "participant-join", 3, 20, label=f"helper-{handoff.id}-1", sid=HELPER_1
    )
    follow_up = WEDNESDAY_11AM + timedelta(days=1)
    saved = handoffs.record_outcome(
        engine,
        handoff.id,
        "referred",
        "housing list",
        follow_up,
        "nav-brooks",
        now=WEDNESDAY_11AM + timedelta(minutes=10),
    )
    assert saved.outcome == "referred" and saved.follow_up_at == follow_up
    assert saved.outcome_note == "housing list" and saved.outcome_by == "nav-brooks"
    with engine.connect() as conn:
        row = conn.execute(sa.select(callbacks)).one()
    assert row.source == "clinician_follow_up" and row.phone_number == "+15205550123"
    assert handoffs.handoffs_for_helper(engine, "nav-brooks")[0].id == handoff.id
    assert handoffs.handoffs_for_helper(engine, "clin-rivera") == []
    assert _log(engine, handoff.id)[-1] == ("outcome_recorded", None, "nav-brooks", None)
    # A helper whose attempt is over hears that the call is no longer waiting for them.
    again = call(f"/voice/handoff/whisper?h={handoff.id}&at=1", call_sid=HELPER_1)
    assert "no longer waiting for you" in again.heard_since_last()
    with pytest.raises(handoffs.HandoffError):
        handoffs.record_outcome(engine, handoff.id, "vanished", None, None, "nav-brooks")


def _event(i: int, event: str, seconds: int, attempt: int | None = None, **kw: Any) -> Any:
    return handoffs.EventRecord(
        id=i,
        handoff_id=1,
        event=handoffs.HandoffEvent(event),
        source=handoffs.EventSource.TWILIO,
        occurred_at=WEDNESDAY_11AM + timedelta(seconds=seconds),
        attempt=attempt,
        **kw,
    )


STORY = [
    ("requested", 0, None),
    ("dialing", 1, 1),
    ("ringing", 3, 1),
    ("answered", 6, 1),
    ("declined", 10, 1),
    ("helper_left", 11, 1),
    ("dialing", 12, 2),
    ("ringing", 14, 2),
    ("answered", 17, 2),
    ("accepted", 18, 2),
    ("helper_joined", 20, 2),
    ("call_taker_left", 40, None),
]


@given(st.permutations(range(len(STORY))), st.lists(st.integers(0, len(STORY) - 1), max_size=4))
@settings(max_examples=200, deadline=None)
def test_the_status_does_not_depend_on_the_order_or_repetition_callbacks_arrive_in(
    order: list[int], repeats: list[int]
) -> None:
    arrivals = [*order, *repeats]  # ids follow arrival order; repeats are late duplicates
    events = [_event(n, *STORY[k]) for n, k in enumerate(arrivals, start=1)]
    derived = handoffs.derive(events)
    assert derived.status is HandoffStatus.CONNECTED
    assert derived.attempt == 2
    assert derived.last_failure == "declined"
    assert derived.connected_at == WEDNESDAY_11AM + timedelta(seconds=20)


def test_no_one_on_duty_is_recorded_with_its_reason_and_nobody_is_dialed(
    engine: sa.Engine, app: Any
) -> None:
    saturday_night = WEDNESDAY_11AM + timedelta(days=3, hours=12)  # Saturday 23:00 Phoenix
    handoffs.open_live_call(
        engine,
        call_sid="CA" + "9" * 32,
        origin=handoffs.Origin.INTAKE,
        callback_number="+15205550123",
        call_taker_staff_id="4821",
        now=saturday_night,
    )
    queues = app.extensions["bridgeline"].queues
    calm = {
        "weapon": False,
        "immediate_danger": False,
        "violence": False,
        "medical": False,
        "consent": True,
        "health_question": False,
    }
    with app.app_context():
        refused = handoffs.start_handoff(
            engine,
            queues,
            call_sid="CA" + "9" * 32,
            call_taker_staff_id="4821",
            helper_type="navigator",
            answers=calm,
            reason=None,
            now=saturday_night,
        )
        unsafe = handoffs.start_handoff(
            engine,
            queues,
            call_sid="CA" + "9" * 32,
            call_taker_staff_id="4821",
            helper_type="crisis_988",
            answers={**calm, "immediate_danger": True},
            reason=None,
            now=saturday_night,
        )
    assert (refused.status, refused.reason_code) == (HandoffStatus.NOT_STARTED, "no_one_on_duty")
    assert (unsafe.status, unsafe.reason_code) == (HandoffStatus.NOT_STARTED, "not_eligible_danger")
    assert refused.chain == () and unsafe.chain == ()
    assert queues.queue("urgent").count == 0


def test_with_redis_down_the_handoff_is_recorded_and_the_sweep_dials_when_redis_is_back(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    worker_clock: Callable[..., None],
) -> None:
    from ivr.queueing import Queues, connect
    from workers.handoffs import sweep_handoffs

    working = desk.queues
    desk.queues = Queues(connect("redis://127.0.0.1:1/0", 0.2), "bltest")
    c = _desk_to_conference(call, "3")  # navigator
    assert "Calling a community navigator now." in c.heard
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    assert handoff.status is HandoffStatus.REQUESTED
    desk.queues = working
    assert run_jobs() == 0  # the dial job was never queued
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=31))
    assert sweep_handoffs() == 1
    _expect_helper_dial(twilio_api, HELPER_1)
    assert run_jobs() == 1
    assert form_of(twilio_api.calls[-1].request)["To"] == ["+15205550161"]


def test_a_call_taker_who_leaves_before_a_helper_has_the_caller_is_replaced(
    call: Place,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    caller = call("/voice/intake", from_number="+15205550123")
    live = handoffs.live_call_by_sid(engine, caller.call_sid)
    assert live is not None
    participants = _participants_url(live.conference_name)
    twilio_api.add(responses.POST, participants, json={"call_sid": "CA" + "7" * 32}, status=201)
    twilio_api.add(responses.POST, participants, json={"call_sid": "CA" + "8" * 32}, status=201)
    run_jobs()
    taker = "CA" + "7" * 32
    _conference(twilio_post, live, "participant-join", 2, 5, label="call-taker", sid=taker)
    _conference(twilio_post, live, "participant-leave", 3, 9, label="call-taker", sid=taker)
    _conference(twilio_post, live, "participant-leave", 3, 9, label="call-taker", sid=taker)
    assert run_jobs() == 1  # left twice (a repeated callback): one replacement dialed
    assert [form_of(r.request)["To"] for r in twilio_api.calls] == [
        ["+15205550171"],
        ["+15205550311"],  # the next in line: the fallback line
    ]
    waiting = handoffs.get_live_call(engine, live.id)
    assert waiting is not None and waiting.status is handoffs.LiveCallStatus.WAITING
    assert waiting.call_taker_attempt == 2


def test_when_the_helper_hangs_up_after_the_call_taker_left_the_caller_is_not_left_on_hold_music(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    c = _desk_to_conference(call, "3")  # navigator
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    hid = handoff.id
    _expect_helper_dial(twilio_api, HELPER_1)
    assert run_jobs() == 1
    _conference(twilio_post, live, "conference-start", 1, 1)
    _conference(twilio_post, live, "participant-join", 2, 1, label="caller", sid=c.call_sid)
    _status(twilio_post, hid, 1, HELPER_1, "in-progress", 2, 4)
    helper = call(f"/voice/handoff/whisper?h={hid}&at=1", from_number=CALLER_ID, call_sid=HELPER_1)
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=8)
    helper.press("1")
    _conference(twilio_post, live, "participant-join", 3, 9, label=f"helper-{hid}-1", sid=HELPER_1)
    twilio_api.add(
        responses.POST,
        participant_url(CONFERENCE_SID, "caller"),
        json={"call_sid": c.call_sid, "conference_sid": CONFERENCE_SID, "label": "caller"},
    )
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=10))
    assert run_jobs() == 1  # "connected, you may hang up" to the desk leg

    # The helper says goodbye and hangs up; only the caller's leg is left in the conference.
    conference_url = (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Conferences/{CONFERENCE_SID}"
    )
    twilio_api.add(
        responses.GET,
        f"{conference_url}/Participants.json",
        json={
            "participants": [
                {"call_sid": c.call_sid, "conference_sid": CONFERENCE_SID, "label": "caller"}
            ],
            "meta": {"page": 0, "page_size": 20, "next_page_url": None, "key": "participants"},
        },
    )
    ended = twilio_api.add(
        responses.POST,
        f"{conference_url}.json",
        json={"sid": CONFERENCE_SID, "status": "completed"},
    )
    _conference(
        twilio_post, live, "participant-leave", 4, 400, label=f"helper-{hid}-1", sid=HELPER_1
    )
    assert run_jobs() == 1
    assert ended.call_count == 1
    assert form_of(ended.calls[0].request) == {"Status": ["completed"]}
    # Twilio sends the same leave again: it is news no more, nothing is ended twice.
    _conference(
        twilio_post, live, "participant-leave", 4, 400, label=f"helper-{hid}-1", sid=HELPER_1
    )
    assert run_jobs() == 0
    assert ended.call_count == 1

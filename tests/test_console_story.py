"""The console says what happened in plain words with names, one line per real step, and where
each call stands, derived from its handoffs (pure functions: no Flask, no database)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ivr.console.story import call_state, handoff_story, ringing_since
from ivr.decisions.handoffs import (
    EventRecord,
    EventSource,
    Handoff,
    HandoffEvent,
    HandoffStatus,
    LiveCall,
    LiveCallStatus,
    Origin,
)

T0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
NAMES = {"clin-rivera": "Dana Rivera", "clin-okafor": "Sam Okafor", "4501": "Casey Morgan"}
_ids = itertools.count(1)


def ev(
    event: HandoffEvent, s: int, source: EventSource = EventSource.TWILIO, **kw: object
) -> EventRecord:
    return EventRecord(
        id=next(_ids), handoff_id=1, event=event, source=source,
        occurred_at=T0 + timedelta(seconds=s), **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def story(events: list[EventRecord]) -> list[str]:
    return [
        line.text
        for line in handoff_story(
            events, helper_label="embedded clinician", member_name=NAMES.get, staff_name=NAMES.get
        )
    ]


def test_a_declined_first_helper_and_an_accepted_second_read_as_one_line_per_step() -> None:
    history = [
        ev(HandoffEvent.REQUESTED, 0, EventSource.STAFF),
        ev(HandoffEvent.DIALING, 1, EventSource.BRIDGELINE, attempt=1, member_id="clin-rivera"),
        # the same dial, recorded again once Twilio placed it
        ev(HandoffEvent.DIALING, 1, EventSource.BRIDGELINE, attempt=1, member_id="clin-rivera", call_sid="CA1"),
        ev(HandoffEvent.RINGING, 2, attempt=1),
        ev(HandoffEvent.RINGING, 2, attempt=1),  # Twilio sent it twice
        ev(HandoffEvent.DECLINED, 5, EventSource.STAFF, attempt=1, member_id="clin-rivera"),
        ev(HandoffEvent.HELPER_LEFT, 6, attempt=1),  # her leg just ended: not "left the call"
        ev(HandoffEvent.DIALING, 7, EventSource.BRIDGELINE, attempt=2, member_id="clin-okafor"),
        ev(HandoffEvent.ANSWERED, 9, attempt=2),
        ev(HandoffEvent.ACCEPTED, 12, EventSource.STAFF, attempt=2, member_id="clin-okafor"),
        ev(HandoffEvent.HELPER_JOINED, 13, attempt=2),
        ev(HandoffEvent.ANNOUNCED, 14, EventSource.BRIDGELINE),
        ev(HandoffEvent.HELPER_LEFT, 600, attempt=2),
    ]  # fmt: skip
    assert story(history) == [
        "Embedded clinician asked for",
        "Calling Dana Rivera",
        "Dana Rivera's phone is ringing",
        "Dana Rivera declined",
        "Calling Sam Okafor",
        "Sam Okafor answered and hears the summary",
        "Sam Okafor accepted",
        "Sam Okafor joined the caller",
        "The call-taker heard that the helper is connected",
        "Sam Okafor left the call",
    ]
    assert not any("clin-" in line for line in story(history))  # names, never roster ids


def test_a_cancel_and_a_refusal_name_who_and_why() -> None:
    cancelled = [
        ev(HandoffEvent.REQUESTED, 0, EventSource.STAFF, member_id=None),
        ev(HandoffEvent.DIALING, 1, EventSource.BRIDGELINE, attempt=1, member_id="clin-rivera"),
        ev(HandoffEvent.CANCELLED_BY_CALL_TAKER, 4, EventSource.STAFF, member_id="4501"),
    ]  # fmt: skip
    assert story(cancelled)[-1] == "Cancelled by Casey Morgan"
    refused = [
        ev(HandoffEvent.REQUESTED, 0, EventSource.STAFF),
        ev(HandoffEvent.NOT_STARTED, 0, EventSource.BRIDGELINE, reason="not_eligible_weapon"),
    ]
    assert story(refused)[-1] == "Not started: a weapon is involved"


def live(
    origin: Origin = Origin.INTAKE, status: LiveCallStatus = LiveCallStatus.WITH_CALL_TAKER
) -> LiveCall:
    return LiveCall(
        id=1, conference_name="bl-CA1", conference_sid=None, origin=origin, call_sid="CA1",
        callback_number=None, call_taker_staff_id=None, call_taker_call_sid=None,
        call_taker_attempt=1, status=status, created_at=T0, ended_at=None,
    )  # fmt: skip


def handoff(status: HandoffStatus, member: str | None = "clin-rivera", hid: int = 1) -> Handoff:
    return Handoff(
        id=hid, live_call_id=1, origin=Origin.DESK, call_taker_staff_id="4501",
        helper_type="embedded_clinician", answers={}, chain=("clin-rivera",), reason=None,
        callback_number=None, status=status, reason_code=None, attempt=1, member_id=member,
        helper_call_sid=None, outcome=None, outcome_note=None, follow_up_at=None, outcome_by=None,
        callback_id=None, created_at=T0, updated_at=T0, accepted_at=None,
        connected_at=T0 + timedelta(seconds=20), ended_at=None,
    )  # fmt: skip


def state(call: LiveCall, items: list[Handoff], **kw: object) -> tuple[str, str]:
    found = call_state(call, items, call_taker="Casey Morgan", member_name=NAMES.get, **kw)  # type: ignore[arg-type]
    return found.code, found.words


def test_a_desk_call_with_a_clinician_connected_says_so_not_waiting() -> None:
    desk = live(Origin.DESK, LiveCallStatus.WAITING)
    assert state(desk, [handoff(HandoffStatus.CONNECTED)]) == (
        "helper_connected",
        "helper connected: Dana Rivera",
    )
    assert state(desk, [handoff(HandoffStatus.CONNECTED)], call_taker_left=True) == (
        "helper_connected_alone",
        "with Dana Rivera; call-taker left",
    )


def test_the_call_state_follows_its_newest_handoff() -> None:
    call = live()
    assert state(call, []) == ("with_call_taker", "with Casey Morgan")
    assert state(live(status=LiveCallStatus.WAITING), []) == ("waiting", "waiting for a call-taker")
    assert state(call, [handoff(HandoffStatus.RINGING)]) == (
        "helper_ringing",
        "helper ringing: Dana Rivera",
    )
    assert state(call, [handoff(HandoffStatus.REQUESTED, None)]) == (
        "helper_ringing",
        "calling a helper",
    )
    assert state(call, [handoff(HandoffStatus.ACCEPTED)]) == (
        "helper_joining",
        "helper joining: Dana Rivera",
    )
    after_cancel = [handoff(HandoffStatus.CANCELLED), handoff(HandoffStatus.RETURNED, hid=2)]
    assert state(call, after_cancel) == ("with_call_taker", "with Casey Morgan")
    ended = replace(call, status=LiveCallStatus.ENDED)
    assert state(ended, [handoff(HandoffStatus.CONNECTED)]) == ("ended", "ended")


def test_the_ringing_timer_starts_at_the_current_attempts_first_dial() -> None:
    history = [
        ev(HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera"),
        ev(HandoffEvent.DIALING, 30, attempt=2, member_id="clin-okafor"),
        ev(HandoffEvent.DIALING, 31, attempt=2, member_id="clin-okafor", call_sid="CA2"),
    ]
    assert ringing_since(history, 2) == T0 + timedelta(seconds=30)
    assert ringing_since(history, 3) is None

# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""Drops nobody saw: a caller who hangs up while the desk says "Calling an embedded clinician
now", after the handoff is recorded and the helper dialed but before their leg joins the
conference. No conference event tells of it, so Bridgeline learns it from the leg's own status
callback (the number's "call status changes" URL) or, without one, by asking Twilio about the
caller's call once the announcement is over. Either way: a dropped-handoff callback is recorded
(timed by callbacks.yaml), the helper's phone stops ringing, and a helper who answers anyway
is told the caller is gone instead of being connected to nobody.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from flask import Flask
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler

from ivr.accounts import Staff
from ivr.decisions.handoffs import HandoffStatus, LiveCallStatus
from ivr.flows import handoffs
from ivr.flows.desk import CALLER_CHECK_SECONDS, TransferDesk
from ivr.queueing import Queues
from ivr.simulator import Call
from ivr.store.tables import callbacks
from tests.conftest import ACCOUNT_SID
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    CALLS_URL,
    PSAP_LINE,
    WEDNESDAY_11AM,
    call_json,
    call_taker,
    call_url,
    desk,
    form_of,
    twilio_post,
    worker_clock,
)

Place = Callable[..., Call]
HELPER = "CA" + "1" * 32


def ts(seconds: int) -> str:
    """Twilio's Timestamp / end_time, `seconds` after Wednesday 11:00 Phoenix."""
    return format_datetime(WEDNESDAY_11AM + timedelta(seconds=seconds), usegmt=True)


def _desk_hands_off_to_the_clinician(call: Place, number_keys: str = "5205550123#") -> Call:
    """A call-taker signs in, answers the tree for a calm caller, picks the embedded clinician
    and the reason (mental health) and gives the caller's number (a star first: the caller speaks Spanish): the desk
    announces the helper, then the conference."""
    c = call("/voice/transfer-desk", from_number=PSAP_LINE)
    c.press("4821#")
    c.press("2468#")
    for answer in ("2", "2", "2", "1", "2", "2"):
        c.press(answer)
    c.press("1")
    assert "What is the call about?" in c.heard_since_last()
    c.press("1")  # mental health
    assert "If the caller speaks Spanish, press star before the number." in c.heard_since_last()
    c.press(number_keys)
    assert "Calling an embedded clinician now" in c.heard
    return c


def _helper_is_ringing(
    call: Place,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    number_keys: str = "5205550123#",
) -> tuple[Call, handoffs.LiveCall, handoffs.Handoff]:
    c = _desk_hands_off_to_the_clinician(call, number_keys)
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    twilio_api.add(responses.POST, CALLS_URL, body=call_json(HELPER), status=201)
    assert run_jobs() == 1
    twilio_post(
        f"/voice/handoff/helper-status?h={handoff.id}&at=1",
        {"AccountSid": ACCOUNT_SID, "CallSid": HELPER, "CallStatus": "ringing",
         "SequenceNumber": "1", "Timestamp": ts(2)},
    )  # fmt: skip
    return c, live, handoff


def _the_dropped_callback(engine: sa.Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(callbacks)).one()


def _expect_helper_hung_up(twilio_api: responses.RequestsMock) -> None:
    twilio_api.add(responses.POST, call_url(HELPER), body=call_json(HELPER, status="completed"))


def test_the_desk_legs_status_callback_records_the_drop_and_stops_the_helper(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    c, live, handoff = _helper_is_ringing(call, engine, run_jobs, twilio_api, twilio_post)
    c.hang_up()  # during the announcement: the leg never reached the conference
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=4)
    twilio_post(
        "/voice/transfer-desk/status",
        {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed",
         "CallDuration": "40", "Timestamp": ts(3)},
    )  # fmt: skip
    dropped = handoffs.get_handoff(engine, handoff.id)
    assert dropped is not None and dropped.status is HandoffStatus.CALLER_DROPPED
    assert dropped.reason_code == "caller_hung_up"
    row = _the_dropped_callback(engine)
    assert row.source == "dropped_handoff" and row.phone_number == "+15205550123"
    assert row.language == "en"
    assert dropped.callback_id == row.id
    ended = handoffs.get_live_call(engine, live.id)
    assert ended is not None and ended.status is LiveCallStatus.ENDED
    # The helper's phone stops ringing.
    _expect_helper_hung_up(twilio_api)
    assert run_jobs() == 1
    assert form_of(twilio_api.calls[-1].request) == {"Status": ["completed"]}
    # Twilio sends the callback again: nothing more happens.
    twilio_post(
        "/voice/transfer-desk/status",
        {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed",
         "Timestamp": ts(3)},
    )  # fmt: skip
    assert run_jobs() == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(callbacks)).scalar() == 1


def test_the_dropped_callback_follows_callbacks_yaml_not_a_fixed_hour(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    from ivr.voice.callback_routes import line_of

    c, _live, _handoff = _helper_is_ringing(call, engine, run_jobs, twilio_api, twilio_post)
    twilio_post(
        "/voice/transfer-desk/status",
        {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed"},
    )
    row = _the_dropped_callback(engine)
    rule = line_of(app).config.rule("dropped_handoff")
    due = row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=UTC)
    deadline = row.deadline_at if row.deadline_at.tzinfo else row.deadline_at.replace(tzinfo=UTC)
    assert deadline - due == rule.deadline == timedelta(minutes=15)
    assert due == WEDNESDAY_11AM  # due at once
    _expect_helper_hung_up(twilio_api)
    run_jobs()


def _tick_scheduler(queues: Queues, at: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """RQ's scheduler, as the worker runs it, at time `at`: due jobs move to their queues."""
    monkeypatch.setattr("rq.scheduler.current_timestamp", lambda: int(at.timestamp()))
    scheduler = RQScheduler(queues.all(), connection=queues.connection)
    scheduler.acquire_locks()
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()


def _scheduled_checks(queues: Queues) -> list[str]:
    registry = ScheduledJobRegistry(queue=queues.queue("urgent"))
    return [j for j in registry.get_job_ids() if "caller-check" in j]


def test_without_a_status_callback_twilio_is_asked_once_the_announcement_is_over(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    queues: Queues,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c, _live, handoff = _helper_is_ringing(call, engine, run_jobs, twilio_api, twilio_post)
    assert len(_scheduled_checks(queues)) == 1
    c.hang_up()
    # Nothing reported the hang-up. When the check is due, Twilio says the call is over.
    twilio_api.add(
        responses.GET,
        call_url(c.call_sid),
        json={"sid": c.call_sid, "account_sid": ACCOUNT_SID, "status": "completed",
              "end_time": ts(3), "to": "+15205550100", "from": PSAP_LINE},
    )  # fmt: skip
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=CALLER_CHECK_SECONDS))
    _tick_scheduler(
        queues, datetime.now(UTC) + timedelta(seconds=CALLER_CHECK_SECONDS + 1), monkeypatch
    )
    _expect_helper_hung_up(twilio_api)
    assert run_jobs() == 2  # the check, then stopping the helper's call
    dropped = handoffs.get_handoff(engine, handoff.id)
    assert dropped is not None and dropped.status is HandoffStatus.CALLER_DROPPED
    caller_left = [
        e for e in handoffs.handoff_events(engine, handoff.id) if e.event.value == "caller_left"
    ]
    assert [e.occurred_at.replace(tzinfo=UTC) for e in caller_left] == [
        WEDNESDAY_11AM + timedelta(seconds=3)  # when Twilio says the call ended
    ]
    assert _the_dropped_callback(engine).source == "dropped_handoff"
    assert form_of(twilio_api.calls[-1].request) == {"Status": ["completed"]}
    # The helper answers anyway: told the caller is gone, never put in an empty conference.
    response = twilio_post(f"/voice/handoff/whisper?h={handoff.id}&at=1", {"CallSid": HELPER})
    assert b"no longer waiting" in response.data and b"<Conference" not in response.data
    response = twilio_post(
        f"/voice/handoff/whisper/answer?h={handoff.id}&at=1&t=0",
        {"CallSid": HELPER, "Digits": "1"},
    )
    assert b"<Conference" not in response.data
    assert handoffs.get_handoff(engine, handoff.id).status is HandoffStatus.CALLER_DROPPED  # type: ignore[union-attr]


def test_a_caller_still_on_the_line_when_checked_changes_nothing(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    queues: Queues,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c, _live, handoff = _helper_is_ringing(call, engine, run_jobs, twilio_api, twilio_post)
    twilio_api.add(
        responses.GET,
        call_url(c.call_sid),
        json={"sid": c.call_sid, "account_sid": ACCOUNT_SID, "status": "in-progress"},
    )
    _tick_scheduler(
        queues, datetime.now(UTC) + timedelta(seconds=CALLER_CHECK_SECONDS + 1), monkeypatch
    )
    assert run_jobs() == 1
    still = handoffs.get_handoff(engine, handoff.id)
    assert still is not None and still.status is HandoffStatus.RINGING
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(callbacks)).scalar() == 0


def test_an_intake_caller_who_hangs_up_during_the_greeting_ends_the_live_call(
    call: Place,
    desk: TransferDesk,
    engine: sa.Engine,
    twilio_post: Callable[..., Any],
) -> None:
    c = call("/voice/intake", from_number="+15205550123")
    c.hang_up()
    twilio_post(
        "/voice/intake/status",
        {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed"},
    )
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None and live.status is LiveCallStatus.ENDED


def test_a_spanish_speaking_callers_dropped_callback_is_made_in_spanish(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    c, live, _handoff = _helper_is_ringing(
        call, engine, run_jobs, twilio_api, twilio_post, number_keys="*5205550123#"
    )
    assert live.language == "es" and live.callback_number == "+15205550123"
    twilio_post(
        "/voice/transfer-desk/status",
        {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed"},
    )
    row = _the_dropped_callback(engine)
    assert (row.source, row.language, row.phone_number) == (
        "dropped_handoff",
        "es",
        "+15205550123",
    )
    _expect_helper_hung_up(twilio_api)
    run_jobs()


def test_twilio_events_stamped_in_the_same_second_as_ours_are_not_lost(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    """Twilio's Timestamp has whole seconds, ours microseconds: a 'ringing' and a hang-up that
    Twilio stamps 11:00:00 come after our dial at 11:00:00.7, not before it."""
    moment = WEDNESDAY_11AM + timedelta(milliseconds=700)
    desk.clock = lambda: moment
    worker_clock(moment)
    c = _desk_hands_off_to_the_clinician(call)
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    twilio_api.add(responses.POST, CALLS_URL, body=call_json(HELPER), status=201)
    assert run_jobs() == 1
    twilio_post(
        f"/voice/handoff/helper-status?h={handoff.id}&at=1",
        {"AccountSid": ACCOUNT_SID, "CallSid": HELPER, "CallStatus": "ringing",
         "SequenceNumber": "0", "Timestamp": ts(0)},
    )  # fmt: skip
    ringing = handoffs.get_handoff(engine, handoff.id)
    assert ringing is not None and ringing.status is HandoffStatus.RINGING
    twilio_post(
        "/voice/transfer-desk/status",
        {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed",
         "Timestamp": ts(0)},
    )  # fmt: skip
    dropped = handoffs.get_handoff(engine, handoff.id)
    assert dropped is not None and dropped.status is HandoffStatus.CALLER_DROPPED
    assert dropped.helper_call_sid == HELPER  # it still knows whom it had dialed
    _expect_helper_hung_up(twilio_api)
    assert run_jobs() == 1
    assert twilio_api.calls[-1].request.url.endswith(f"/Calls/{HELPER}.json")


def test_with_redis_down_the_desk_legs_status_callback_still_records_the_drop(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    from ivr.queueing import connect

    c, _live, handoff = _helper_is_ringing(call, engine, run_jobs, twilio_api, twilio_post)
    c.hang_up()
    working = desk.queues
    desk.queues = Queues(connect("redis://127.0.0.1:1/0", 0.2), "bltest")
    response = twilio_post(  # Twilio gets TwiML (twilio_post checks it), never an error page
        "/voice/transfer-desk/status",
        {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed",
         "Timestamp": ts(3)},
    )  # fmt: skip
    assert response.status_code == 200
    desk.queues = working
    # Recorded before anything was queued: the drop and its callback are in SQL.
    dropped = handoffs.get_handoff(engine, handoff.id)
    assert dropped is not None and dropped.status is HandoffStatus.CALLER_DROPPED
    assert _the_dropped_callback(engine).source == "dropped_handoff"


def test_a_caller_who_hangs_up_while_the_fallback_is_about_to_dial_gets_no_second_helper_rung(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two workers: the clinician does not answer, and the job that dials the next helper has
    read the handoff (falling back, the caller still there) when the caller's own call ends on
    a web process. Whichever records second sees the other: the next helper is never rung for
    a caller who is gone (the drop is recorded, the first helper's call stopped)."""
    import workers.handoffs

    c, live, handoff = _helper_is_ringing(call, engine, run_jobs, twilio_api, twilio_post)
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=2))
    twilio_post(
        f"/voice/handoff/helper-status?h={handoff.id}&at=1",
        {"AccountSid": ACCOUNT_SID, "CallSid": HELPER, "CallStatus": "no-answer",
         "SequenceNumber": "2", "Timestamp": ts(2)},
    )  # fmt: skip
    falling = handoffs.get_handoff(engine, handoff.id)
    assert falling is not None and falling.status is HandoffStatus.FALLING_BACK

    checked = workers.handoffs._before_the_next_helper

    def caller_hangs_up_right_after_the_check(*args: Any) -> str | None:
        verdict = checked(*args)  # the dial job's own reads: the caller is still there
        c.hang_up()
        desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=3)
        twilio_post(
            "/voice/transfer-desk/status",
            {"AccountSid": ACCOUNT_SID, "CallSid": c.call_sid, "CallStatus": "completed",
             "Timestamp": ts(3)},
        )  # fmt: skip
        return verdict

    monkeypatch.setattr(
        workers.handoffs, "_before_the_next_helper", caller_hangs_up_right_after_the_check
    )
    second = "CA" + "2" * 32
    twilio_api.add(responses.POST, CALLS_URL, body=call_json(second), status=201)
    twilio_api.add(responses.POST, call_url(second), body=call_json(second, status="completed"))
    _expect_helper_hung_up(twilio_api)
    run_jobs()

    dials = [r for r in twilio_api.calls if r.request.url == CALLS_URL]
    assert len(dials) == 1, "a second helper was dialed after the caller hung up"
    twilio_api.remove(responses.POST, CALLS_URL)  # what a second dial would have been answered
    twilio_api.remove(responses.POST, call_url(second))
    dropped = handoffs.get_handoff(engine, handoff.id)
    assert dropped is not None and dropped.status is HandoffStatus.CALLER_DROPPED
    assert dropped.attempt == 1
    assert _the_dropped_callback(engine).source == "dropped_handoff"
    ended = handoffs.get_live_call(engine, live.id)
    assert ended is not None and ended.status is LiveCallStatus.ENDED

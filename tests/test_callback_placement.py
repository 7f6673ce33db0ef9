"""Callbacks as residents and supervisors live them: real Redis, RQ and its scheduler, real SQL,
Twilio's REST API mocked with `responses`, every TwiML answer checked against Twilio's schema.
Time is the test's clock (tests/callback_fixtures.py); nothing sleeps."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta
from typing import Any

import redis
import requests
import responses as responses_lib
import sqlalchemy as sa
from rq.registry import ScheduledJobRegistry

from ivr.store import audit
from ivr.store import callbacks as store
from ivr.store.callback_attempts import Claim
from ivr.store.callback_records import AttemptStatus, CallbackSource, CallbackStatus
from ivr.store.callback_tables import callback_events
from ivr.store.tables import callbacks as callbacks_table
from tests.callback_fixtures import (
    CALLS_URL,
    RESIDENT,
    CallbackWorld,
    call_json,
    clock,
    local,
    status_form,
    world,
)
from tests.conftest import ACCOUNT_SID, PUBLIC_BASE
from tests.twiml_check import check_twiml
from workers.call_rate import KEY_TEMPLATE, RateLimiterUnavailable, call_slot
from workers.callbacks import job_id, place_callback_attempt

FIXTURES = (clock, world)
"""Fixtures this module uses from tests/callback_fixtures.py (pytest finds them here)."""

NAVIGATOR = "+15205550161"
"""nav-brooks in config/roster.yaml, on duty Monday to Friday 9 to 5."""

CALLER_ID = "+15205550100"
"""caller_id in config/lines.yaml."""

OPERATOR_SPOKEN = "5 2 0, 5 5 5, 0 3 1 1"
"""The operator line (call_back_line) as a voicemail message reads it."""


def _path(url: str) -> str:
    assert url.startswith(PUBLIC_BASE), url
    return url[len(PUBLIC_BASE) :]


def _said(root: Any) -> str:
    return " ".join((el.text or "") for el in root.iter("Say"))


def _only_attempt(world: CallbackWorld, callback_id: int) -> store.Attempt:
    attempts = store.attempts_of(world.engine, callback_id)
    assert len(attempts) == 1, attempts
    return attempts[0]


def _place_one(world: CallbackWorld, callback_id: int) -> tuple[str, store.Attempt]:
    """Sweep and run the worker until the callback's next call is placed."""
    sid = world.expect_call_create()
    before = len(world.create_requests())
    world.next_call_slot()
    world.sweep()
    world.settle()
    assert len(world.create_requests()) == before + 1
    attempt = store.attempts_of(world.engine, callback_id)[-1]
    assert attempt.status is AttemptStatus.PLACED and attempt.call_sid == sid
    return sid, attempt


def test_a_callback_due_at_9_05_pm_waits_until_8_am(world: CallbackWorld) -> None:
    world.clock.set(local(6, 21, 5))  # Wednesday 9:05 p.m. in Phoenix
    callback = world.new_callback(helper_type="telehealth_nurse")

    assert world.sweep()["scheduled"] == 1
    attempt = _only_attempt(world, callback.id)
    eight = local(7, 8, 0).astimezone(UTC)
    assert attempt.scheduled_for == eight
    registry = ScheduledJobRegistry(queue=world.queues.queue("urgent"))
    assert registry.get_scheduled_time(job_id(attempt)).timestamp() == eight.timestamp()

    world.clock.set(local(7, 7, 59))
    assert world.settle() == 0  # RQ's scheduler holds it; no request reaches Twilio
    assert world.create_requests() == []

    world.expect_call_create()
    world.clock.set(local(7, 8, 0))
    assert world.settle() == 1
    assert len(world.create_requests()) == 1
    assert _only_attempt(world, callback.id).status is AttemptStatus.PLACED


def test_a_job_that_runs_in_quiet_hours_moves_itself_to_the_morning(world: CallbackWorld) -> None:
    world.clock.set(local(6, 22, 30))
    callback = world.new_callback(helper_type="telehealth_nurse")
    # An attempt a previous day's plan put at 10:30 p.m. (e.g. restored from a backup).
    attempt = store.create_attempt(world.engine, callback.id, world.clock(), world.clock())
    assert attempt is not None
    assert place_callback_attempt(attempt.id) == "quiet_hours"
    moved = store.get_attempt(world.engine, attempt.id)
    assert moved is not None and moved.status is AttemptStatus.SCHEDULED
    assert moved.scheduled_for == local(7, 8, 0).astimezone(UTC)
    assert store.get(world.engine, callback.id).last_outcome == "quiet_hours"  # type: ignore[union-attr]
    assert world.create_requests() == []


def test_three_unanswered_calls_then_the_callback_fails_and_is_raised(
    world: CallbackWorld, signed_post: Any
) -> None:
    callback = world.new_callback()  # Wednesday 10 a.m., the navigator is on duty
    for number, status in enumerate(("no-answer", "busy", "no-answer"), start=1):
        sid, attempt = _place_one(world, callback.id)
        assert attempt.number == number
        reply = signed_post(
            f"/voice/callback/status?attempt={attempt.id}", status_form(sid, status)
        )
        assert reply.status_code == 200
        after = store.get(world.engine, callback.id)
        assert after is not None and after.attempts_made == number
        if number < 3:
            wait = timedelta(minutes=10 if number == 1 else 30)
            assert after.status is CallbackStatus.PENDING
            assert after.next_attempt_at == world.clock() + wait
            world.clock.advance(minutes=wait.total_seconds() / 60)
    failed = store.get(world.engine, callback.id)
    assert failed is not None and failed.status is CallbackStatus.FAILED
    events = [e for e, _ in store.events_of(world.engine, callback.id)]
    assert events.count("placed") == 3 and "raised_to_supervisor" in events
    [listed] = store.open_callbacks_with_age(world.engine, world.clock())
    assert listed.id == callback.id and listed.escalated and listed.attempts_made == 3
    assert listed.last_outcome == "no_answer"
    # Every attempt is in the audit trail, and the chain checks out.
    trail = [
        e.action for e in audit.entries(world.engine) if e.subject == f"callback:{callback.id}"
    ]
    assert trail.count("callback.placed") == 3 and trail.count("callback.attempt_ended") == 3
    assert trail[-1] == "callback.raised_to_supervisor"
    assert audit.verify(world.engine).intact
    # Nothing more is dialed for it.
    world.sweep()
    assert world.settle() == 0 and len(world.create_requests()) == 3


def test_a_machine_hears_only_the_city_and_a_number_to_call_back(
    world: CallbackWorld, signed_post: Any
) -> None:
    callback = world.new_callback(source=CallbackSource.DROPPED_HANDOFF, helper_type="crisis_988")
    sid, attempt = _place_one(world, callback.id)
    [form] = world.create_requests()
    reply = signed_post(
        _path(form["Url"][0]),
        {"CallSid": sid, "AnsweredBy": "machine_end_beep", "CallStatus": "in-progress"},
    )
    root = check_twiml(reply.data)
    said = _said(root)
    assert OPERATOR_SPOKEN in said and "city" in said
    lowered = said.lower()
    for sensitive in (
        "crisis",
        "988",
        "nine eight eight",
        "counselor",
        "clinician",
        "nurse",
        "navigator",
        "suicide",
        "housing",
        "alone",
        "transfer",
    ):
        assert sensitive not in lowered, sensitive
    assert [el.tag for el in root] == ["Say", "Hangup"]

    signed_post(
        f"/voice/callback/status?attempt={attempt.id}",
        status_form(sid, "completed", AnsweredBy="machine_end_beep"),
    )
    ended = store.get_attempt(world.engine, attempt.id)
    assert ended is not None and ended.status is AttemptStatus.ENDED and ended.outcome == "machine"
    after = store.get(world.engine, callback.id)
    assert after is not None and after.status is CallbackStatus.PENDING  # tried again later


def test_a_person_presses_1_and_is_bridged_to_the_on_duty_navigator(
    world: CallbackWorld, signed_post: Any
) -> None:
    callback = world.new_callback(language="es")
    sid, attempt = _place_one(world, callback.id)

    [form] = world.create_requests()
    assert form["To"] == [RESIDENT]
    assert form["From"] == [CALLER_ID]
    assert form["Url"] == [f"{PUBLIC_BASE}/voice/callback/answered?attempt={attempt.id}&lang=es"]
    assert form["StatusCallback"] == [f"{PUBLIC_BASE}/voice/callback/status?attempt={attempt.id}"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["MachineDetection"] == ["DetectMessageEnd"]
    assert form["Timeout"] == ["25"]

    signed_post(f"/voice/callback/status?attempt={attempt.id}", status_form(sid, "ringing"))
    reply = signed_post(_path(form["Url"][0]), {"CallSid": sid, "AnsweredBy": "human"})
    root = check_twiml(reply.data)
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert "oprima 1" in _said(root) and "oprima 9" in _said(root)

    reply = signed_post(_path(gather.get("action")), {"CallSid": sid, "Digits": "1"})
    root = check_twiml(reply.data)
    dial = root.find("Dial")
    assert dial is not None and dial.get("callerId") == CALLER_ID
    number = dial.find("Number")
    assert number is not None and number.text == NAVIGATOR
    assert store.get_attempt(world.engine, attempt.id).status is AttemptStatus.BRIDGING  # type: ignore[union-attr]

    helper_leg = {"CallSid": "CA" + "b" * 32, "To": NAVIGATOR}
    reply = signed_post(_path(number.get("url")), helper_leg)
    whisper = check_twiml(reply.data)
    assert "community navigator" in _said(whisper) and "Spanish" in _said(whisper)
    accept = whisper.find("Gather")
    assert accept is not None
    reply = signed_post(_path(accept.get("action")), {**helper_leg, "Digits": "1"})
    assert len(check_twiml(reply.data)) == 0  # an empty answer: Twilio bridges the two
    connected = store.get_attempt(world.engine, attempt.id)
    assert connected is not None and connected.status is AttemptStatus.CONNECTED
    assert connected.helper_member_id == "nav-brooks"

    reply = signed_post(_path(dial.get("action")), {"CallSid": sid, "DialCallStatus": "completed"})
    assert [el.tag for el in check_twiml(reply.data)] == ["Say", "Hangup"]
    signed_post(f"/voice/callback/status?attempt={attempt.id}", status_form(sid, "completed"))
    done = store.get(world.engine, callback.id)
    assert done is not None and done.status is CallbackStatus.DONE
    assert store.open_callbacks_with_age(world.engine, world.clock()) == []


def test_a_helper_who_does_not_accept_leaves_the_resident_told_and_the_callback_open(
    world: CallbackWorld, signed_post: Any
) -> None:
    callback = world.new_callback()
    sid, attempt = _place_one(world, callback.id)
    [form] = world.create_requests()
    reply = signed_post(_path(form["Url"][0]), {"CallSid": sid, "AnsweredBy": "human"})
    action = check_twiml(reply.data).find("Gather").get("action")  # type: ignore[union-attr]
    dial = check_twiml(signed_post(_path(action), {"CallSid": sid, "Digits": "1"}).data).find(
        "Dial"
    )
    assert dial is not None
    helper_leg = {"CallSid": "CA" + "c" * 32, "To": NAVIGATOR}
    whisper = check_twiml(signed_post(_path(dial.find("Number").get("url")), helper_leg).data)  # type: ignore[union-attr]
    declined = signed_post(
        _path(whisper.find("Gather").get("action")), {**helper_leg, "Digits": ""}
    )  # type: ignore[union-attr]
    assert [el.tag for el in check_twiml(declined.data)] == ["Hangup"]
    # Only one navigator is on duty: the resident hears that we will call back.
    told = check_twiml(
        signed_post(_path(dial.get("action")), {"CallSid": sid, "DialCallStatus": "completed"}).data
    )
    assert "call you back soon" in _said(told)
    signed_post(f"/voice/callback/status?attempt={attempt.id}", status_form(sid, "completed"))
    ended = store.get_attempt(world.engine, attempt.id)
    assert ended is not None and ended.outcome == "helper_unavailable"
    assert store.get(world.engine, callback.id).status is CallbackStatus.PENDING  # type: ignore[union-attr]


def test_the_same_job_run_twice_and_two_workers_place_one_call(world: CallbackWorld) -> None:
    callback = world.new_callback()
    world.sweep()
    attempt = _only_attempt(world, callback.id)
    # A retried job and a duplicate enqueue, next to the sweep's own job.
    world.queues.queue("urgent").enqueue(place_callback_attempt, attempt.id)
    world.queues.queue("default").enqueue(place_callback_attempt, attempt.id)
    world.expect_call_create()
    assert world.run_jobs() == 3
    assert len(world.create_requests()) == 1
    assert place_callback_attempt(attempt.id) == "placed"  # run again by hand: nothing
    assert len(world.create_requests()) == 1

    # Two workers racing for the claim itself: exactly one wins.
    other = world.new_callback()
    second = store.create_attempt(world.engine, other.id, world.clock(), world.clock())
    assert second is not None
    results: list[Claim] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        results.append(store.claim_attempt(world.engine, second.id, world.clock()))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.value for r in results) == ["taken"] * 5 + ["won"]


def _list_calls(world: CallbackWorld, calls: list[dict[str, Any]]) -> None:
    world.twilio.add(
        responses_lib.GET,
        CALLS_URL,
        json={
            "calls": calls,
            "first_page_uri": "/x",
            "next_page_uri": None,
            "previous_page_uri": None,
            "page": 0,
            "page_size": 20,
            "uri": "/x",
            "end": len(calls) - 1,
            "start": 0,
        },
    )


def test_a_create_request_that_times_out_is_checked_in_twilios_list_not_sent_again(
    world: CallbackWorld,
) -> None:
    callback = world.new_callback()
    world.expect_call_create(body=requests.exceptions.ReadTimeout("read timed out"))
    sid = "CA" + "a" * 32
    _list_calls(world, [call_json(sid, RESIDENT, status="queued", date_created=None)])
    world.next_call_slot()
    world.sweep()
    world.settle()
    attempt = _only_attempt(world, callback.id)
    assert attempt.status is AttemptStatus.PLACED and attempt.call_sid == sid
    assert len(world.create_requests()) == 1


def test_when_twilio_cannot_be_asked_the_sweep_settles_the_attempt_later(
    world: CallbackWorld,
) -> None:
    callback = world.new_callback()
    world.expect_call_create(body=requests.exceptions.ReadTimeout("read timed out"))
    for _ in range(4):  # twilio_rest's list retries all meet a Twilio outage
        world.twilio.add(
            responses_lib.GET,
            CALLS_URL,
            json={"code": 20503, "message": "Service unavailable", "status": 503},
            status=503,
        )
    world.next_call_slot()
    world.sweep()
    world.settle()
    attempt = _only_attempt(world, callback.id)
    assert attempt.status is AttemptStatus.DIALING and attempt.call_sid is None
    assert len(world.create_requests()) == 1
    assert len(world.pauses) == 4  # after the timeout and between list retries: not slept
    world.sweep()  # not stale yet: Twilio is not asked again
    assert len(world.create_requests()) == 1

    world.clock.advance(minutes=6)
    sid = "CA" + "d" * 32
    _list_calls(
        world,
        [
            call_json(
                sid, RESIDENT, status="no-answer", date_created="Wed, 06 Mar 2030 17:00:30 +0000"
            )
        ],
    )
    assert world.sweep()["reconciled"] == 1
    settled = store.get_attempt(world.engine, attempt.id)
    assert settled is not None and settled.call_sid == sid
    assert settled.status is AttemptStatus.ENDED and settled.outcome == "no_answer"
    after = store.get(world.engine, callback.id)
    assert after is not None and after.attempts_made == 1
    assert after.status is CallbackStatus.PENDING
    assert len(world.create_requests()) == 1


def test_a_worker_killed_between_dialing_and_the_status_callback_is_reconciled(
    world: CallbackWorld,
) -> None:
    callback = world.new_callback()
    world.sweep()
    attempt = _only_attempt(world, callback.id)
    # The worker claims the attempt and dies before Twilio hears from it.
    assert store.claim_attempt(world.engine, attempt.id, world.clock()) is Claim.WON
    assert world.settle() == 1  # the sweep's own job finds the attempt taken: no call
    assert world.create_requests() == []

    world.clock.advance(minutes=6)
    _list_calls(world, [])  # Twilio never got the request
    world.expect_call_create()
    assert world.sweep()["reconciled"] == 1
    lost = store.get_attempt(world.engine, attempt.id)
    assert lost is not None and lost.status is AttemptStatus.NOT_PLACED
    assert lost.outcome == "worker_lost"
    world.settle()
    attempts = store.attempts_of(world.engine, callback.id)
    assert [a.status for a in attempts] == [AttemptStatus.NOT_PLACED, AttemptStatus.PLACED]
    assert len(world.create_requests()) == 1
    after = store.get(world.engine, callback.id)
    assert after is not None and after.attempts_made == 1  # the lost one did not count


def test_one_stuck_attempt_twilio_cannot_explain_does_not_block_the_others(
    world: CallbackWorld,
) -> None:
    first = world.new_callback(phone_number="+1 520 555 0124")
    second = world.new_callback()
    world.sweep()
    for callback in (first, second):
        attempt = _only_attempt(world, callback.id)
        assert store.claim_attempt(world.engine, attempt.id, world.clock()) is Claim.WON
    world.settle()  # the sweep's own jobs find both taken
    world.clock.advance(minutes=6)
    world.twilio.add(  # the first lookup is refused outright
        responses_lib.GET,
        CALLS_URL,
        json={"code": 20403, "message": "Forbidden", "status": 403},
        status=403,
    )
    _list_calls(world, [])  # the second: Twilio never got it
    counts = world.sweep()
    assert counts["unsettled"] == 1 and counts["reconciled"] == 1
    assert _only_attempt(world, first.id).status is AttemptStatus.DIALING  # kept for later
    assert store.attempts_of(world.engine, second.id)[0].status is AttemptStatus.NOT_PLACED


def test_a_status_callback_can_reach_an_attempt_whose_worker_died_after_twilio_created_it(
    world: CallbackWorld, signed_post: Any
) -> None:
    callback = world.new_callback()
    world.sweep()
    attempt = _only_attempt(world, callback.id)
    store.claim_attempt(world.engine, attempt.id, world.clock())
    sid = "CA" + "e" * 32
    signed_post(f"/voice/callback/status?attempt={attempt.id}", status_form(sid, "ringing"))
    placed = store.get_attempt(world.engine, attempt.id)
    assert placed is not None and placed.status is AttemptStatus.PLACED and placed.call_sid == sid
    signed_post(f"/voice/callback/status?attempt={attempt.id}", status_form(sid, "busy"))
    signed_post(f"/voice/callback/status?attempt={attempt.id}", status_form(sid, "busy"))  # twice
    ended = store.get_attempt(world.engine, attempt.id)
    assert ended is not None and ended.outcome == "busy"
    assert store.attempts_made(world.engine, callback.id) == 1


def test_a_number_that_became_invalid_is_raised_to_a_supervisor_not_dialed(
    world: CallbackWorld,
) -> None:
    callback = world.new_callback(phone_number="+1 520 555 01")
    world.sweep()
    world.settle()
    assert world.create_requests() == []
    after = store.get(world.engine, callback.id)
    assert after is not None and after.status is CallbackStatus.FAILED
    assert after.last_outcome == "invalid_number"
    assert ("not_placed", "number invalid") in store.events_of(world.engine, callback.id)
    [listed] = store.open_callbacks_with_age(world.engine, world.clock())
    assert listed.escalated


def test_a_helper_type_with_no_roster_is_recorded_and_raised(world: CallbackWorld) -> None:
    callback = world.new_callback(helper_type="street_medic")
    world.sweep()
    world.settle()
    assert world.create_requests() == []
    after = store.get(world.engine, callback.id)
    assert after is not None and after.status is CallbackStatus.FAILED
    assert after.last_outcome == "no_roster"
    assert any(d and "street_medic" in d for e, d in store.events_of(world.engine, callback.id))


def test_no_recorded_consent_means_no_automated_call(world: CallbackWorld) -> None:
    callback = world.new_callback(consent=False)
    world.sweep()
    world.settle()
    assert world.create_requests() == []
    after = store.get(world.engine, callback.id)
    assert after is not None and after.status is CallbackStatus.FAILED
    assert after.last_outcome == "no_consent"


def test_a_caller_dropped_during_a_handoff_is_called_back_without_prior_consent(
    world: CallbackWorld,
) -> None:
    callback = world.new_callback(
        source=CallbackSource.DROPPED_HANDOFF, helper_type="navigator", consent=False
    )
    _place_one(world, callback.id)
    assert world.create_requests()[-1]["To"] == [RESIDENT]
    assert store.get(world.engine, callback.id).last_outcome != "no_consent"  # type: ignore[union-attr]


def test_nobody_on_duty_waits_for_the_next_shift(world: CallbackWorld) -> None:
    world.clock.set(local(6, 18, 0))  # the navigator's shift ended at 5 p.m.
    callback = world.new_callback()
    world.sweep()
    world.settle()
    assert world.create_requests() == []
    attempt = _only_attempt(world, callback.id)
    assert attempt.status is AttemptStatus.SCHEDULED
    assert attempt.scheduled_for == local(6, 18, 15).astimezone(UTC)  # looked at again soon
    assert store.get(world.engine, callback.id).last_outcome == "no_helper_on_duty"  # type: ignore[union-attr]


def test_malformed_status_callbacks_are_refused_clearly_recorded_and_lose_nothing(
    world: CallbackWorld, signed_post: Any
) -> None:
    callback = world.new_callback()
    sid, attempt = _place_one(world, callback.id)
    path = f"/voice/callback/status?attempt={attempt.id}"

    cases = [
        ("/voice/callback/status", status_form(sid, "completed"), "unknown attempt"),
        ("/voice/callback/status?attempt=99999", status_form(sid, "completed"), "unknown attempt"),
        (path, status_form(sid, "exploded"), "unknown CallStatus"),
        (path, status_form("not-a-sid", "completed"), "malformed CallSid"),
        (path, status_form("CA" + "0" * 32, "completed"), "another call"),
    ]
    for url, form, reason in cases:
        reply = signed_post(url, form)
        assert reply.status_code == 200  # valid (empty) TwiML, as every voice URL answers
        assert reason in reply.headers["X-Bridgeline-Problem"]
    with world.engine.connect() as conn:
        recorded = (
            conn.execute(
                sa.select(callback_events.c.detail).where(
                    callback_events.c.event == "malformed_status_callback"
                )
            )
            .scalars()
            .all()
        )
    assert len(recorded) == len(cases)
    still = store.get_attempt(world.engine, attempt.id)
    assert still is not None and still.status is AttemptStatus.PLACED

    assert signed_post(path, status_form(sid, "no-answer")).status_code == 200
    after = store.get(world.engine, callback.id)
    assert after is not None and after.status is CallbackStatus.PENDING


def test_pressing_9_opts_out_and_no_call_follows(world: CallbackWorld, signed_post: Any) -> None:
    callback = world.new_callback()
    sid, attempt = _place_one(world, callback.id)
    [form] = world.create_requests()
    reply = signed_post(_path(form["Url"][0]), {"CallSid": sid, "AnsweredBy": "human"})
    action = check_twiml(reply.data).find("Gather").get("action")  # type: ignore[union-attr]
    reply = signed_post(_path(action), {"CallSid": sid, "Digits": "9"})
    assert "will not get more calls" in _said(check_twiml(reply.data))
    signed_post(f"/voice/callback/status?attempt={attempt.id}", status_form(sid, "completed"))
    after = store.get(world.engine, callback.id)
    assert after is not None and after.status is CallbackStatus.CANCELLED
    assert after.last_outcome == "opted_out"
    world.clock.advance(hours=1)
    world.sweep()
    assert world.settle() == 0 and len(world.create_requests()) == 1
    # The opt-out covers the number: another request recorded with the old consent is not
    # dialed but raised to a person.
    other = world.new_callback(source=CallbackSource.QUEUE_OVERFLOW)
    with world.engine.begin() as conn:
        conn.execute(
            sa.update(callbacks_table)
            .where(callbacks_table.c.id == other.id)
            .values(consent_at=world.clock() - timedelta(days=1))
        )
    world.sweep()
    world.settle()
    assert len(world.create_requests()) == 1
    refused = store.get(world.engine, other.id)
    assert refused is not None and refused.status is CallbackStatus.FAILED
    assert refused.last_outcome == "opted_out"


def test_a_burst_places_at_most_one_call_per_second(world: CallbackWorld) -> None:
    for _ in range(3):
        world.new_callback()
    world.sweep()
    key = KEY_TEMPLATE.format(account=ACCOUNT_SID)
    waiting = 3
    for placed in (1, 2, 3):
        world.expect_call_create()
        world.scheduler_tick()
        assert world.run_jobs() == waiting
        assert len(world.create_requests()) == placed  # the others wait for the next slot
        waiting -= 1
        world.queues.connection.delete(key)  # a second passes
        world.clock.advance(seconds=1)
    assert world.settle() == 0


def test_the_call_rate_limiter_fails_safe_when_redis_is_down() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    try:
        call_slot(dead, "AC" + "1" * 32, 1)
    except RateLimiterUnavailable:
        pass
    else:  # pragma: no cover - the assertion below explains
        raise AssertionError("a limiter that cannot ask Redis must refuse the call")


def test_redis_losing_its_data_loses_no_callback(world: CallbackWorld) -> None:
    world.clock.set(local(6, 21, 30))
    callback = world.new_callback(helper_type="telehealth_nurse")
    world.sweep()
    world.queues.connection.flushdb()  # Redis restarted without its data
    world.clock.set(local(7, 8, 0))
    assert world.sweep()["requeued"] == 1
    world.expect_call_create()
    world.settle()
    assert len(world.create_requests()) == 1
    assert _only_attempt(world, callback.id).status is AttemptStatus.PLACED


def test_console_lists_open_callbacks_overdue_first_and_closes_one_by_hand(
    world: CallbackWorld,
) -> None:
    world.clock.set(local(6, 21, 30))
    early = world.new_callback(deadline=timedelta(minutes=30))
    later = world.new_callback(deadline=timedelta(hours=12))
    world.sweep()
    world.clock.advance(hours=1)
    listed = store.open_callbacks_with_age(world.engine, world.clock())
    assert [c.id for c in listed] == [early.id, later.id]
    assert listed[0].overdue and not listed[1].overdue
    assert listed[0].age == timedelta(hours=1)
    assert store.flag_overdue(world.engine, world.clock()) == [early.id]
    assert store.flag_overdue(world.engine, world.clock()) == []  # once

    assert store.mark_done_by_hand(
        world.engine, early.id, "Reached her at work", "nav-brooks", world.clock()
    )
    assert not store.mark_done_by_hand(world.engine, early.id, "again", "nav-brooks")
    closed = store.get(world.engine, early.id)
    assert closed is not None and closed.status is CallbackStatus.DONE
    assert _only_attempt(world, early.id).status is AttemptStatus.SKIPPED
    assert [c.id for c in store.open_callbacks_with_age(world.engine, world.clock())] == [later.id]
    # Morning comes: only the one still open is dialed.
    world.clock.set(local(7, 9, 0))
    world.expect_call_create()
    world.settle()
    assert len(world.create_requests()) == 1


def test_a_resident_who_asked_on_the_self_service_line_is_called_back_in_spanish(
    world: CallbackWorld, call: Any, signed_post: Any
) -> None:
    c = call()
    c.press("2")
    c.press("5")
    c.speak("sí")
    c.press("1")
    assert "Su solicitud quedó guardada" in c.heard_since_last()
    [listed] = store.open_callbacks_with_age(world.engine, world.clock())
    assert listed.source is CallbackSource.RESIDENT_MENU and listed.helper_type is None

    sid, _attempt = _place_one(world, listed.id)
    [form] = world.create_requests()
    assert form["To"] == [RESIDENT] and form["Url"][0].endswith("lang=es")
    reply = signed_post(_path(form["Url"][0]), {"CallSid": sid, "AnsweredBy": "human"})
    action = check_twiml(reply.data).find("Gather").get("action")  # type: ignore[union-attr]
    dial = check_twiml(signed_post(_path(action), {"CallSid": sid, "Digits": "1"}).data)
    number = dial.find("Dial/Number")
    assert number is not None and number.text == NAVIGATOR  # the source's helper type

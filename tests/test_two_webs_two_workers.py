"""Two web processes and two workers at once, as production runs them: no call placed twice,
no update lost.

Each story starts the Procfile's `web` (gunicorn, 2 processes) and two `worker` processes
against this run's database (SQLite file, or PostgreSQL with BRIDGELINE_TEST_DATABASE) and
Redis DB; Twilio's REST API is a local fake (tests/fake_twilio.py) that counts every call
placed. Traffic comes from threads: the same webhook is sent twice at the same moment (a
Twilio retry lands on the other process), status and conference callbacks twice and out of
order. Counts are read from the database and from the fake's log once the workers are idle.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import sqlalchemy as sa
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from ivr.accounts import create_staff
from ivr.decisions.handoffs import HandoffStatus
from ivr.flows import handoffs
from ivr.queueing import QUEUE_NAMES
from ivr.simulator import Call, CallError, HttpTransport
from ivr.store import callbacks as callback_store
from ivr.store.callback_records import AttemptStatus, CallbackStatus
from ivr.store.tables import callbacks as callbacks_table
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE
from tests.fake_twilio import FakeTwilio, Recorded
from tests.live_service import Service, always_open_config, running_service, wait_for
from tests.twiml_check import check_twiml

pytestmark = pytest.mark.real_clock
"""Bridgeline's processes run here and read the real clock, whatever BRIDGELINE_TEST_NOW says."""

RESIDENTS = [f"+1520555{n:04d}" for n in range(210, 218)]
"""Eight residents who ask for a callback at the same moment."""

DESK_CALLS = 3
"""Warm handoffs started at the transfer desk at the same moment."""

RETRIED_DESK_CALLS = 5
"""Desk calls, one after another, whose handoff-starting step Twilio retries at once."""

PSAP_LINE = "+15205550199"
CALLER_ID = "+15205550100"
"""caller_id in config/lines.yaml: what Bridgeline's calls come from."""

RIVERA = "+15205550151"
OKAFOR = "sip:okafor@pbx.example.org"
"""The first two embedded clinicians in config/roster.yaml (always on duty in this test)."""


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(ACCOUNT_SID, create_seconds=0.2) as fake:  # Twilio takes a moment
        yield fake


@pytest.fixture
def service(
    env: dict[str, str], engine: sa.Engine, fake_twilio: FakeTwilio, tmp_path: Path
) -> Iterator[Service]:
    """gunicorn (2 web processes) + 2 RQ workers, from the Procfile, on this test's stores."""
    config = always_open_config(tmp_path / "config")
    live_env = {
        **env,
        "BRIDGELINE_CONFIG": str(config),
        "TWILIO_API_BASE_URL": fake_twilio.base_url,
        "BRIDGELINE_SPOOL_DIR": str(tmp_path / "spool"),  # this test's web processes only
    }
    with running_service(live_env, tmp_path, workers=2) as running:
        yield running


class RetriedTransport(HttpTransport):
    """Plays Twilio for a simulated call; requests to `retried` paths are sent twice at the same
    moment on two connections (Twilio retrying a webhook, the retry landing on the other web
    process), with one idempotency token. Every answer of every copy is kept and checked."""

    def __init__(self, service: Service, retried: str) -> None:
        super().__init__(service.base, PUBLIC_BASE)
        self.retried = re.compile(retried)
        self.answers: list[tuple[str, int, bytes]] = []

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        if not self.retried.search(url):
            status, body = super().post(url, params, headers)
            self.answers.append((url, status, body))
            return status, body
        copies = [
            (url, params, {**headers, "I-Twilio-Idempotency-Token": secrets.token_hex(8)})
        ] * 2
        send = super().post
        answers = at_once([partial(send, *copy) for copy in copies])
        self.answers.extend((url, status, body) for status, body in answers)
        return answers[0]


def at_once(actions: list[Callable[[], Any]]) -> list[Any]:
    """Run `actions` on their own threads, released together by a barrier; their results."""
    barrier = threading.Barrier(len(actions))

    def released(action: Callable[[], Any]) -> Any:
        barrier.wait(timeout=10)
        return action()

    with ThreadPoolExecutor(len(actions)) as pool:
        return [f.result() for f in [pool.submit(released, a) for a in actions]]


def twiml_ok(response: requests.Response) -> requests.Response:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    check_twiml(response.content)
    return response


def enqueue(service_env: Mapping[str, str], purpose: str, func: str, *args: Any) -> None:
    """Queue a job as the web processes or the clock do (by dotted name, on Bridgeline's queue)."""
    connection = redis.Redis.from_url(service_env["REDIS_URL"])
    Queue(f"{service_env['BRIDGELINE_QUEUE_PREFIX']}-{purpose}", connection=connection).enqueue(
        func, *args
    )
    connection.close()


def workers_idle(env: Mapping[str, str], scheduled_too: bool = True) -> bool:
    """No job queued, running or (unless `scheduled_too` is False) scheduled on any of
    Bridgeline's queues."""
    connection = redis.Redis.from_url(env["REDIS_URL"])
    try:
        for name in QUEUE_NAMES:
            queue = Queue(f"{env['BRIDGELINE_QUEUE_PREFIX']}-{name}", connection=connection)
            if queue.count or StartedJobRegistry(queue=queue).count:
                return False
            if scheduled_too and ScheduledJobRegistry(queue=queue).count:
                return False
        return True
    finally:
        connection.close()


def scheduled_jobs_due_now(env: Mapping[str, str]) -> int:
    """Move every job scheduled for later to its queue now, as RQ's scheduler does when its
    time comes (a job the workers' scheduler took first is left to it). Returns how many."""
    connection = redis.Redis.from_url(env["REDIS_URL"])
    moved = 0
    try:
        for name in QUEUE_NAMES:
            queue = Queue(f"{env['BRIDGELINE_QUEUE_PREFIX']}-{name}", connection=connection)
            registry = ScheduledJobRegistry(queue=queue)
            for job_id in registry.get_job_ids():
                if registry.remove(job_id):  # ZREM: whoever removes it enqueues it
                    queue.enqueue_job(Job.fetch(job_id, connection=connection))
                    moved += 1
        return moved
    finally:
        connection.close()


def settle(service: Service, env: Mapping[str, str], scheduled_now: bool = False) -> None:
    """Wait until the workers have run everything (idle twice in a row, a moment apart).
    With `scheduled_now`, jobs scheduled for later (the desk's caller check, 12 s on) run as
    soon as the rest is done instead of when the clock reaches them."""
    if scheduled_now:
        wait_for("the queued jobs", lambda: workers_idle(env, scheduled_too=False), service)
        scheduled_jobs_due_now(env)
    wait_for("the workers to finish", lambda: workers_idle(env), service)
    wait_for("the workers to stay idle", lambda: workers_idle(env), service)


# ---------------------------------------------------------------------------- callbacks


def _ask_for_callback(service: Service, number: str, retried: str) -> tuple[RetriedTransport, str]:
    """A resident presses 5, keeps their own number, consents; the steps matching `retried` are
    sent twice at once. Returns every answer sent and what the resident heard."""
    transport = RetriedTransport(service, retried)
    call = Call(
        transport, AUTH_TOKEN, PUBLIC_BASE, from_number=number,
        on_response=lambda url, body: check_twiml(body),
    ).start("/voice/self-service")  # fmt: skip
    try:
        call.press("1")  # English
        call.press("5")  # a call back
        call.press("1")  # at this number
        call.press("1")  # I agree
    except CallError:
        pass  # an answer led elsewhere (e.g. to a person's queue): the test says which one
    return transport, call.heard


NOT_SAVED = b"we could not take your call back request"
"""What a resident hears when their request could not be recorded (ivr/decisions/phrases.py)."""


CONSENT = r"/callback/consent"
NUMBER = r"/callback/caller-id"
"""The consent step (turns the draft into an open request) and the number step (saves it)."""


def _everyone_told_saved(asked: list[tuple[RetriedTransport, str]], retried_steps: int) -> None:
    """Both copies of every retried step answered playable TwiML, and either copy (the one
    Twilio plays) goes on with the request: nobody is told it could not be taken."""
    problems = []
    for transport, heard in asked:
        retried = [a for a in transport.answers if transport.retried.search(a[0])]
        assert len(retried) >= 2
        for url, status, body in retried:
            assert status == 200, (url, body[:300])
            check_twiml(body)
            if NOT_SAVED in body:
                problems.append(f"{url.split('?')[0]} answered: {body.decode()[38:200]}")
        if not problems:
            assert len(retried) == 2 * retried_steps
            assert "Your call back request is saved" in heard, heard
    assert not problems, "\n".join(problems)


def test_residents_asking_for_callbacks_at_once_each_get_exactly_one_call_back(
    service: Service, env: dict[str, str], engine: sa.Engine, fake_twilio: FakeTwilio
) -> None:
    """Eight residents consent at the same moment, each consent retried on the other process;
    then the clock's sweep (twice) and a "schedule soon" per callback race on two workers."""
    with ThreadPoolExecutor(len(RESIDENTS)) as pool:
        asked = list(pool.map(lambda n: _ask_for_callback(service, n, CONSENT), RESIDENTS))
    _everyone_told_saved(asked, retried_steps=1)

    with engine.connect() as conn:
        rows = conn.execute(sa.select(callbacks_table)).all()
    assert sorted(r.phone_number for r in rows) == sorted(RESIDENTS)  # one row per call
    assert {r.status for r in rows} == {CallbackStatus.PENDING.value}
    assert all(r.consent for r in rows)

    # The clock's sweep and the console's "schedule soon" fire while both workers are busy:
    # every callback is scheduled from three places at once.
    for _ in range(2):
        enqueue(env, "default", "workers.callbacks.sweep_callbacks")
    for row in rows:
        enqueue(env, "default", "workers.callbacks.schedule_callback", row.id)

    def all_placed() -> bool:
        attempts = [a for r in rows for a in callback_store.attempts_of(engine, r.id)]
        placed = Counter(a.callback_id for a in attempts if a.status is AttemptStatus.PLACED)
        waiting = [
            a for a in attempts if a.status in (AttemptStatus.SCHEDULED, AttemptStatus.DIALING)
        ]
        return len(placed) == len(rows) and not waiting

    try:
        wait_for("every callback to be placed", all_placed, service, timeout=30)
    except AssertionError:
        attempts = [a for r in rows for a in callback_store.attempts_of(engine, r.id)]
        raise AssertionError(f"attempts: {attempts}") from None
    settle(service, env)
    # A late sweep finds nothing left to do.
    enqueue(env, "default", "workers.callbacks.sweep_callbacks")
    settle(service, env)

    created = fake_twilio.created_calls()
    assert Counter(r.field("To") for r in created) == Counter(RESIDENTS)  # one call each
    assert {r.field("From") for r in created} == {CALLER_ID}
    for row in rows:
        # Schedulers racing on both workers add one attempt per callback, not one each.
        (attempt,) = callback_store.attempts_of(engine, row.id)
        assert attempt.status is AttemptStatus.PLACED
        (mine,) = [r for r in created if r.field("To") == row.phone_number]
        assert attempt.call_sid == mine.sid
        assert mine.field("Url").endswith(f"/voice/callback/answered?attempt={attempt.id}&lang=en")


def test_a_resident_whose_number_step_is_retried_at_once_is_still_asked_for_consent(
    service: Service, engine: sa.Engine
) -> None:
    """Twilio retries the step where the resident keeps their own number (the draft request is
    saved there) while the first copy is being answered, on the other web process.

    Before 236c911 this failed on PostgreSQL: ivr/store/callbacks.save_draft caught the
    IntegrityError of the losing INSERT inside its transaction, which PostgreSQL had already
    aborted, so its UPDATE failed and the resident heard "we could not take your call back
    request" and was sent to a person; their draft was never confirmed."""
    with ThreadPoolExecutor(len(RESIDENTS)) as pool:
        asked = list(pool.map(lambda n: _ask_for_callback(service, n, NUMBER), RESIDENTS))
    _everyone_told_saved(asked, retried_steps=1)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(callbacks_table)).all()
    assert sorted(r.phone_number for r in rows) == sorted(RESIDENTS)  # one row per call
    assert {r.status for r in rows} == {CallbackStatus.PENDING.value}


# ---------------------------------------------------------------------------- warm handoffs


def ts(moment: datetime) -> str:
    """Twilio's Timestamp field."""
    return format_datetime(moment, usegmt=True)


def _desk_call(service: Service, retried: str = "^$") -> Call:
    """A call-taker signs in, answers the tree for a calm caller, picks an embedded clinician
    for a mental-health call (the steps whose URL matches `retried` are sent twice at once)."""
    call = Call(
        RetriedTransport(service, retried), AUTH_TOKEN, PUBLIC_BASE, from_number=PSAP_LINE,
        on_response=lambda url, body: check_twiml(body),
    ).start("/voice/transfer-desk")  # fmt: skip
    call.press("4821#")
    call.press("2468#")
    for answer in ("2", "2", "2", "1", "2", "2"):
        call.press(answer)
    call.press("1")  # embedded clinician: Rivera, then Okafor, then 988
    call.press("1")  # what the call is about: mental health
    call.press("5205550123#")
    return call


def _dial_of(fake: FakeTwilio, handoff_id: int, attempt: int) -> list[Recorded]:
    suffix = f"/voice/handoff/whisper?h={handoff_id}&at={attempt}"
    return [r for r in fake.created_calls() if r.field("Url").endswith(suffix) and r.sid]


def _twice_at_once(service: Service, posts: list[tuple[str, dict[str, str], str | None]]) -> None:
    """Deliver every callback in `posts` twice, all at the same moment, on separate connections."""

    def deliver(path: str, data: dict[str, str], token: str | None) -> requests.Response:
        with requests.Session() as session:
            return twiml_ok(service.post(path, data, token=token, session=session))

    at_once([partial(deliver, *post) for post in posts + posts])


def _handoff_story(service: Service, fake: FakeTwilio, engine: sa.Engine, call: Call) -> int:
    """One handoff: Rivera declines, Okafor accepts and talks with the caller, who hangs up.
    Every callback Twilio sends arrives twice, at once, and some out of order."""
    live = handoffs.live_call_by_sid(engine, call.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    hid = handoff.id
    conference_sid = "CF" + secrets.token_hex(16)
    t0 = datetime.now(UTC)

    def conference(event: str, seq: int, at: int, **extra: str) -> tuple[str, dict[str, str], None]:
        data = {
            "AccountSid": ACCOUNT_SID,
            "ConferenceSid": conference_sid,
            "FriendlyName": live.conference_name,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(seq),
            "Timestamp": ts(t0 + timedelta(seconds=at)),
            **extra,
        }
        return (f"/voice/handoff/conference-status?live={live.id}", data, None)

    def status(
        attempt: int, sid: str, state: str, seq: int, at: int
    ) -> tuple[str, dict[str, str], str]:
        data = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": sid,
            "CallStatus": state,
            "SequenceNumber": str(seq),
            "Timestamp": ts(t0 + timedelta(seconds=at)),
            "CallbackSource": "call-progress-events",
        }
        token = f"{sid}-{state}-{seq}"  # Twilio's retry of one callback carries one token
        return (f"/voice/handoff/helper-status?h={hid}&at={attempt}", data, token)

    (first,) = wait_for("the first helper to be dialed", lambda: _dial_of(fake, hid, 1), service)
    helper_1 = first.sid
    _twice_at_once(service, [
        conference("conference-start", 1, 1),
        conference("participant-join", 2, 1, ParticipantLabel="caller", CallSid=call.call_sid),
        status(1, helper_1, "in-progress", 2, 6),  # answered before ringing arrives
        status(1, helper_1, "ringing", 1, 3),
    ])  # fmt: skip

    # Rivera hears the whisper and declines (the key press is retried at once).
    rivera = Call(
        RetriedTransport(service, r"/voice/handoff/whisper/answer"), AUTH_TOKEN, PUBLIC_BASE,
        from_number=CALLER_ID, call_sid=helper_1, on_response=lambda url, body: check_twiml(body),
    ).start(f"/voice/handoff/whisper?h={hid}&at=1")  # fmt: skip
    rivera.press("2")
    assert "We will try someone else" in rivera.heard_since_last()
    _twice_at_once(service, [status(1, helper_1, "completed", 3, 12)])

    (second,) = wait_for("the next helper to be dialed", lambda: _dial_of(fake, hid, 2), service)
    helper_2 = second.sid
    _twice_at_once(service, [status(2, helper_2, "ringing", 1, 15)])
    okafor = Call(
        RetriedTransport(service, r"/voice/handoff/whisper/answer"), AUTH_TOKEN, PUBLIC_BASE,
        from_number=CALLER_ID, call_sid=helper_2, on_response=lambda url, body: check_twiml(body),
    ).start(f"/voice/handoff/whisper?h={hid}&at=2")  # fmt: skip
    okafor.press("1")
    assert "Connecting you to the caller." in okafor.heard_since_last(), okafor.heard
    label = f"helper-{hid}-2"
    # The join arrives twice, and the leg's 'answered' with it (Twilio's time says it was first).
    _twice_at_once(service, [
        conference("participant-join", 4, 20, ParticipantLabel=label, CallSid=helper_2),
        status(2, helper_2, "in-progress", 2, 17),
    ])  # fmt: skip
    wait_for(
        "the call-taker to be told the helper is on",
        lambda: fake.recorded("POST", rf"/Conferences/{conference_sid}/Participants/caller\.json"),
        service,
    )
    _twice_at_once(service, [
        conference("conference-end", 7, 300),  # out of order: the end before the leave
        conference("participant-leave", 6, 300, ParticipantLabel="caller", CallSid=call.call_sid),
    ])  # fmt: skip
    return hid


def _story(engine: sa.Engine, handoff_id: int) -> str:
    """A handoff's log, one short line per event (for failure messages)."""
    return "\n".join(
        f"{e.event.value} at={e.attempt} seq={e.sequence} {e.occurred_at:%H:%M:%S} {e.source.value}"
        for e in handoffs.handoff_events(engine, handoff_id)
    )


EXPECTED_LOG = Counter(
    [
        ("requested", None, None, None),
        ("dialing", 1, "clin-rivera", None),
        ("dialing", 1, "clin-rivera", None),  # the call placed, with its CallSid
        ("ringing", 1, None, None),
        ("answered", 1, None, None),
        ("declined", 1, "clin-rivera", "declined"),
        ("helper_left", 1, None, None),
        ("dialing", 2, "clin-okafor", None),
        ("dialing", 2, "clin-okafor", None),
        ("ringing", 2, None, None),
        ("answered", 2, None, None),
        ("accepted", 2, "clin-okafor", None),
        ("helper_joined", 2, None, None),
        ("announced", None, None, None),
    ]
)
"""Every step of one handoff, each exactly once (the order is Twilio's time, checked elsewhere)."""

THE_END = {("caller_left", None, None, None), ("conference_ended", None, None, None)}
"""How the handoff ended: the caller's leave or the conference's end, whichever is applied
first (both when applied at the same moment), each at most once."""


def test_warm_handoffs_with_callbacks_twice_and_out_of_order_on_both_processes_record_each_step_once(
    service: Service, env: dict[str, str], engine: sa.Engine, fake_twilio: FakeTwilio
) -> None:
    create_staff(engine, staff_id="4821", name="Casey Morgan", roles=["call_taker"], pin="2468")
    with ThreadPoolExecutor(DESK_CALLS) as pool:
        calls = list(pool.map(lambda _: _desk_call(service), range(DESK_CALLS)))
        for call in calls:
            assert call.waiting_for == "Dial", call.heard
        ids = list(pool.map(lambda c: _handoff_story(service, fake_twilio, engine, c), calls))

    # Conference callbacks are applied by the workers (ivr/flows/conference_inbox.py): wait for them.
    def all_over() -> bool:
        found = [handoffs.get_handoff(engine, hid) for hid in ids]
        return all(h is not None and h.status in handoffs.TERMINAL for h in found)

    try:
        wait_for("every handoff to end", all_over, service)
    except AssertionError as exc:
        stories = "\n\n".join(_story(engine, hid) for hid in ids)
        raise AssertionError(f"{stories}\n{exc}") from None
    settle(service, env, scheduled_now=True)  # the caller checks (12 s on) find them all over

    assert len(set(ids)) == DESK_CALLS
    for hid in ids:
        done = handoffs.get_handoff(engine, hid)
        assert done is not None
        assert done.status is HandoffStatus.COMPLETED, (hid, done.status, _story(engine, hid))
        assert done.member_id == "clin-okafor" and done.attempt == 2
        (second,) = _dial_of(fake_twilio, hid, 2)
        assert done.helper_call_sid == second.sid
        log = Counter(
            (e.event.value, e.attempt, e.member_id, e.reason)
            for e in handoffs.handoff_events(engine, hid)
        )
        ended = Counter({k: n for k, n in log.items() if k in THE_END})
        assert ended and set(ended.values()) == {1}, (hid, ended)
        log -= ended
        assert log == EXPECTED_LOG, (hid, log - EXPECTED_LOG, EXPECTED_LOG - log)
        # Exactly one dial per attempt, to the right person.
        assert [r.field("To") for r in _dial_of(fake_twilio, hid, 1)] == [RIVERA]
        assert [r.field("To") for r in _dial_of(fake_twilio, hid, 2)] == [OKAFOR]
    assert len(fake_twilio.created_calls()) == 2 * DESK_CALLS
    announced = fake_twilio.recorded(
        "POST", r"/Conferences/CF[0-9a-f]{32}/Participants/caller\.json"
    )
    assert len(announced) == DESK_CALLS  # the call-taker is told once per handoff
    with engine.connect() as conn:  # everyone was reached: no callback was recorded
        assert conn.execute(sa.select(sa.func.count()).select_from(callbacks_table)).scalar() == 0


def test_a_retried_start_of_a_handoff_still_puts_the_call_taker_in_the_conference_and_dials_once(
    service: Service, env: dict[str, str], engine: sa.Engine, fake_twilio: FakeTwilio
) -> None:
    """Twilio retries the step that starts the handoff (the callback number) while the first
    copy is still being answered, the retry on the other web process. Whichever answer Twilio
    plays, the call-taker and caller wait in the conference, and the helper is dialed once.

    Before 236c911 this failed on two races: handoffs.start_handoff's check-then-insert let
    the second copy hit IntegrityError, answered "cannot record transfers ... Goodbye" and a
    hang-up although the handoff was recorded; a copy that found the handoff re-queued
    dial_helper under the same job id, and two runs of it overlapped on the two workers, so
    the helper's phone rang twice (Twilio's create latency below makes that window real)."""
    fake_twilio.create_seconds = 0.5  # Twilio takes a moment to create a call
    create_staff(engine, staff_id="4821", name="Casey Morgan", roles=["call_taker"], pin="2468")
    calls = []
    for _ in range(RETRIED_DESK_CALLS):  # one at a time: both workers are free for each
        calls.append(_desk_call(service, r"/voice/transfer-desk/start"))
        settle(service, env, scheduled_now=True)  # the caller check too, not 12 s later

    problems = []
    for call in calls:
        assert isinstance(call.transport, RetriedTransport)
        copies = [a for a in call.transport.answers if "/voice/transfer-desk/start" in a[0]]
        assert len(copies) == 2
        for _url, _status, body in copies:
            if check_twiml(body).find("./Dial/Conference") is None:
                problems.append(
                    f"call {call.call_sid[-6:]}: a copy answered {body.decode()[38:200]}"
                )
        live = handoffs.live_call_by_sid(engine, call.call_sid)
        assert live is not None
        (handoff,) = handoffs.handoffs_for_call(engine, live.id)  # one handoff per call
        dialed = [r.field("To") for r in _dial_of(fake_twilio, handoff.id, 1)]
        if dialed != [RIVERA]:
            problems.append(f"handoff {handoff.id}: the first helper was dialed {dialed}")
    assert not problems, "\n".join(problems)
    assert len(fake_twilio.created_calls()) == RETRIED_DESK_CALLS


# ---------------------------------------------------------------------------- the console


_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class StaffBrowser:
    """A signed-in call-taker talking HTTP to gunicorn. The session cookie is Secure (as in
    production), which requests will not send over http://, so it is carried by hand."""

    def __init__(self, service: Service, staff_id: str, password: str) -> None:
        self.base = service.base
        self.cookie = ""
        page = self._get("/login")
        token = _CSRF.search(page.text)
        assert token
        signed = self._send("POST", "/login", data={"staff_id": staff_id, "password": password,
                                                    "csrf_token": token.group(1)})  # fmt: skip
        assert signed.status_code == 302, signed.text[:200]
        console = self._get("/console")
        assert console.status_code == 200
        found = _CSRF.search(console.text)
        assert found
        self.csrf = found.group(1)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Cookie": self.cookie, **kwargs.pop("headers", {})}
        answer = requests.request(
            method, self.base + path, headers=headers, allow_redirects=False, timeout=10, **kwargs
        )
        cookie = answer.cookies.get("bridgeline_session")
        if cookie:
            self.cookie = f"bridgeline_session={cookie}"
        return answer

    def _get(self, path: str) -> requests.Response:
        return self._send("GET", path)

    def post_json(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self._send("POST", path, json=body, headers={"X-CSRFToken": self.csrf})


def test_the_same_handoff_started_at_once_from_two_tabs_on_two_web_processes_dials_once(
    service: Service, env: dict[str, str], engine: sa.Engine, fake_twilio: FakeTwilio
) -> None:
    """The console's API, as the hidden double-click scenario plays it: one call-taker's two
    tabs (two connections, landing on either gunicorn process) press "Conference in embedded
    clinician" at the same moment, three times over, then a fourth press for 988. One handoff
    is recorded, the first clinician's phone rings once, and every other press is answered
    with that handoff (200) or a plain 409."""
    create_staff(engine, staff_id="4822", name="Casey Morgan", roles=["call_taker"],
                 password="correct horse battery", pin="2468")  # fmt: skip
    live = handoffs.open_live_call(
        engine, call_sid="CA" + secrets.token_hex(16), origin=handoffs.Origin.INTAKE,
        callback_number="+15205550123", call_taker_staff_id="4822", now=datetime.now(UTC),
    )  # fmt: skip
    tabs = [StaffBrowser(service, "4822", "correct horse battery") for _ in range(2)]
    calm = {"weapon": False, "immediate_danger": False, "violence": False, "consent": True,
            "medical": False, "health_question": False}  # fmt: skip
    press = {"helper_type": "embedded_clinician", "answers": calm, "reason": "panic attack"}
    path = f"/api/console/calls/{live.id}/handoffs"
    answers = at_once([partial(tab.post_json, path, press) for tab in tabs * 3])
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 1 and set(codes) <= {200, 201}, codes
    ids = {a.json()["handoff"]["id"] for a in answers}
    assert len(ids) == 1
    other = tabs[1].post_json(path, {**press, "helper_type": "crisis_988"})
    assert other.status_code == 409 and "still being called" in other.json()["error"]
    settle(service, env)

    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    assert [r.field("To") for r in _dial_of(fake_twilio, handoff.id, 1)] == [RIVERA]
    assert len(fake_twilio.created_calls()) == 1

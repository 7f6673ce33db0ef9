"""One consult at a time, enforced on the server: a double click, a second tab or a retried
request dials nobody twice; a second helper needs a confirmation; a ringing helper can be
cancelled. Real SQL (both databases), real Redis and RQ, Twilio's REST API through `responses`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
import sqlalchemy as sa
import yaml
from flask import Flask

from ivr import create_app
from ivr.decisions.consults import ConsultVerdict, check_new_consult
from ivr.decisions.handoffs import (
    ConsultConflict,
    EventSource,
    HandoffEvent,
    HandoffStatus,
    LiveCall,
    Origin,
)
from ivr.flows import handoffs
from ivr.queueing import Queues
from ivr.security import SIGNATURE_HEADER, compute_signature
from ivr.store.db import make_engine
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE
from tests.console_fixtures import (
    LoggedIn,
    StaffClient,
    logged_in_client,
    make_staff,
    write_console_config,
)
from tests.desk_fixtures import CALLS_URL, call_json, call_url, form_of

FIXTURES = (make_staff, logged_in_client)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

CALLER_NUMBER = "+15205550177"
CALL_SID = "CA" + "d" * 32
RIVERA_PHONE = "+15205550151"
"""clin-rivera, first embedded clinician in config/roster.yaml (always on duty here)."""
HELPER_LEG = "CA" + "7" * 32
SAFE_ANSWERS = {
    "weapon": False,
    "immediate_danger": False,
    "violence": False,
    "consent": True,
    "medical": False,
    "health_question": False,
}
CLINICIAN = {"helper_type": "embedded_clinician", "answers": SAFE_ANSWERS, "reason": "panic"}


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The console's config with every helper type on duty around the clock: config/roster.yaml
    has the navigator on weekdays 09:00-17:00 Phoenix time only, and off duty a start is
    recorded as not_started and blocks nothing, so these stories would depend on the hour."""
    folder = write_console_config(tmp_path_factory.mktemp("consult-config"))
    roster_file = folder / "roster.yaml"
    roster = yaml.safe_load(roster_file.read_text(encoding="utf-8"))
    for helper in roster["helper_types"].values():
        for member in helper["members"]:
            member["shifts"] = "always"
    roster_file.write_text(yaml.safe_dump(roster, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def env(env: dict[str, str], config_dir: Path) -> dict[str, str]:
    """The web app and the workers read the same roster: clinicians always on duty."""
    return {**env, "BRIDGELINE_CONFIG": str(config_dir)}


@pytest.fixture
def app(env: dict[str, str], _table_names: list[str]) -> Iterator[Flask]:
    application = create_app({**env, "TESTING": True})
    engine = application.extensions["bridgeline"].engine
    with engine.begin() as conn:
        for name in _table_names:
            conn.exec_driver_sql(f"DELETE FROM {name}")
    yield application
    engine.dispose()


@pytest.fixture
def call_taker(logged_in_client: LoggedIn) -> StaffClient:
    return logged_in_client("call_taker", staff_id="4511", name="Casey Call-Taker")


@pytest.fixture
def live(engine: sa.Engine) -> LiveCall:
    """A caller waiting in the intake conference with the call-taker."""
    return handoffs.open_live_call(
        engine,
        call_sid=CALL_SID,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id="4511",
        now=datetime.now(UTC),
    )


def helpers_dialed(twilio_api: responses.RequestsMock) -> list[str]:
    """Every number Bridgeline asked Twilio to call, in order."""
    return [
        form_of(c.request)["To"][0]
        for c in twilio_api.calls
        if c.request.method == "POST" and c.request.url == CALLS_URL
    ]


def legs_ended(twilio_api: responses.RequestsMock) -> list[str]:
    """Every call Bridgeline asked Twilio to hang up (Status=completed on the call)."""
    return [
        c.request.url.rsplit("/", 1)[-1].removesuffix(".json")
        for c in twilio_api.calls
        if c.request.method == "POST" and form_of(c.request).get("Status") == ["completed"]
    ]


def twilio_says(engine: sa.Engine, handoff_id: int, event: HandoffEvent, **fields: object) -> None:
    """A status callback reaching the handoff log."""
    handoffs.record_event(
        engine,
        handoff_id,
        event,
        source=EventSource.TWILIO,
        dedupe_key=f"test:{handoff_id}:{event.value}:{fields.get('attempt')}",
        occurred_at=datetime.now(UTC),
        **fields,  # type: ignore[arg-type]
    )


def connect(engine: sa.Engine, handoff_id: int) -> None:
    twilio_says(engine, handoff_id, HandoffEvent.DIALING, attempt=1, member_id="clin-rivera")
    twilio_says(engine, handoff_id, HandoffEvent.HELPER_JOINED, attempt=1)


def start(call_taker: StaffClient, live: LiveCall, body: dict[str, object]) -> object:
    return call_taker.post(f"/api/console/calls/{live.id}/handoffs", json=body)


# ------------------------------------------------------------------ the double click


def test_a_double_click_records_one_handoff_and_dials_the_helper_once(
    call_taker: StaffClient,
    live: LiveCall,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
) -> None:
    twilio_api.add(responses.POST, CALLS_URL, body=call_json(HELPER_LEG), status=201)
    first = call_taker.post(f"/api/console/calls/{live.id}/handoffs", json=CLINICIAN)
    second = call_taker.post(f"/api/console/calls/{live.id}/handoffs", json=CLINICIAN)
    assert first.status_code == 201
    assert second.status_code == 200 and second.json["already_under_way"] is True
    assert second.json["handoff"]["id"] == first.json["handoff"]["id"]
    assert len(handoffs.handoffs_for_call(engine, live.id)) == 1

    run_jobs()
    # A third press once the helper's phone rings: still the same handoff, still one call.
    third = call_taker.post(f"/api/console/calls/{live.id}/handoffs", json=CLINICIAN)
    run_jobs()
    assert third.json["handoff"]["id"] == first.json["handoff"]["id"]
    assert helpers_dialed(twilio_api) == [RIVERA_PHONE]


def test_a_retried_request_with_the_same_request_id_gets_the_same_handoff(
    call_taker: StaffClient, live: LiveCall, engine: sa.Engine, queues: Queues
) -> None:
    # The tree forbids this one: it is recorded not_started; the retry must not record another.
    unsafe = {**CLINICIAN, "answers": {**SAFE_ANSWERS, "weapon": True}}
    headers = {"Idempotency-Key": "press-0001-abcd"}
    first = call_taker.post(f"/api/console/calls/{live.id}/handoffs", json=unsafe, headers=headers)
    again = call_taker.post(f"/api/console/calls/{live.id}/handoffs", json=unsafe, headers=headers)
    assert first.json["handoff"]["status"] == "not_started"
    assert again.json["handoff"]["id"] == first.json["handoff"]["id"]
    assert len(handoffs.handoffs_for_call(engine, live.id)) == 1
    assert queues.queue(handoffs.DIAL_QUEUE).count == 0


def test_another_helper_while_one_is_still_being_called_is_refused_in_plain_words(
    call_taker: StaffClient, live: LiveCall, engine: sa.Engine, queues: Queues
) -> None:
    start(call_taker, live, CLINICIAN)
    refused = start(call_taker, live, {**CLINICIAN, "helper_type": "crisis_988"})
    assert refused.status_code == 409  # type: ignore[attr-defined]
    body = refused.json  # type: ignore[attr-defined]
    assert body["conflict"] == "busy"
    assert body["error"] == (
        "The embedded clinician is still being called on this call. "
        "Cancel that call first, or wait until it ends."
    )
    assert [h.helper_type for h in handoffs.handoffs_for_call(engine, live.id)] == [
        "embedded_clinician"
    ]
    assert queues.queue(handoffs.DIAL_QUEUE).count == 1  # the clinician's dial only


def test_a_second_helper_while_one_is_connected_needs_an_explicit_confirmation(
    call_taker: StaffClient, live: LiveCall, engine: sa.Engine
) -> None:
    first = start(call_taker, live, CLINICIAN).json["handoff"]["id"]  # type: ignore[attr-defined]
    connect(engine, first)
    asked = start(call_taker, live, {**CLINICIAN, "helper_type": "crisis_988"})
    assert asked.status_code == 409  # type: ignore[attr-defined]
    assert asked.json["conflict"] == "needs_confirmation"  # type: ignore[attr-defined]
    assert asked.json["error"].startswith(  # type: ignore[attr-defined]
        "Dana Rivera (embedded clinician) is already connected to the caller."
    )
    assert len(handoffs.handoffs_for_call(engine, live.id)) == 1
    confirmed = start(
        call_taker, live, {**CLINICIAN, "helper_type": "crisis_988", "confirm_second_helper": True}
    )
    assert confirmed.status_code == 201  # type: ignore[attr-defined]
    assert [h.helper_type for h in handoffs.handoffs_for_call(engine, live.id)] == [
        "embedded_clinician",
        "crisis_988",
    ]
    bad = start(call_taker, live, {**CLINICIAN, "confirm_second_helper": "yes"})
    assert bad.status_code == 400  # type: ignore[attr-defined]


@dataclass
class Race:
    """Several requests arriving at the same moment, each on its own database connection pool
    (as two web processes have), released together by a barrier."""

    url: str
    call_sid: str
    roster: object
    tree: object
    queues: Queues

    def run(self, helper_types: list[str]) -> list[str]:
        barrier = threading.Barrier(len(helper_types))
        results: list[str] = [""] * len(helper_types)

        def one(i: int, helper_type: str) -> None:
            engine = make_engine(self.url)
            try:
                barrier.wait()
                handoffs.start_handoff(
                    engine,
                    self.queues,
                    call_sid=self.call_sid,
                    call_taker_staff_id="4511",
                    helper_type=helper_type,
                    answers=SAFE_ANSWERS,
                    reason=None,
                    roster=self.roster,  # type: ignore[arg-type]
                    tree=self.tree,  # type: ignore[arg-type]
                )
                results[i] = "started"
            except ConsultConflict as exc:
                results[i] = exc.verdict.value
            finally:
                engine.dispose()

        threads = [threading.Thread(target=one, args=(i, t)) for i, t in enumerate(helper_types)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results


@pytest.mark.parametrize(
    "helper_types",
    [
        ["navigator"] * 4,  # one button, pressed in four tabs at once
        ["navigator", "crisis_988", "embedded_clinician"],  # three buttons at once
    ],
)
def test_starts_racing_on_separate_connections_record_exactly_one_handoff(
    app: Flask, live: LiveCall, engine: sa.Engine, queues: Queues, helper_types: list[str]
) -> None:
    race = Race(
        url=str(engine.url.render_as_string(hide_password=False)),
        call_sid=live.call_sid,
        roster=app.extensions["bridgeline"].roster,
        tree=app.extensions["bridgeline"].tree,
        queues=queues,
    )
    results = race.run(helper_types)
    assert results.count("started") == 1, results
    losers = {r for r in results if r != "started"}
    expected = {"already_under_way"} if len(set(helper_types)) == 1 else {"busy"}
    assert losers == expected
    recorded = handoffs.handoffs_for_call(engine, live.id)
    assert len(recorded) == 1
    # The one start was a real one (a helper to dial), not a refusal that blocks nothing.
    assert (recorded[0].status, recorded[0].reason_code) == (HandoffStatus.REQUESTED, None)
    assert queues.queue(handoffs.DIAL_QUEUE).count == 1


# ------------------------------------------------------------------ cancel


def post_helper_status(client: object, handoff_id: int, status: str, seq: int) -> None:
    """The helper leg's status callback, signed as Twilio signs it."""
    path = f"/voice/handoff/helper-status?h={handoff_id}&at=1"
    data = {"CallSid": HELPER_LEG, "CallStatus": status, "SequenceNumber": str(seq)}
    signature = compute_signature(AUTH_TOKEN, PUBLIC_BASE + path, data.items())
    answer = client.post(path, data=data, headers={SIGNATURE_HEADER: signature})  # type: ignore[attr-defined]
    assert answer.status_code in (200, 204), answer.status_code


def test_call_taker_cancels_a_ringing_helper_whose_leg_a_worker_ends(
    app: Flask,
    call_taker: StaffClient,
    live: LiveCall,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
) -> None:
    twilio_api.add(responses.POST, CALLS_URL, body=call_json(HELPER_LEG), status=201)
    twilio_api.add(
        responses.POST, call_url(HELPER_LEG), body=call_json(HELPER_LEG, status="completed")
    )
    hid = start(call_taker, live, CLINICIAN).json["handoff"]["id"]  # type: ignore[attr-defined]
    run_jobs()
    twilio = app.test_client()
    post_helper_status(twilio, hid, "ringing", 1)
    detail = call_taker.get(f"/api/console/calls/{live.id}").json
    assert detail["handoffs"][0]["status"] == "ringing"

    cancelled = call_taker.post(f"/api/console/calls/{live.id}/handoffs/{hid}/cancel", json={})
    assert cancelled.status_code == 200
    # The call-taker sees it at once, before any worker ran.
    handoff = cancelled.json["handoff"]
    assert (handoff["status"], handoff["reason_code"]) == ("cancelled", "cancelled")
    assert handoff["events"][-1]["event"] == "cancelled_by_call_taker"
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.CANCELLED  # type: ignore[union-attr]

    run_jobs()
    assert legs_ended(twilio_api) == [HELPER_LEG]
    # Twilio then reports the leg over: nobody else is dialed, the handoff stays cancelled.
    post_helper_status(twilio, hid, "completed", 2)
    run_jobs()
    assert helpers_dialed(twilio_api) == [RIVERA_PHONE]
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.CANCELLED  # type: ignore[union-attr]
    whisper = twilio.post(
        f"/voice/handoff/whisper?h={hid}&at=1",
        data={"CallSid": HELPER_LEG},
        headers={
            SIGNATURE_HEADER: compute_signature(
                AUTH_TOKEN,
                f"{PUBLIC_BASE}/voice/handoff/whisper?h={hid}&at=1",
                {"CallSid": HELPER_LEG}.items(),
            )
        },
    )
    assert "no longer waiting" in whisper.get_data(as_text=True)

    # A second press of Cancel changes nothing; a new consult may start now.
    again = call_taker.post(f"/api/console/calls/{live.id}/handoffs/{hid}/cancel", json={})
    assert again.status_code == 200 and again.json["handoff"]["status"] == "cancelled"
    assert start(call_taker, live, {**CLINICIAN, "helper_type": "navigator"}).status_code == 201  # type: ignore[attr-defined]


def test_a_helper_cancelled_before_the_worker_dials_is_never_called(
    call_taker: StaffClient,
    live: LiveCall,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
) -> None:
    hid = start(call_taker, live, CLINICIAN).json["handoff"]["id"]  # type: ignore[attr-defined]
    assert call_taker.post(f"/api/console/calls/{live.id}/handoffs/{hid}/cancel").status_code == 200
    run_jobs()
    assert helpers_dialed(twilio_api) == [] and legs_ended(twilio_api) == []


def test_a_connected_helper_cannot_be_cancelled(
    call_taker: StaffClient, live: LiveCall, engine: sa.Engine, queues: Queues
) -> None:
    hid = start(call_taker, live, CLINICIAN).json["handoff"]["id"]  # type: ignore[attr-defined]
    connect(engine, hid)
    refused = call_taker.post(f"/api/console/calls/{live.id}/handoffs/{hid}/cancel", json={})
    assert refused.status_code == 409
    assert refused.json["error"] == "Cannot cancel: the helper is already connected to the caller."
    assert "workers.handoffs.cancel_helper" not in [
        j.func_name for j in queues.queue(handoffs.DIAL_QUEUE).get_jobs()
    ]
    other = call_taker.post(f"/api/console/calls/{live.id}/handoffs/999999/cancel", json={})
    assert other.status_code == 404


# ------------------------------------------------------------------ the rule itself


@dataclass(frozen=True)
class H:
    id: int
    helper_type: str
    status: str
    member_id: str | None = None


def decide(existing: list[H], helper_type: str, confirm: bool = False) -> ConsultVerdict:
    return check_new_consult(
        existing,
        helper_type,
        confirm_second=confirm,
        label=lambda t: t.replace("_", " "),
        member_name=lambda m: None,
    ).verdict


@pytest.mark.parametrize(
    ("existing", "asked", "confirm", "verdict"),
    [
        ([], "navigator", False, ConsultVerdict.START),
        ([H(1, "navigator", "ringing")], "navigator", False, ConsultVerdict.ALREADY_UNDER_WAY),
        ([H(1, "navigator", "falling_back")], "crisis_988", True, ConsultVerdict.BUSY),
        ([H(1, "navigator", "accepted")], "crisis_988", False, ConsultVerdict.BUSY),
        ([H(1, "navigator", "connected")], "navigator", False, ConsultVerdict.NEEDS_CONFIRMATION),
        ([H(1, "navigator", "connected")], "crisis_988", True, ConsultVerdict.START),
        ([H(1, "navigator", "returned"), H(2, "navigator", "cancelled")], "navigator", False,
         ConsultVerdict.START),
        ([H(1, "navigator", "completed"), H(2, "crisis_988", "not_started")], "crisis_988", False,
         ConsultVerdict.START),
    ],
)  # fmt: skip
def test_one_consult_at_a_time_rule(
    existing: list[H], asked: str, confirm: bool, verdict: ConsultVerdict
) -> None:
    assert decide(existing, asked, confirm) is verdict


def test_a_late_twilio_status_does_not_undo_a_cancel() -> None:
    base = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)

    def ev(n: int, event: HandoffEvent, seconds: int, **kw: object) -> handoffs.EventRecord:
        return handoffs.EventRecord(
            id=n, handoff_id=1, event=event, source=EventSource.TWILIO,
            occurred_at=base + timedelta(seconds=seconds), **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    history = [
        ev(1, HandoffEvent.REQUESTED, 0),
        ev(2, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera"),
        ev(3, HandoffEvent.CANCELLED_BY_CALL_TAKER, 5),
        ev(4, HandoffEvent.ANSWERED, 4, attempt=1),  # dated before the cancel, arriving after
        ev(5, HandoffEvent.HELPER_LEFT, 6, attempt=1),
    ]
    derived = handoffs.derive(history)
    assert (derived.status, derived.reason_code) == (HandoffStatus.CANCELLED, "cancelled")


def test_a_desk_handoff_cancelled_from_the_console_gives_the_desk_call_taker_the_offer_again(
    app: Flask,
    call_taker: StaffClient,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
) -> None:
    desk_leg = "CA" + "5" * 32
    live = handoffs.open_live_call(
        engine, call_sid=desk_leg, origin=Origin.DESK, callback_number=CALLER_NUMBER,
        call_taker_staff_id="4511", now=datetime.now(UTC),
    )  # fmt: skip
    with app.app_context():
        started = handoffs.start_handoff(
            engine, app.extensions["bridgeline"].queues, call_sid=desk_leg,
            call_taker_staff_id="4511", helper_type="embedded_clinician", answers=SAFE_ANSWERS,
            reason=None, key="desk:cancel:1",
        )  # fmt: skip
    twilio_api.add(responses.POST, call_url(desk_leg), body=call_json(desk_leg))
    answer = call_taker.post(f"/api/console/calls/{live.id}/handoffs/{started.id}/cancel")
    assert answer.json["handoff"]["status"] == "cancelled"
    run_jobs()
    assert helpers_dialed(twilio_api) == []  # cancelled before the worker dialed anyone
    (moved,) = [c for c in twilio_api.calls if c.request.url == call_url(desk_leg)]
    returned_url = form_of(moved.request)["Url"][0]
    assert "/voice/transfer-desk/returned" in returned_url
    path = returned_url[len(PUBLIC_BASE) :]
    heard = app.test_client().post(
        path,
        data={"CallSid": desk_leg},
        headers={
            SIGNATURE_HEADER: compute_signature(
                AUTH_TOKEN, returned_url, {"CallSid": desk_leg}.items()
            )
        },
    )
    assert "The transfer was cancelled from the console." in heard.get_data(as_text=True)

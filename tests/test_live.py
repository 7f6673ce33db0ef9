"""The supervisor's live wall: what is waiting, ringing and overdue now, kept current by a cheap
conditional poll (ETag / 304), and any live call opened read-only."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from time_machine import TimeMachineFixture

from ivr.config.program import NENA_TARGETS
from ivr.decisions.handoffs import EventSource, HandoffEvent, Origin
from ivr.decisions.routing import on_duty
from ivr.flows import handoffs
from ivr.live import board
from ivr.live.format import elapsed, local_clock
from ivr.reporting.labels import Labels
from ivr.services import services_of
from ivr.store.account_tables import call_notes
from tests.console_fixtures import PASSWORD, MakeStaff, make_staff
from tests.dashboard_fixtures import add_callback, add_event, program, sign_in
from tests.desk_fixtures import WEDNESDAY_11AM

FIXTURES = (make_staff, program)
"""Fixtures this module uses from the console and dashboard fixture modules."""

ANSWERS = {"weapon": False, "immediate_danger": False, "violence": False, "consent": True,
           "medical": False, "health_question": False}  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


def _supervisor(client: FlaskClient, make_staff: MakeStaff) -> None:
    staff = make_staff("supervisor")
    assert sign_in(client, staff.staff_id, PASSWORD).status_code == 302


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _wall(client: FlaskClient, etag: str | None = None) -> Any:
    headers = {"If-None-Match": f'"{etag}"'} if etag else {}
    return client.get("/api/live/wall", headers=headers, base_url="https://localhost")


def _start(app: Flask, engine: sa.Engine, call_sid: str, helper_type: str) -> handoffs.Handoff:
    live = handoffs.open_live_call(
        engine,
        call_sid=call_sid,
        origin=Origin.INTAKE,
        callback_number="+15205550144",
        call_taker_staff_id=None,
        now=_now(),
    )
    return handoffs.start_handoff(
        engine,
        app.extensions["bridgeline"].queues,
        call_sid=live.call_sid,
        call_taker_staff_id="4601",
        helper_type=helper_type,
        answers=ANSWERS,
        reason="panic attack",
        roster=app.extensions["bridgeline"].roster,
        tree=app.extensions["bridgeline"].tree,
    )


def _record(engine: sa.Engine, handoff_id: int, event: HandoffEvent, **kw: Any) -> None:
    handoffs.record_event(
        engine,
        handoff_id,
        event,
        source=EventSource.TWILIO,
        dedupe_key=f"live-test:{handoff_id}:{event.value}:{kw.get('attempt')}",
        occurred_at=_now(),
        **kw,
    )


# ------------------------------------------------------------------ who may see it


def test_anonymous_visitors_are_sent_to_sign_in_and_the_poll_answers_401(
    client: FlaskClient,
) -> None:
    response = client.get("/live")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/api/live/wall").status_code == 401


def test_call_takers_and_clinicians_may_not_watch_the_wall(
    app: Flask, make_staff: MakeStaff
) -> None:
    for role in ("call_taker", "clinician"):
        staff = make_staff(role)
        client = app.test_client()
        assert sign_in(client, staff.staff_id, PASSWORD).status_code == 302
        for path in ("/live", "/api/live/wall", "/live/calls/1"):
            assert client.get(path, base_url="https://localhost").status_code == 403, (role, path)


# ------------------------------------------------------------------ the wall, as it changes


def test_supervisor_watches_a_handoff_ring_then_connect_and_the_poll_is_304_in_between(
    app: Flask,
    client: FlaskClient,
    engine: sa.Engine,
    make_staff: MakeStaff,
    time_machine: TimeMachineFixture,
) -> None:
    # Wednesday 11:00 in Phoenix: Dana Rivera is the one embedded clinician on duty
    # (config/roster.yaml); the wall counts busy among those on duty, so the hour is fixed.
    time_machine.move_to(WEDNESDAY_11AM, tick=True)
    _supervisor(client, make_staff)
    page = client.get("/live", base_url="https://localhost")
    assert page.status_code == 200
    assert "No one is waiting." in page.get_data(as_text=True)

    first = _wall(client)
    assert first.status_code == 200
    version = first.get_json()["version"]
    assert first.headers["ETag"] == f'"{version}"'
    # nothing happened: an empty 304, nothing rendered
    unchanged = _wall(client, version)
    assert unchanged.status_code == 304 and unchanged.data == b""

    (rung,) = on_duty(services_of(app).roster, "embedded_clinician", datetime.now(UTC))
    assert rung.name == "Dana Rivera"
    handoff = _start(app, engine, "CA" + "1" * 32, "embedded_clinician")
    _record(engine, handoff.id, HandoffEvent.DIALING, attempt=1, member_id=rung.member_id)
    _record(engine, handoff.id, HandoffEvent.RINGING, attempt=1)
    ringing = _wall(client, version)
    assert ringing.status_code == 200
    body = ringing.get_json()
    handoffs_text = _text(body["sections"]["handoffs"])
    assert "Embedded clinician" in handoffs_text and "ringing" in handoffs_text
    assert rung.name in handoffs_text  # who is being rung, by name
    assert rung.member_id not in handoffs_text
    assert "1 handoffs ringing" in body["summary"]
    staffing = _text(body["sections"]["staffing"])
    assert re.search(rf"Embedded clinician \d+ 1: {re.escape(rung.name)}", staffing)  # busy while rung
    assert "988 crisis line 1 0 1: Regional 988 center always on duty (no shifts)" in staffing

    _record(engine, handoff.id, HandoffEvent.ACCEPTED, attempt=1)
    _record(engine, handoff.id, HandoffEvent.HELPER_JOINED, attempt=1)
    connected = _wall(client, body["version"]).get_json()
    text = _text(connected["sections"]["handoffs"])
    assert "connected" in text and f"{rung.name} (on the call)" in text
    assert "0 handoffs ringing, 1 connected" in connected["summary"]


def test_intake_callers_and_311_queue_callers_are_listed_longest_wait_first(
    client: FlaskClient, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    _supervisor(client, make_staff)
    now = _now()
    add_event(engine, "CA-queue-old", "to_person", None, now - timedelta(minutes=7))
    add_event(engine, "CA-queue-done", "to_person", None, now - timedelta(minutes=9))
    add_event(engine, "CA-queue-done", "queue_left", "bridged", now - timedelta(minutes=2))
    add_event(engine, "CA-queue-ancient", "to_person", None, now - timedelta(hours=5))
    live = handoffs.open_live_call(
        engine,
        call_sid="CA" + "2" * 32,
        origin=Origin.INTAKE,
        callback_number=None,
        call_taker_staff_id=None,
        now=now - timedelta(minutes=3),
    )
    body = _wall(client).get_json()
    rows = re.findall(r"<tr data-key=\"([^\"]+)\"", body["sections"]["waiting"])
    assert len(rows) == 2  # the answered and the 5-hour-old queue entries are not waiting
    assert rows[0].startswith("queue-") and rows[1] == f"call-{live.id}"
    text = _text(body["sections"]["waiting"])
    assert text.index("311 queue") < text.index("intake line conference")
    assert "Longest wait" in text
    assert "CA-queue-old" not in body["sections"]["waiting"]  # no call SID on the page
    assert "7 min" in _text(body["sections"]["summary"])


def test_callbacks_due_and_overdue_are_counted_and_marked_in_words(
    client: FlaskClient, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    _supervisor(client, make_staff)
    now = _now()
    add_callback(engine, status="pending", created_at=now - timedelta(hours=3),
                 deadline_at=now - timedelta(hours=1))  # fmt: skip
    add_callback(engine, status="pending", created_at=now - timedelta(minutes=5),
                 deadline_at=now + timedelta(hours=2))  # fmt: skip
    add_callback(engine, status="done", created_at=now - timedelta(hours=4),
                 deadline_at=now - timedelta(hours=2))  # fmt: skip
    body = _wall(client).get_json()
    text = _text(body["sections"]["callbacks"])
    assert "Open 2" in text and "Due now 2" in text
    assert "Overdue (past deadline) 1 Overdue" in text and "1 h 00 min past its deadline" in text
    assert "1 callbacks overdue" in body["summary"]
    assert "Past deadline" in _text(body["sections"]["summary"])


def test_callback_figures_count_open_ones_and_failed_ones_nobody_closed(engine: sa.Engine) -> None:
    """The wall's callback figures read partial indexes (migration 0018): each kind of row a
    year leaves behind is counted where it belongs, and done or closed ones nowhere."""
    from ivr.store.tables import callbacks

    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)

    def callback(status: str, created: timedelta, deadline: timedelta, **extra: Any) -> None:
        row = add_callback(engine, status=status, created_at=now - created,
                           deadline_at=now - deadline)  # fmt: skip
        if extra:
            with engine.begin() as conn:
                conn.execute(callbacks.update().where(callbacks.c.id == row).values(**extra))

    # open: overdue for months, overdue an hour, due but inside its deadline, dialing now
    callback("pending", timedelta(days=200), timedelta(days=199))
    callback("pending", timedelta(hours=3), timedelta(hours=1))
    callback("pending", timedelta(minutes=20), -timedelta(hours=2), due_at=None)
    callback("dialing", timedelta(minutes=5), -timedelta(hours=1))
    callback("pending", timedelta(minutes=30), timedelta(0), deadline_at=None)  # no deadline
    # open, not due yet: asked for tomorrow morning and in two hours (the next one due)
    callback("pending", timedelta(hours=1), -timedelta(days=1),
             due_at=now + timedelta(hours=18))  # fmt: skip
    callback("pending", timedelta(hours=1), -timedelta(hours=5), due_at=now + timedelta(hours=2))
    # failed: two nobody closed, one closed by staff; done ones, closed or not, count nowhere
    callback("failed", timedelta(days=90), timedelta(days=89))
    callback("failed", timedelta(hours=2), timedelta(hours=1))
    callback("failed", timedelta(days=3), timedelta(days=2), closed_at=now - timedelta(days=1))
    callback("done", timedelta(days=100), timedelta(days=99))
    callback("done", timedelta(hours=2), -timedelta(hours=1), closed_at=now)

    with engine.connect() as conn:
        counts = board.callback_counts(conn, now)
    assert counts == board.CallbackCounts(
        open=7,
        due=5,
        overdue=2,
        failed_waiting=2,
        oldest_overdue_deadline=now - timedelta(days=199),
        next_due=now + timedelta(hours=2),
    )


def test_todays_answers_below_the_nena_target_are_marked_below_target(
    app: Flask,
    client: FlaskClient,
    engine: sa.Engine,
    make_staff: MakeStaff,
    time_machine: TimeMachineFixture,
) -> None:
    # "Today" is since local midnight: a handoff made at 23:59:59 is yesterday's by the time
    # the wall is read, so the hour is fixed.
    time_machine.move_to(WEDNESDAY_11AM, tick=True)
    _supervisor(client, make_staff)
    handoff = _start(app, engine, "CA" + "3" * 32, "embedded_clinician")
    # accepted 40 s after it was asked for: today's share within 15 s and 20 s is 0%
    from ivr.store.handoff_tables import handoffs as handoff_table

    with engine.begin() as conn:
        conn.execute(
            handoff_table.update()
            .where(handoff_table.c.id == handoff.id)
            .values(accepted_at=handoff.created_at + timedelta(seconds=40))
        )
    text = _text(_wall(client).get_json()["sections"]["answers"])
    assert "Within 15 s (target 90%)" in text and "Within 20 s (target 95%)" in text
    assert "Embedded clinician 1 0.0% Below target 0.0% Below target" in text


def test_a_supervisor_opens_a_live_call_read_only_and_follows_it(
    app: Flask, client: FlaskClient, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    _supervisor(client, make_staff)
    handoff = _start(app, engine, "CA" + "4" * 32, "embedded_clinician")
    with engine.begin() as conn:
        conn.execute(
            call_notes.insert().values(
                live_call_id=handoff.live_call_id, staff_id="4601", body="caller calmer", at=_now()
            )
        )
    page = client.get(f"/live/calls/{handoff.live_call_id}", base_url="https://localhost")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "read-only" in html and "<form" not in html.split("<main")[1]  # no buttons to act
    text = _text(html)
    assert "Is a weapon involved?" in text or "weapon" in text.lower()
    assert "caller calmer" in text and "panic attack" in text
    assert "+15205550144" not in html  # the caller's number stays off the supervisor's view

    state = client.get(f"/api/live/calls/{handoff.live_call_id}", base_url="https://localhost")
    version = state.get_json()["version"]
    assert (
        client.get(
            f"/api/live/calls/{handoff.live_call_id}",
            headers={"If-None-Match": f'"{version}"'},
            base_url="https://localhost",
        ).status_code
        == 304
    )
    _record(engine, handoff.id, HandoffEvent.DIALING, attempt=1, member_id="clin-rivera")
    changed = client.get(
        f"/api/live/calls/{handoff.live_call_id}",
        headers={"If-None-Match": f'"{version}"'},
        base_url="https://localhost",
    )
    assert changed.status_code == 200
    assert "dialing — Dana Rivera" in _text(changed.get_json()["sections"]["call"])
    assert client.get("/live/calls/999999", base_url="https://localhost").status_code == 404


def test_a_supervisor_sent_to_the_console_lands_on_the_live_wall(
    client: FlaskClient, make_staff: MakeStaff
) -> None:
    _supervisor(client, make_staff)
    answer = client.get("/console", base_url="https://localhost")
    assert answer.status_code == 302 and answer.headers["Location"] == "/live"


def test_the_console_calls_api_answers_a_supervisor(
    app: Flask, client: FlaskClient, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    _supervisor(client, make_staff)
    handoff = _start(app, engine, "CA" + "5" * 32, "embedded_clinician")
    listed = client.get("/api/console/calls", base_url="https://localhost")
    assert listed.status_code == 200
    assert [c["id"] for c in listed.get_json()["calls"]] == [handoff.live_call_id]
    detail = client.get(f"/api/console/calls/{handoff.live_call_id}", base_url="https://localhost")
    assert detail.status_code == 200


# ------------------------------------------------------------------ the rules, on plain values


def test_a_queued_call_waits_until_its_last_join_is_followed_by_an_end() -> None:
    t = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    rows = [
        ("A", "to_person", t),
        ("B", "to_person", t),
        ("B", "queue_left", t + timedelta(minutes=1)),
        ("C", "to_person", t + timedelta(minutes=5)),  # back in the queue after leaving
        ("C", "queue_callback", t + timedelta(minutes=2)),
    ]
    assert board.waiting_from_events(rows) == {"A": t, "C": t + timedelta(minutes=5)}


@pytest.mark.parametrize(
    ("answers", "shares", "below"),
    [
        ({10: 9, 30: 1}, (90.0, 90.0), (False, True)),  # 90% in 15 s met, 95% in 20 s missed
        ({10: 19, 30: 1}, (95.0, 95.0), (False, False)),
        ({16: 1, 10: 9}, (90.0, 100.0), (False, False)),
        ({10: 8, 18: 2}, (80.0, 100.0), (True, False)),
    ],
)
def test_answer_targets_are_met_or_marked_below(
    answers: dict[int, int], shares: tuple[float, float], below: tuple[bool, bool]
) -> None:
    all_row, type_row = board.answer_rows({"navigator": answers}, NENA_TARGETS, Labels())
    assert tuple(t.actual_pct for t in type_row.targets) == shares
    assert tuple(t.below for t in type_row.targets) == below
    assert type_row.below == any(below)
    assert all_row.label == "All helpers" and all_row.answered == sum(answers.values())
    assert type_row.label == "navigator"


def test_no_answers_yet_is_not_a_breach() -> None:
    (row,) = board.answer_rows({}, NENA_TARGETS, Labels())
    assert row.answered == 0 and not row.below
    assert all(t.actual_pct is None for t in row.targets)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (59, "59 s"), (61, "1 min 01 s"), (3600, "1 h 00 min"), (3 * 86400, "3 days 0 h")],
)
def test_elapsed_times_read_as_words(seconds: int, words: str) -> None:
    now = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
    assert elapsed(now - timedelta(seconds=seconds), now) == words


def test_clock_times_are_local_with_the_day_when_not_today(program: Any) -> None:
    now = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # 13:00 in Phoenix
    assert local_clock(now, program.zone, now) == "13:00"
    assert local_clock(now - timedelta(days=1), program.zone, now) == "Sun 29 Nov 13:00"


def test_the_wall_changes_version_only_when_its_content_does(
    app: Flask, engine: sa.Engine, time_machine: TimeMachineFixture
) -> None:
    # The wall's figures are "today's": fixed away from local midnight so the only change is
    # the one this test makes.
    time_machine.move_to(WEDNESDAY_11AM, tick=True)
    program = app.extensions["bridgeline"].program
    roster = app.extensions["bridgeline"].roster
    labels = app.extensions["bridgeline"].labels
    now = _now()

    def version(at: datetime) -> str:
        inputs = board.read_inputs(engine, program, at)
        return board.build_wall(inputs, roster, program, labels, at).version()

    empty = version(now)
    assert version(now + timedelta(seconds=1)) == empty  # elapsed time alone: the page ticks it
    add_event(engine, "CA-q", "to_person", None, now)
    assert version(now + timedelta(seconds=1)) != empty  # someone is waiting
    add_event(engine, "CA-q", "queue_left", "hangup", now + timedelta(seconds=1))
    assert version(now + timedelta(seconds=2)) == empty  # and no longer


SignedPost = Callable[..., Any]


def test_a_311_caller_leaves_the_wall_when_twilio_reports_the_queue_ended(
    app: Flask, signed_post: SignedPost, engine: sa.Engine
) -> None:
    from ivr.store.tables import self_service_events

    sid = "CA" + "9" * 32
    signed_post(
        "/voice/self-service/queue/done?lang=en", {"CallSid": sid, "QueueResult": "bridged"}
    )
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(self_service_events.c.event, self_service_events.c.detail).where(
                self_service_events.c.call_sid == sid
            )
        ).all()
    assert ("queue_left", "bridged") in [tuple(r) for r in rows]

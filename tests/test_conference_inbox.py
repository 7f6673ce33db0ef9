# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""Conference status callbacks taken in with one write and applied by a worker: the way the
web processes run in production (tests otherwise apply them during the request)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr.accounts import Staff
from ivr.decisions.handoffs import HandoffStatus
from ivr.flows import conference_inbox, handoffs
from ivr.flows.conference_inbox import ConferenceInbox
from ivr.flows.desk import TransferDesk
from ivr.store.events import EventSpool
from ivr.store.handoff_tables import conference_inbox as inbox_table
from ivr.voice.desk_routes import INBOX_KEY
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    CALLS_URL,
    WEDNESDAY_11AM,
    call_json,
    call_taker,
    call_url,
    desk,
    participant_url,
    twilio_post,
    worker_clock,
)
from tests.test_handoff_log import (
    CALLER_ID,
    CONFERENCE_SID,
    HELPER_1,
    Place,
    _conference,
    _desk_to_conference,
    _expect_helper_dial,
    _log,
    _status,
)
from tests.test_metrics import scrape


@pytest.fixture
def spool(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventSpool]:
    """The app's conference callbacks go through a spool, as under gunicorn."""
    inbox: ConferenceInbox = app.extensions[INBOX_KEY]
    # Flushed by the test, not by the thread (set before the thread starts waiting).
    monkeypatch.setattr(conference_inbox, "FLUSH_INTERVAL_SECONDS", 3600)
    spool = inbox.use_spool(tmp_path / "spool")
    spool.interval = 3600
    yield spool
    spool.close()
    inbox.spool = None


def _inbox_rows(engine: sa.Engine) -> list[Any]:
    """Callbacks taken in and not applied yet."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(inbox_table)
                .where(inbox_table.c.applied_at.is_(None))
                .order_by(inbox_table.c.id)
            ).all()
        )


def _accepted_handoff(
    call: Place,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
) -> tuple[handoffs.LiveCall, int, str]:
    """A desk call handed to the embedded clinician, who pressed 1 at the whisper."""
    c = _desk_to_conference(call, "1")
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    _expect_helper_dial(twilio_api, HELPER_1)
    assert run_jobs() == 1
    _status(twilio_post, handoff.id, 1, HELPER_1, "in-progress", 2, 4)
    helper = call(
        f"/voice/handoff/whisper?h={handoff.id}&at=1", from_number=CALLER_ID, call_sid=HELPER_1
    )
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=8)
    helper.press("1")
    assert handoffs.get_handoff(engine, handoff.id).status is HandoffStatus.ACCEPTED  # type: ignore[union-attr]
    return live, handoff.id, c.call_sid


def test_the_helper_joining_is_taken_in_at_once_then_a_worker_connects_and_announces_it(
    call: Place,
    client: FlaskClient,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
    spool: EventSpool,
) -> None:
    live, hid, caller_sid = _accepted_handoff(call, desk, engine, run_jobs, twilio_api, twilio_post)
    # Twilio sends the helper's join twice (a retry) and the caller's join once.
    _conference(twilio_post, live, "participant-join", 3, 9, label=f"helper-{hid}-1", sid=HELPER_1)
    _conference(twilio_post, live, "participant-join", 3, 9, label=f"helper-{hid}-1", sid=HELPER_1)
    _conference(twilio_post, live, "participant-join", 2, 1, label="caller", sid=caller_sid)
    # Answered at once: nothing applied yet, nothing in SQL yet, all of it in the spool.
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.ACCEPTED  # type: ignore[union-attr]
    assert _inbox_rows(engine) == []

    # The helper's call status "in-progress" (before the keypress) waits in the same inbox.
    assert spool.flush() == 4
    rows = _inbox_rows(engine)
    assert len(rows) == 3  # the retried join is kept once
    assert json.loads(rows[0].form)["CallStatus"] == "in-progress"
    assert "+1520" not in " ".join(r.form for r in rows)  # no phone number is kept
    assert scrape(client)[("bridgeline_conference_callbacks_unapplied", ())] == 3

    twilio_api.add(
        responses.POST,
        participant_url(CONFERENCE_SID, "caller"),
        json={"call_sid": caller_sid, "conference_sid": CONFERENCE_SID, "label": "caller"},
    )
    assert run_jobs() == 0  # nobody is woken until the rows have settled (other spools)
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=10)
    assert spool.tick is not None
    spool.tick()  # the spool's thread, a second later: now a worker is woken
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=10))
    assert run_jobs() == 2  # the apply job, then the announcement it queued
    assert _inbox_rows(engine) == []
    assert scrape(client)[("bridgeline_conference_callbacks_unapplied", ())] == 0
    after = handoffs.get_handoff(engine, hid)
    assert after is not None and after.status is HandoffStatus.CONNECTED
    assert [e for e in _log(engine, hid) if e[0] == "helper_joined"] == [
        ("helper_joined", 1, None, None)
    ]
    assert "AnnounceUrl" in twilio_api.calls[-1].request.body
    live_now = handoffs.get_live_call(engine, live.id)
    assert live_now is not None and live_now.conference_sid == CONFERENCE_SID


def test_with_the_database_down_callbacks_wait_in_the_spool_and_apply_when_it_is_back(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
    spool: EventSpool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live, hid, caller_sid = _accepted_handoff(call, desk, engine, run_jobs, twilio_api, twilio_post)
    _conference(twilio_post, live, "participant-leave", 5, 30, label="caller", sid=caller_sid)

    real = conference_inbox.add_to_inbox

    def database_down(conn: sa.Connection, rows: list[dict[str, Any]], now: datetime) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(conference_inbox, "add_to_inbox", database_down)
    with pytest.raises(sa.exc.OperationalError):
        spool.flush()
    assert _inbox_rows(engine) == []
    assert list(spool.folder.glob("conference-*.flushing"))  # kept for the next flush

    monkeypatch.setattr(conference_inbox, "add_to_inbox", real)
    assert spool.flush() == 2  # the helper's call answered, then the caller's leave
    assert not list(spool.folder.glob("conference-*.flushing"))
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=31)
    spool.tick()  # type: ignore[misc]
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=31))
    run_jobs()
    dropped = handoffs.get_handoff(engine, hid)
    # Accepted but not yet in the conference: the caller left first, a callback is recorded.
    assert dropped is not None and dropped.status is HandoffStatus.CALLER_DROPPED
    assert dropped.callback_id is not None


def test_with_redis_down_the_handoff_sweep_applies_what_was_taken_in(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
    spool: EventSpool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import workers.handoffs

    live, hid, _ = _accepted_handoff(call, desk, engine, run_jobs, twilio_api, twilio_post)
    _conference(twilio_post, live, "participant-join", 3, 9, label=f"helper-{hid}-1", sid=HELPER_1)
    monkeypatch.setattr(conference_inbox, "wake_worker", lambda queues: False)
    assert spool.flush() == 2  # the helper's call answered, then their join
    assert run_jobs() == 0  # no apply job was queued
    assert len(_inbox_rows(engine)) == 2

    worker_clock(WEDNESDAY_11AM + timedelta(seconds=10))
    workers.handoffs.sweep_handoffs()
    assert _inbox_rows(engine) == []
    after = handoffs.get_handoff(engine, hid)
    assert after is not None and after.status is HandoffStatus.CONNECTED


def _add(engine: sa.Engine, calls: list[int], now: datetime) -> None:
    """One participant-join per entry of `calls` (a live call id), received a second apart a
    minute before `now`, all settled by `now`."""
    rows = [
        conference_inbox.callback_row(
            live,
            {"StatusCallbackEvent": "participant-join", "SequenceNumber": str(i)},
            None,
            now - timedelta(minutes=1) + timedelta(seconds=i),
        )
        for i, live in enumerate(calls)
    ]
    with engine.begin() as conn:
        conference_inbox.add_to_inbox(conn, rows, conference_inbox.settled_at(now))


def test_two_workers_never_claim_the_same_callback_and_a_dead_workers_claim_is_retaken(
    engine: sa.Engine,
) -> None:
    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    _add(engine, [1, 2, 3, 4, 5], now)
    first = conference_inbox.claim(engine, "worker-a", now, limit=3)
    second = conference_inbox.claim(engine, "worker-b", now, limit=3)
    assert [r.live_call_id for r in first] == [1, 2, 3]  # oldest first
    assert [r.live_call_id for r in second] == [4, 5]
    assert conference_inbox.claim(engine, "worker-c", now) == []
    # worker-a died: after CLAIM_EXPIRES its rows are taken again, worker-b's too.
    later = now + conference_inbox.CLAIM_EXPIRES + timedelta(seconds=1)
    assert len(conference_inbox.claim(engine, "worker-c", later)) == 5


def test_one_calls_callbacks_are_never_applied_by_two_workers_at_once_or_out_of_order(
    engine: sa.Engine,
) -> None:
    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    _add(engine, [7, 7, 8, 7], now)
    first = conference_inbox.claim(engine, "worker-a", now, limit=1)
    assert [(r.live_call_id, json.loads(r.form)["SequenceNumber"]) for r in first] == [(7, "0")]
    # Call 7's later callbacks wait while worker-a holds its first; call 8's does not.
    second = conference_inbox.claim(engine, "worker-b", now)
    assert [(r.live_call_id, json.loads(r.form)["SequenceNumber"]) for r in second] == [(8, "2")]


def test_a_callback_waits_until_the_other_web_processes_have_added_what_they_took_in_before(
    engine: sa.Engine,
) -> None:
    """Two web processes, two spools (seen in CI as a second helper rung for a call that was
    over): web 1 takes in the caller's "left", web 2 the helper's "left" 10 ms later. Web 2
    flushes at once, web 1 a quarter second later. The helper's "left" alone would mean "dial
    the next helper": it must not be applied before the caller's."""
    t0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    ms = timedelta(milliseconds=1)

    def left(label: str, seq: int, received: datetime) -> dict[str, Any]:
        form = {"StatusCallbackEvent": "participant-leave", "ParticipantLabel": label}
        return conference_inbox.callback_row(7, {**form, "SequenceNumber": str(seq)}, None, received)

    with engine.begin() as conn:  # web 2's flush
        conference_inbox.add_to_inbox(conn, [left("helper-1-1", 5, t0 + 10 * ms)], t0 + 20 * ms)
    settle = timedelta(seconds=conference_inbox.SETTLE_SECONDS)
    assert conference_inbox.claim(engine, "worker-a", t0 + 20 * ms) == []  # not settled yet
    with engine.begin() as conn:  # web 1's flush, in the table well before web 2's row settles
        conference_inbox.add_to_inbox(conn, [left("caller", 4, t0)], t0 + 260 * ms)

    # Web 2's row has settled; it still waits behind the caller's, which was received first.
    assert conference_inbox.claim(engine, "worker-a", t0 + 20 * ms + settle) == []
    rows = conference_inbox.claim(engine, "worker-a", t0 + 260 * ms + settle)
    assert [json.loads(r.form)["ParticipantLabel"] for r in rows] == ["caller", "helper-1-1"]


def test_a_callback_that_keeps_failing_holds_back_its_call_only_then_is_left_after_five_tries(
    engine: sa.Engine,
) -> None:
    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    _add(engine, [7, 7, 7, 8], now)
    applied: list[str] = []

    def apply(live: int, form: Any, token: str | None, at: datetime) -> None:
        if form["SequenceNumber"] == "1":
            raise RuntimeError("a bug")
        applied.append(form["SequenceNumber"])

    conference_inbox.apply_pending(engine, apply, lambda: now)
    assert applied == ["0", "3"]  # call 7's third waits behind its failed second; call 8 goes on
    assert conference_inbox.apply_pending(engine, apply, lambda: now) == 0
    step = conference_inbox.CLAIM_EXPIRES + timedelta(seconds=1)
    for n in range(1, conference_inbox.MAX_ATTEMPTS + 2):
        conference_inbox.apply_pending(engine, apply, lambda n=n: now + n * step)  # type: ignore[misc]
    # After five tries the failed one is left (logged, counted in /metrics) and the call goes on.
    assert applied == ["0", "3", "2"]
    (left,) = _inbox_rows(engine)
    assert left.attempts == conference_inbox.MAX_ATTEMPTS
    assert conference_inbox.pending(engine) == 1


def test_a_retry_of_an_applied_callback_arriving_later_is_still_a_duplicate(
    engine: sa.Engine,
) -> None:
    now = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
    _add(engine, [7], now)
    applied: list[str] = []
    conference_inbox.apply_pending(engine, lambda *a: applied.append("x"), lambda: now)
    _add(engine, [7], now)  # Twilio sends it again an hour later
    conference_inbox.apply_pending(engine, lambda *a: applied.append("x"), lambda: now)
    assert applied == ["x"]
    # A day later the applied one is forgotten.
    conference_inbox.apply_pending(engine, lambda *a: None, lambda: now + timedelta(days=2))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(inbox_table)).scalar() == 0


def test_a_callback_for_no_live_call_is_answered_and_kept_nowhere(
    engine: sa.Engine, twilio_post: Callable[..., Any], spool: EventSpool
) -> None:
    answer = twilio_post(
        "/voice/handoff/conference-status?live=abc",
        {"StatusCallbackEvent": "participant-join", "ConferenceSid": CONFERENCE_SID},
    )
    assert answer.status_code == 200
    assert spool.flush() == 0
    assert _inbox_rows(engine) == []


def test_a_callback_applied_late_is_dated_when_received_and_the_record_when_applied(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    """After a Redis or database outage the backlog is applied late: the dashboard's rollups
    and the sweeps read `updated_at`, which must say when the record changed."""
    live, hid, _ = _accepted_handoff(call, desk, engine, run_jobs, twilio_api, twilio_post)
    received = WEDNESDAY_11AM + timedelta(seconds=10)  # after the dial (worker_clock) and accept
    applied = WEDNESDAY_11AM + timedelta(minutes=20)
    desk.clock = lambda: applied
    form = {
        "StatusCallbackEvent": "participant-join",
        "FriendlyName": live.conference_name,
        "ConferenceSid": CONFERENCE_SID,
        "ParticipantLabel": f"helper-{hid}-1",
        "CallSid": HELPER_1,
        "SequenceNumber": "3",
    }
    desk.conference_event(live.id, form, None, received_at=received)
    after = handoffs.get_handoff(engine, hid)
    assert after is not None and after.status is HandoffStatus.CONNECTED
    assert after.updated_at == applied
    assert after.connected_at == received  # no Timestamp from Twilio: when it was received


def test_the_caller_hanging_up_just_after_the_helper_joined_rings_no_second_helper(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
    spool: EventSpool,
) -> None:
    """Found by the local Twilio (issue 12): the helper's own call status "completed" arrived
    while their join still waited in the inbox; applied at once, it read as "accepted, then
    left before joining" and the next helper's phone rang for a call that was over."""
    live, hid, caller_sid = _accepted_handoff(call, desk, engine, run_jobs, twilio_api, twilio_post)
    # The helper joins, the caller hangs up at the announcement (the conference ends with
    # them), and the helper's leg completes: Twilio posts all of it within a second or two.
    _conference(twilio_post, live, "participant-join", 3, 9, label=f"helper-{hid}-1", sid=HELPER_1)
    _conference(twilio_post, live, "participant-leave", 4, 10, label="caller", sid=caller_sid)
    _conference(
        twilio_post, live, "participant-leave", 5, 10, label=f"helper-{hid}-1", sid=HELPER_1
    )
    _conference(twilio_post, live, "conference-end", 6, 10)
    _status(twilio_post, hid, 1, HELPER_1, "completed", 3, 10)
    # Nothing about the attempt was applied ahead of the callbacks before it.
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.ACCEPTED  # type: ignore[union-attr]

    spool.flush()
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=12)
    spool.tick()  # type: ignore[misc]  # settled: a worker is woken
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=12))
    run_jobs()  # the apply job and whatever it queued; no Calls API request is expected
    after = handoffs.get_handoff(engine, hid)
    assert after is not None and after.status is HandoffStatus.COMPLETED
    assert after.attempt == 1 and after.callback_id is None
    assert not [e for e in _log(engine, hid) if e[1] == 2]  # nobody else was dialed
    assert [c.request.url for c in twilio_api.calls].count(CALLS_URL) == 1  # only the first


def test_a_fallback_dial_first_applies_the_calls_callbacks_still_in_the_inbox(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    """Two web processes, two spools: the one holding the helper's join flushes after the one
    holding their call's "completed", which a worker applies first. The dial of the next
    helper waits for the join, sees the call completed, and rings nobody."""
    live, hid, _ = _accepted_handoff(call, desk, engine, run_jobs, twilio_api, twilio_post)
    received = WEDNESDAY_11AM + timedelta(seconds=10)
    join = {
        "StatusCallbackEvent": "participant-join",
        "FriendlyName": live.conference_name,
        "ConferenceSid": CONFERENCE_SID,
        "ParticipantLabel": f"helper-{hid}-1",
        "CallSid": HELPER_1,
        "SequenceNumber": "3",
        "Timestamp": "Wed, 25 Nov 2026 18:00:09 +0000",
    }
    completed = {
        "CallSid": HELPER_1,
        "CallStatus": "completed",
        "SequenceNumber": "3",
        "Timestamp": "Wed, 25 Nov 2026 18:00:10 +0000",
    }
    with engine.begin() as conn:
        conference_inbox.add_to_inbox(
            conn,
            [conference_inbox.callback_row(live.id, completed, None, received, (hid, 1))],
            received,
        )
    settled = received + timedelta(seconds=conference_inbox.SETTLE_SECONDS)
    assert conference_inbox.apply_pending(engine, desk.inbox_callback, lambda: settled) == 1
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.FALLING_BACK  # type: ignore[union-attr]
    with engine.begin() as conn:  # the other process's spool, very late (a slow flush)
        conference_inbox.add_to_inbox(
            conn, [conference_inbox.callback_row(live.id, join, None, received)], settled
        )

    worker_clock(settled)  # the join has not settled yet: the dial waits for it
    run_jobs()  # the dial of attempt 2, queued by the fallback: no Calls API request expected
    after = handoffs.get_handoff(engine, hid)
    assert after is not None and after.status is HandoffStatus.COMPLETED and after.attempt == 1
    assert not [e for e in _log(engine, hid) if e[1] == 2]
    assert [c.request.url for c in twilio_api.calls].count(CALLS_URL) == 1


def test_no_next_helper_is_dialed_for_a_caller_who_is_gone(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Callable[..., Any],
    worker_clock: Callable[..., None],
) -> None:
    """The helper accepted, then hung up before joining (a real drop: the next helper would be
    dialed), but the caller's call had already ended: a dropped handoff, never a new dial."""
    live, hid, _ = _accepted_handoff(call, desk, engine, run_jobs, twilio_api, twilio_post)
    ended = WEDNESDAY_11AM + timedelta(seconds=9)
    handoffs.end_live_call(engine, live.id, ended)  # told by a callback no handoff saw yet
    _status(twilio_post, hid, 1, HELPER_1, "completed", 3, 10)
    assert handoffs.get_handoff(engine, hid).status is HandoffStatus.FALLING_BACK  # type: ignore[union-attr]

    twilio_api.add(responses.POST, call_url(HELPER_1), body=call_json(HELPER_1), status=200)
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=11))
    run_jobs()
    after = handoffs.get_handoff(engine, hid)
    assert after is not None and after.status is HandoffStatus.CALLER_DROPPED
    assert after.callback_id is not None  # someone calls them back
    assert not [e for e in _log(engine, hid) if e[1] == 2]
    assert [c.request.url for c in twilio_api.calls].count(CALLS_URL) == 1

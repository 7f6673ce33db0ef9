"""Every callback promised is seen in the console: age, deadline, attempts; overdue stands out."""

# ruff: noqa: F811 (fixtures imported from tests.console_fixtures are test parameters)

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ivr.store import callbacks as store
from ivr.store.callback_records import CallbackSource, CallbackStatus
from tests.console_fixtures import logged_in_client, make_staff  # noqa: F401


def _callback(
    engine: sa.Engine, key: str, created: datetime, deadline: timedelta
) -> store.Callback:
    return store.create_callback(
        engine,
        key=key,
        source=CallbackSource.RESIDENT_MENU,
        phone_number="+15205550123",
        language="en",
        helper_type="navigator",
        due_at=created,
        deadline_at=created + deadline,
        consent=True,
        note="asked about a shelter bed",
        now=created,
    )


def test_a_call_taker_sees_open_callbacks_with_overdue_ones_standing_out(
    logged_in_client, engine: sa.Engine
) -> None:
    now = datetime.now(UTC)
    late = _callback(engine, "late", now - timedelta(hours=6), timedelta(hours=4))
    fresh = _callback(engine, "fresh", now - timedelta(minutes=5), timedelta(hours=4))
    page = logged_in_client("call_taker").get("/console/callbacks").get_data(as_text=True)
    assert "2 open" in page and "1 overdue" in page
    late_row = page[page.index(f'data-callback-id="{late.id}"') :].split("</tr>")[0]
    fresh_row = page[page.index(f'data-callback-id="{fresh.id}"') :].split("</tr>")[0]
    assert 'class="overdue' in late_row and "overdue" not in fresh_row
    assert "6 h 00 min" in late_row and "5 min" in fresh_row
    assert "+15205550123" not in page and "shelter" not in page  # no number or note in the list


def test_a_clinician_marks_a_callback_done_by_hand_with_a_note(
    logged_in_client, engine: sa.Engine
) -> None:
    now = datetime.now(UTC)
    callback = _callback(engine, "reached", now - timedelta(minutes=30), timedelta(hours=4))
    clinician = logged_in_client("clinician", helper_type="navigator")
    refused = clinician.post(f"/console/callbacks/{callback.id}/done", data={"note": "  "})
    assert refused.status_code == 303
    assert store.get(engine, callback.id).status is CallbackStatus.PENDING  # type: ignore[union-attr]
    done = clinician.post(
        f"/console/callbacks/{callback.id}/done", data={"note": "reached her at the library"}
    )
    assert done.status_code == 303
    after = store.get(engine, callback.id)
    assert after is not None and after.status is CallbackStatus.DONE
    page = clinician.get("/console/callbacks").get_data(as_text=True)
    assert f'data-callback-id="{callback.id}"' not in page


def test_the_callbacks_page_needs_a_login_and_a_csrf_token(
    logged_in_client, engine: sa.Engine
) -> None:
    anonymous = logged_in_client()
    assert anonymous.get("/console/callbacks").status_code == 302
    callback = _callback(engine, "csrf", datetime.now(UTC), timedelta(hours=4))
    staff = logged_in_client("supervisor")
    forged = staff.client.post(f"/console/callbacks/{callback.id}/done", data={"note": "x"})
    assert forged.status_code == 400
    assert store.get(engine, callback.id).status is CallbackStatus.PENDING  # type: ignore[union-attr]


def _row_of(page: str, callback_id: int) -> str:
    return page[page.index(f'data-callback-id="{callback_id}"') :].split("</tr>")[0]


def test_each_callback_says_why_where_from_and_shows_only_the_numbers_last_four_digits(
    logged_in_client, engine: sa.Engine
) -> None:
    now = datetime.now(UTC)
    resident = _callback(engine, "why", now - timedelta(minutes=20), timedelta(hours=4))
    dropped = store.create_callback(
        engine, key="dropped", source=CallbackSource.DROPPED_HANDOFF, phone_number="+15205550188",
        language="en", helper_type="embedded_clinician", due_at=now, deadline_at=now + timedelta(hours=1),
        consent=False, note="caller dropped during handoff 12", now=now,
    )  # fmt: skip
    page = logged_in_client("call_taker").get("/console/callbacks").get_data(as_text=True)
    row = _row_of(page, resident.id)
    assert "for community navigator" in row and "resident asked on the self-service line" in row
    assert "ends in 0123" in row and "not tried yet" in row
    assert "UTC" not in row and re.search(r"\(since (today|yesterday) \d\d:\d\d\)", row)
    other = _row_of(page, dropped.id)
    assert "caller dropped during handoff 12" in other and "dropped transfer" in other
    assert "+15205550188" not in page and "5550188" not in page


def test_a_staff_member_takes_a_callback_on_and_everyone_sees_who_has_it(
    logged_in_client, engine: sa.Engine
) -> None:
    callback = _callback(engine, "claim", datetime.now(UTC), timedelta(hours=4))
    navigator = logged_in_client("clinician", name="Alex Brooks", helper_type="navigator")
    taken = navigator.post(f"/console/callbacks/{callback.id}/claim", data={})
    assert taken.status_code == 303
    mine = _row_of(navigator.get("/console/callbacks").get_data(as_text=True), callback.id)
    assert "Alex Brooks" in mine and "Give back" in mine
    other = logged_in_client("call_taker").get("/console/callbacks").get_data(as_text=True)
    assert "Alex Brooks" in _row_of(other, callback.id)
    navigator.post(f"/console/callbacks/{callback.id}/claim", data={"release": "1"})
    again = logged_in_client("supervisor").get("/api/console/callbacks").json["callbacks"]
    assert [c["claimed_by"] for c in again] == [None]
    events = store.events_of(engine, callback.id)
    assert [e for e, _ in events if e in ("claimed", "unclaimed")] == ["claimed", "unclaimed"]


def test_call_now_queues_the_attempt_for_the_worker_at_once(
    logged_in_client, engine: sa.Engine, app
) -> None:
    later = datetime.now(UTC) + timedelta(hours=3)
    callback = _callback(engine, "now", later, timedelta(hours=6))  # due in three hours
    staff = logged_in_client("call_taker")
    answer = staff.post(f"/console/callbacks/{callback.id}/call-now", data={})
    assert answer.status_code == 303
    (attempt,) = store.attempts_of(engine, callback.id)
    assert attempt.status is store.AttemptStatus.SCHEDULED
    assert attempt.scheduled_for <= datetime.now(UTC)
    queue = app.extensions["bridgeline"].queues.queue("urgent")
    jobs = [(j.func_name, j.args) for j in queue.get_jobs()]
    assert ("workers.callbacks.place_callback_attempt", (attempt.id,)) in jobs
    # A closed callback cannot be called from the page.
    store.mark_done_by_hand(engine, callback.id, "reached by text", "4001")
    refused = staff.post(f"/console/callbacks/{callback.id}/call-now", data={})
    assert "closed or already being dialed" in staff.get(refused.headers["Location"]).get_data(
        as_text=True
    )

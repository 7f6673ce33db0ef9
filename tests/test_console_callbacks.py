"""Every callback promised is seen in the console: age, deadline, attempts; overdue stands out."""

# ruff: noqa: F811 (fixtures imported from tests.console_fixtures are test parameters)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from ivr.store import callbacks as store
from ivr.store.callbacks import CallbackSource, CallbackStatus
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
    assert "6 h 0 min" in late_row and "0 h 5 min" in fresh_row
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

"""The console in a real headless Chromium: sign in, see a live call, start a handoff, watch it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import make_server

from ivr import create_app
from ivr.decisions.handoffs import EventSource, HandoffEvent, Origin
from ivr.flows import handoffs
from tests.console_fixtures import (
    CLINICIAN_STAFF_ID,
    PASSWORD,
    MakeStaff,
    make_staff,
    write_console_config,
)

FIXTURES = (make_staff,)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

CHROMIUM = Path("/usr/lib/chromium/chromium")
"""Debian's Chromium (apt-get install chromium); .ci/run installs it."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}"
    ),
]

CALL_SID = "CA" + "b" * 32
CALLER_NUMBER = "+15205550144"


@pytest.fixture
def app(
    env: dict[str, str], _table_names: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app with a roster whose clinicians are always on duty and linked to accounts."""
    folder = write_console_config(tmp_path_factory.mktemp("browser-config"))
    application = create_app({**env, "BRIDGELINE_CONFIG": str(folder)})
    engine = application.extensions["bridgeline"].engine
    with engine.begin() as conn:
        for name in _table_names:
            conn.exec_driver_sql(f"DELETE FROM {name}")
    yield application
    engine.dispose()


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    """The app served by a real HTTP server on a free loopback port, in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def sign_in(page: Any, base_url: str, staff_id: str, path: str = "/console") -> None:
    """Sign in from the login page `path` redirects to; returns once the page signing in leads
    to has loaded, stylesheet included. (A click returns when the next page starts loading: a
    page measured then is laid out without console.css, e.g. the callbacks table 704 px wide
    at 390 px.)"""
    page.goto(base_url + path)
    page.fill("#staff_id", staff_id)
    page.fill("#password", PASSWORD)
    with page.expect_navigation(wait_until="load"):
        page.click("#sign-in")


def record(
    engine: sa.Engine, handoff_id: int, event: HandoffEvent, seconds: int, **kw: Any
) -> None:
    """A Twilio status callback reaching the handoff log while the page is open."""
    handoffs.record_event(
        engine,
        handoff_id,
        event,
        source=EventSource.TWILIO,
        dedupe_key=f"browser:{handoff_id}:{event.value}:{seconds}",
        occurred_at=datetime.now(UTC) + timedelta(seconds=seconds),
        **kw,
    )


def test_call_taker_signs_in_sees_the_call_starts_a_handoff_and_watches_it_progress(
    page: Any, base_url: str, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    make_staff("call_taker", staff_id="4601")
    live = handoffs.open_live_call(
        engine,
        call_sid=CALL_SID,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id=None,
        now=datetime.now(UTC),
    )
    sign_in(page, base_url, "4601")
    expect(page).to_have_url(base_url + "/console")
    row = page.locator(f'#calls tr[data-call-id="{live.id}"]')
    expect(row).to_contain_text("waiting")
    row.get_by_role("button", name="Open").click()
    expect(page.locator("#selected-callback")).to_have_text(CALLER_NUMBER)

    page.check('input[name="weapon"][value="yes"]')
    expect(page.locator("#not-eligible")).to_contain_text("a weapon is involved")
    for question, value in [
        ("weapon", "no"), ("immediate_danger", "no"), ("violence", "no"),
        ("consent", "yes"), ("medical", "no"), ("health_question", "no"),
    ]:  # fmt: skip
        page.check(f'input[name="{question}"][value="{value}"]')
    page.fill("#handoff-reason", "panic attack")
    button = page.get_by_role("button", name="Conference in embedded clinician")
    expect(button).to_be_visible()
    expect(page.locator('.offer[data-helper-type="crisis_988"]')).to_contain_text(
        "Regional 988 center"
    )
    button.click()

    item = page.locator("#handoffs li.handoff").first
    expect(item.locator(".handoff-status")).to_have_text("asked for")
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    assert handoff.reason == "panic attack" and handoff.call_taker_staff_id == "4601"

    # Twilio's callbacks land in the log; the page follows without a reload.
    record(engine, handoff.id, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    record(engine, handoff.id, HandoffEvent.RINGING, 2, attempt=1)
    expect(item.locator(".handoff-status")).to_have_text("ringing")
    record(engine, handoff.id, HandoffEvent.DECLINED, 3, attempt=1)
    expect(item.locator(".handoff-status")).to_have_text("trying the next helper")
    expect(item).to_contain_text("Dana Rivera declined")
    record(engine, handoff.id, HandoffEvent.DIALING, 4, attempt=2, member_id="clin-okafor")
    record(engine, handoff.id, HandoffEvent.ACCEPTED, 5, attempt=2)
    expect(item.locator(".handoff-status")).to_have_text("accepted, joining")
    record(engine, handoff.id, HandoffEvent.HELPER_JOINED, 6, attempt=2)
    expect(item.locator(".handoff-status")).to_have_text("connected")
    expect(item).to_contain_text("Sam Okafor")

    page.fill("#note-body", "caller calmer now")
    page.click("#save-note")
    expect(page.locator("#notes li.note")).to_contain_text("Test Staff 4601: caller calmer now")

    leave = page.locator("#leave-call")
    expect(leave).to_be_enabled()
    leave.click()
    expect(page.locator("#call-error")).to_have_text("")

    page.goto(base_url + "/console/clinician")
    expect(page.locator("[role=alert]")).to_have_text("Your role may not see this page.")


def test_clinician_records_the_outcome_of_a_handoff_sent_to_them(
    page: Any, base_url: str, app: Flask, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    make_staff("clinician", staff_id=CLINICIAN_STAFF_ID, helper_type="embedded_clinician")
    live = handoffs.open_live_call(
        engine,
        call_sid=CALL_SID,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id=None,
        now=datetime.now(UTC),
    )
    page.goto(base_url + "/console/clinician")
    expect(page).to_have_url(base_url + "/login?next=/console/clinician")
    page.fill("#staff_id", CLINICIAN_STAFF_ID)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page).to_have_url(base_url + "/console/clinician")
    expect(page.locator("#handoffs-empty")).to_be_visible()

    answers = {"weapon": False, "immediate_danger": False, "violence": False, "consent": True,
               "medical": False, "health_question": False}  # fmt: skip
    handoff = handoffs.start_handoff(
        engine,
        app.extensions["bridgeline"].queues,
        call_sid=live.call_sid,
        call_taker_staff_id="4601",
        helper_type="embedded_clinician",
        answers=answers,
        reason="panic attack",
        roster=app.extensions["bridgeline"].roster,
        tree=app.extensions["bridgeline"].tree,
    ).id
    record(engine, handoff, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    record(engine, handoff, HandoffEvent.HELPER_JOINED, 2, attempt=1)

    row = page.locator(f'#my-handoffs tr[data-handoff-id="{handoff}"]')
    expect(row).to_contain_text("connected")  # appears without a reload
    row.get_by_role("link").click()
    expect(page.locator("#callback-number")).to_have_text(CALLER_NUMBER)
    page.check('input[name="outcome"][value="resolved_by_phone"]')
    page.fill("#outcome-note", "talked it through")
    page.click("#save-outcome")
    expect(page.locator("#flash")).to_have_text("Outcome saved.")
    expect(page.locator("#recorded-outcome")).to_contain_text("Resolved by phone")
    saved = handoffs.get_handoff(engine, handoff)
    assert saved is not None and saved.outcome == "resolved_by_phone"
    assert saved.outcome_by == CLINICIAN_STAFF_ID


SAFE_ANSWERS = {"weapon": False, "immediate_danger": False, "violence": False, "consent": True,
                "medical": False, "health_question": False}  # fmt: skip

SAFE = [
    ("weapon", "no"), ("immediate_danger", "no"), ("violence", "no"),
    ("consent", "yes"), ("medical", "no"), ("health_question", "no"),
]  # fmt: skip


def open_call_in(page: Any, live_id: int) -> None:
    """Open the call and answer the tree so that every helper is offered."""
    from playwright.sync_api import expect

    page.locator(f'#calls tr[data-call-id="{live_id}"]').get_by_role("button", name="Open").click()
    expect(page.locator("#selected-callback")).to_have_text(CALLER_NUMBER)
    for question, value in SAFE:
        page.check(f'input[name="{question}"][value="{value}"]')


def test_a_double_click_and_a_second_tab_dial_the_clinician_once_and_cancel_stops_it(
    page: Any, base_url: str, app: Flask, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    make_staff("call_taker", staff_id="4602")
    live = handoffs.open_live_call(
        engine,
        call_sid=CALL_SID,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id="4602",
        now=datetime.now(UTC),
    )
    sign_in(page, base_url, "4602")
    open_call_in(page, live.id)
    button = page.get_by_role("button", name="Conference in embedded clinician")
    button.dblclick()
    item = page.locator("#handoffs li.handoff")
    expect(item).to_have_count(1)

    # The same call open in a second tab: the same press there adds nothing.
    other = page.context.new_page()
    other.goto(base_url + "/console")
    open_call_in(other, live.id)
    other.get_by_role("button", name="Conference in embedded clinician").click()
    expect(other.locator("#handoffs li.handoff")).to_have_count(1)
    expect(other.locator("#call-error")).to_have_text("")
    # A different helper from that tab is refused in plain words.
    other.get_by_role("button", name="Conference in nine eight eight crisis counselor").click()
    expect(other.locator("#call-error")).to_contain_text("is still being called on this call")

    queues = app.extensions["bridgeline"].queues
    jobs = queues.queue(handoffs.DIAL_QUEUE).get_jobs()
    dials = [j for j in jobs if j.func_name.endswith("dial_helper")]
    assert len(handoffs.handoffs_for_call(engine, live.id)) == 1 and len(dials) == 1

    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    record(engine, handoff.id, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    record(engine, handoff.id, HandoffEvent.RINGING, 2, attempt=1)
    expect(item.first.locator(".handoff-status")).to_have_text("ringing")
    pinned = page.locator("#active-handoff")
    expect(pinned).to_contain_text("Dana Rivera")
    pinned.get_by_role("button", name="Cancel this call to Dana Rivera").click()
    expect(item.first.locator(".handoff-status")).to_have_text("cancelled")
    expect(item.first).to_contain_text("Cancelled by Test Staff 4602")
    expect(page.locator("button.cancel-handoff")).to_have_count(0)
    assert "workers.handoffs.cancel_helper" in [
        j.func_name for j in queues.queue(handoffs.DIAL_QUEUE).get_jobs()
    ]


def test_clinician_fixes_a_failed_save_without_retyping_and_a_second_save_is_an_edit(
    page: Any, base_url: str, app: Flask, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    from ivr.store import audit

    make_staff("call_taker", staff_id="4603", name="Casey Morgan")
    make_staff("clinician", staff_id=CLINICIAN_STAFF_ID, helper_type="embedded_clinician")
    live = handoffs.open_live_call(
        engine, call_sid=CALL_SID, origin=Origin.INTAKE, callback_number=CALLER_NUMBER,
        call_taker_staff_id="4603", now=datetime.now(UTC),
    )  # fmt: skip
    answers = dict.fromkeys(("weapon", "immediate_danger", "violence", "medical"), False)
    handoff = handoffs.start_handoff(
        engine, app.extensions["bridgeline"].queues, call_sid=live.call_sid,
        call_taker_staff_id="4603", helper_type="embedded_clinician",
        answers={**answers, "consent": True, "health_question": False}, reason="panic attack",
        roster=app.extensions["bridgeline"].roster, tree=app.extensions["bridgeline"].tree,
    ).id  # fmt: skip
    record(engine, handoff, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    record(engine, handoff, HandoffEvent.HELPER_JOINED, 2, attempt=1)

    sign_in(page, base_url, CLINICIAN_STAFF_ID, f"/console/clinician/handoffs/{handoff}")
    expect(page.locator("#call-taker")).to_have_text("Casey Morgan")
    expect(page.locator("#answers li").first).to_contain_text("Is a weapon involved?")
    page.check('input[name="outcome"][value="callback_scheduled"]')
    page.fill("#outcome-note", "wants a call tomorrow evening")
    page.click("#save-outcome")  # no follow-up date: refused, nothing lost
    expect(page.locator("#form-error")).to_have_text("A scheduled callback needs a follow-up date.")
    expect(page.locator('input[name="outcome"][value="callback_scheduled"]')).to_be_checked()
    expect(page.locator("#outcome-note")).to_have_value("wants a call tomorrow evening")
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    page.fill("#follow-up", tomorrow)
    page.click("#save-outcome")
    expect(page.locator("#flash")).to_have_text("Outcome saved.")
    expect(page.locator("#recorded-outcome")).to_contain_text("Callback scheduled")
    expect(page.locator("#saved-note")).to_have_text("wants a call tomorrow evening")

    # Saving again is a change, said as such, and kept in the audit trail.
    expect(page.locator("#save-outcome")).to_have_text("Save the change")
    page.check('input[name="outcome"][value="referred"]')
    page.click("#save-outcome")
    expect(page.locator("#flash")).to_have_text("Outcome changed.")
    expect(page.locator("#recorded-outcome")).to_contain_text("Referred")
    assert [e.action for e in audit.entries(engine) if e.action.startswith("handoff.")] == [
        "handoff.outcome_edited"
    ]


def test_the_console_keeps_keyboard_focus_while_it_updates(
    page: Any, base_url: str, app: Flask, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    make_staff("call_taker", staff_id="4604")
    live = handoffs.open_live_call(
        engine, call_sid=CALL_SID, origin=Origin.INTAKE, callback_number=CALLER_NUMBER,
        call_taker_staff_id="4604", now=datetime.now(UTC),
    )  # fmt: skip
    sign_in(page, base_url, "4604")
    status = page.locator(f'#calls tr[data-call-id="{live.id}"] .status')
    expect(status).to_have_text("waiting for a call-taker")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    opener = page.get_by_role("button", name=f"Open call #{live.id}")
    opener.focus()
    # The call changes while the call-taker's focus is on its Open button (another tab started
    # a handoff): the row is updated in place, so the focus stays where it was.
    handoffs.start_handoff(
        engine, app.extensions["bridgeline"].queues, call_sid=live.call_sid,
        call_taker_staff_id="4604", helper_type="crisis_988", answers=dict(SAFE_ANSWERS),
        reason=None, roster=app.extensions["bridgeline"].roster,
        tree=app.extensions["bridgeline"].tree,
    )  # fmt: skip
    expect(status).to_have_text("calling a helper")
    expect(opener).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#active")).to_be_visible()
    expect(page.locator("#active-title")).to_be_focused()
    expect(page.locator("#active-handoff")).to_contain_text("nine eight eight crisis counselor")
    assert page.locator("#announce").text_content() == ""  # no change since it opened: silent

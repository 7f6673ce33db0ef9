"""Every staff page, as each role opens it, at 390 px (a phone) and 1366x768 (a laptop): no
sideways scrolling, and axe-core (axe-playwright-python's bundled axe.min.js) finds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.decisions.handoffs import EventSource, HandoffEvent, Origin
from ivr.flows import handoffs
from ivr.store import callbacks as callback_store
from tests.browser.test_console_browser import (
    CALL_SID,
    CALLER_NUMBER,
    CHROMIUM,
    app,
    base_url,
    browser,
    sign_in,
)
from tests.browser.test_live_browser import axe_violations
from tests.console_fixtures import CLINICIAN_STAFF_ID, MakeStaff, make_staff

FIXTURES = (app, base_url, browser, make_staff)
"""Fixtures this module shares with the other browser tests (pytest finds them here)."""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
]

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1366, "height": 768}}
SAFE = {"weapon": False, "immediate_danger": False, "violence": False, "consent": True,
        "medical": False, "health_question": False}  # fmt: skip


@pytest.fixture(params=list(VIEWPORTS))
def tab(request: pytest.FixtureRequest, browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def busy_program(app: Flask, engine: sa.Engine) -> int:
    """A call with a handoff a clinician joined, a note, and an open callback: every page has
    something to show. Returns the handoff id."""
    live = handoffs.open_live_call(
        engine, call_sid=CALL_SID, origin=Origin.INTAKE, callback_number=CALLER_NUMBER,
        call_taker_staff_id="4701", now=datetime.now(UTC),
    )  # fmt: skip
    handoff = handoffs.start_handoff(
        engine, app.extensions["bridgeline"].queues, call_sid=live.call_sid,
        call_taker_staff_id="4701", helper_type="embedded_clinician", answers=SAFE,
        reason="panic attack", roster=app.extensions["bridgeline"].roster,
        tree=app.extensions["bridgeline"].tree,
    )  # fmt: skip
    for n, (event, fields) in enumerate(
        [
            (HandoffEvent.DIALING, {"attempt": 1, "member_id": "clin-rivera"}),
            (HandoffEvent.RINGING, {"attempt": 1}),
            (HandoffEvent.HELPER_JOINED, {"attempt": 1}),
        ]
    ):
        handoffs.record_event(
            engine, handoff.id, event, source=EventSource.TWILIO,
            dedupe_key=f"a11y:{n}", occurred_at=datetime.now(UTC) + timedelta(seconds=n),
            **fields,  # type: ignore[arg-type]
        )  # fmt: skip
    now = datetime.now(UTC)
    callback_store.create_callback(
        engine, key="a11y:callback", source=callback_store.CallbackSource.RESIDENT_MENU,
        phone_number="+15205550123", language="en", helper_type="navigator",
        due_at=now - timedelta(hours=2), deadline_at=now - timedelta(hours=1), consent=True,
        note=None,
    )  # fmt: skip
    return handoff.id


def check(page: Any, what: str) -> list[str]:
    """Problems of the page as it stands once loaded (its stylesheets applied): sideways
    scrolling, axe-core violations."""
    page.wait_for_load_state("load")
    problems = []
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    if width > viewport:
        problems.append(f"{what}: {width} px wide in a {viewport} px window")
    problems += [f"{what}: {v}" for v in axe_violations(page)]
    return problems


def test_call_taker_pages(
    tab: Any, base_url: str, busy_program: int, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    make_staff("call_taker", staff_id="4701", name="Casey Morgan")
    tab.goto(base_url + "/login")
    problems = check(tab, "login")
    sign_in(tab, base_url, "4701")
    expect(tab.locator("#calls tbody tr")).to_have_count(1)
    problems += check(tab, "console, no call open")
    tab.get_by_role("button", name="Open call").first.click()
    expect(tab.locator("#call-state")).to_contain_text("helper connected: Dana Rivera")
    expect(tab.locator("#handoffs li.handoff")).to_have_count(1)
    problems += check(tab, "console, call open")
    for path in ("/console/callbacks", "/account"):
        tab.goto(base_url + path)
        problems += check(tab, path)
    assert problems == []


def test_clinician_pages(tab: Any, base_url: str, busy_program: int, make_staff: MakeStaff) -> None:
    from playwright.sync_api import expect

    make_staff("clinician", staff_id=CLINICIAN_STAFF_ID, helper_type="embedded_clinician")
    sign_in(tab, base_url, CLINICIAN_STAFF_ID, "/console/clinician")
    expect(tab.locator("#my-handoffs tbody tr")).to_have_count(1)
    problems = check(tab, "clinician list")
    tab.goto(base_url + f"/console/clinician/handoffs/{busy_program}")
    problems += check(tab, "handoff page")
    tab.click("#save-outcome")  # nothing chosen: the browser's own required-field check
    tab.goto(base_url + "/console/callbacks")
    problems += check(tab, "callbacks")
    assert problems == []


def test_supervisor_pages(
    tab: Any, base_url: str, busy_program: int, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    from ivr import partners
    from ivr.partners.subscriptions import create_subscription

    cad = partners.create_partner(engine, name="Pima County CAD", scopes=["eido"])
    create_subscription(engine, cad.partner.key_prefix, "https://cad.pima.example/bridgeline/eido")
    make_staff("supervisor", staff_id="4702")
    sign_in(tab, base_url, "4702", "/console/callbacks")
    problems = check(tab, "callbacks")
    # /dashboard and /dashboard/qa: their own browser tests (tests/browser/test_dashboard_browser.py)
    for path in ("/live", "/account", "/partners"):
        tab.goto(base_url + path)
        problems += check(tab, path)
    assert problems == []

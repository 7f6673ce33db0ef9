"""The live wall in a real headless Chromium: it follows a handoff without a reload, reads at
390 px, works by keyboard and passes axe-core."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.decisions.handoffs import HandoffEvent, Origin
from ivr.flows import handoffs
from tests.browser.test_console_browser import (
    CALL_SID,
    CALLER_NUMBER,
    CHROMIUM,
    app,
    base_url,
    browser,
    record,
)
from tests.console_fixtures import PASSWORD, MakeStaff, make_staff

FIXTURES = (make_staff, app, base_url, browser)
"""Fixtures this module uses from the console browser tests and console fixtures."""

ANSWERS = {"weapon": False, "immediate_danger": False, "violence": False, "consent": True,
           "medical": False, "health_question": False}  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}"
    ),
]


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations on the page as 'rule: first target' lines (empty when clean)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
    ]


def page_width(page: Any) -> int:
    """How wide the document is drawn once loaded, stylesheets applied (wider than the viewport
    means sideways scrolling). Measured before console.css or live.css arrives, a table is laid
    out unstyled and looks too wide although no browser ever paints it that way."""
    page.wait_for_load_state("load")
    return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A 390 px wide tab (an iPhone 12-14 screen)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def laptop(browser: Any) -> Iterator[Any]:
    """A 1366x768 tab."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def _sign_in(page: Any, base: str, staff_id: str, path: str) -> None:
    page.goto(base + path)
    page.fill("#staff_id", staff_id)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")


def test_supervisor_sees_a_handoff_progress_on_the_wall_without_reloading(
    laptop: Any, base_url: str, app: Flask, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    page = laptop
    supervisor = make_staff("supervisor")
    live = handoffs.open_live_call(
        engine,
        call_sid=CALL_SID,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id=None,
        now=datetime.now(UTC),
    )
    _sign_in(page, base_url, supervisor.staff_id, "/live")
    expect(page).to_have_url(base_url + "/live")
    expect(page.locator("h1")).to_contain_text("Live now")
    expect(page.locator("#live-waiting")).to_contain_text("intake line conference")
    expect(page.locator("#live-handoffs")).to_contain_text("No handoff is ringing")
    page.evaluate("window.__notReloaded = true")

    handoff = handoffs.start_handoff(
        engine,
        app.extensions["bridgeline"].queues,
        call_sid=live.call_sid,
        call_taker_staff_id="4601",
        helper_type="embedded_clinician",
        answers=ANSWERS,
        reason="panic attack",
        roster=app.extensions["bridgeline"].roster,
        tree=app.extensions["bridgeline"].tree,
    )
    record(engine, handoff.id, HandoffEvent.DIALING, 1, attempt=1, member_id="clin-rivera")
    record(engine, handoff.id, HandoffEvent.RINGING, 2, attempt=1)
    row = page.locator(f'#live-handoffs tr[data-handoff-id="{handoff.id}"]')
    expect(row.locator(".status")).to_have_text("ringing")
    expect(row.locator(".member")).to_have_text("Dana Rivera")

    record(engine, handoff.id, HandoffEvent.DECLINED, 3, attempt=1)
    record(engine, handoff.id, HandoffEvent.DIALING, 4, attempt=2, member_id="clin-okafor")
    expect(row.locator(".member")).to_have_text("Sam Okafor")
    record(engine, handoff.id, HandoffEvent.ACCEPTED, 5, attempt=2)
    record(engine, handoff.id, HandoffEvent.HELPER_JOINED, 6, attempt=2)
    expect(row.locator(".status")).to_have_text("connected (try 2)")
    expect(row.locator(".member")).to_have_text("Sam Okafor (on the call)")
    assert page.evaluate("window.__notReloaded") is True  # the same page, never reloaded

    # elapsed times tick on the page between changes
    elapsed = row.locator("td:nth-child(4) span")
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first, timeout=4_000)

    # open the call read-only by keyboard: it follows the handoff too
    link = row.get_by_role("link", name=f"Open call #{live.id}")
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(base_url + f"/live/calls/{live.id}")
    expect(page.locator(".handoff-status").first).to_have_text("connected")
    expect(page.locator("#live-call")).to_contain_text("declined — Dana Rivera")
    assert page.locator("main form").count() == 0  # read-only: nothing to press
    assert axe_violations(page) == []


def test_the_wall_reads_at_390_px_and_passes_axe(
    phone: Any, base_url: str, app: Flask, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    supervisor = make_staff("supervisor")
    live = handoffs.open_live_call(
        engine,
        call_sid=CALL_SID,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id=None,
        now=datetime.now(UTC),
    )
    _sign_in(phone, base_url, supervisor.staff_id, "/live")
    expect(phone.locator("#live-waiting")).to_contain_text(f"Open call #{live.id}")
    assert page_width(phone) <= 390
    for heading in (
        "Calls waiting for a person",
        "Handoffs in progress",
        "Helpers on duty",
        "Callbacks",
        "Answered today within the NENA targets",
    ):
        expect(phone.get_by_role("heading", name=heading)).to_be_visible()
    assert axe_violations(phone) == []
    # every link on the wall is reachable by Tab
    phone.keyboard.press("Tab")
    reached = set()
    for _ in range(40):
        reached.add(phone.evaluate("document.activeElement.textContent.trim()"))
        phone.keyboard.press("Tab")
    assert f"Open call #{live.id}" in reached and "See every open callback" in reached


def test_keyboard_focus_stays_on_the_link_when_its_section_changes(
    laptop: Any, base_url: str, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from playwright.sync_api import expect

    page = laptop
    first = handoffs.open_live_call(
        engine,
        call_sid=CALL_SID,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id=None,
        now=datetime.now(UTC),
    )
    _sign_in(page, base_url, make_staff("supervisor").staff_id, "/live")
    link = page.locator(f'#live-waiting a[data-focus-key="call-{first.id}"]')
    link.focus()
    second = handoffs.open_live_call(
        engine,
        call_sid="CA" + "c" * 32,
        origin=Origin.INTAKE,
        callback_number=CALLER_NUMBER,
        call_taker_staff_id=None,
        now=datetime.now(UTC),
    )
    # the waiting list is redrawn with the second caller; focus is still on the first's link
    expect(page.locator(f'#live-waiting a[data-focus-key="call-{second.id}"]')).to_be_visible()
    assert page.evaluate("document.activeElement.dataset.focusKey") == f"call-{first.id}"
    expect(page.locator("#live-announce")).to_contain_text("2 waiting")

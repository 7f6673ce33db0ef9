"""The 311 story end to end, with the staff part in a real headless Chromium at 390 px:
a resident reports by phone and asks for a text, an agent resolves the report by keyboard,
Open311 shows it closed, a second call hears the new status, and the resident gets one text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa
from lxml import etree

import workers.sms
from ivr.simulator import Call
from ivr.store.tables import service_requests as requests_table
from tests.browser.test_console_browser import CHROMIUM, app, base_url, browser
from tests.browser.test_live_browser import axe_violations, page_width
from tests.console_fixtures import PASSWORD, MakeStaff, make_staff

FIXTURES = (make_staff, app, base_url, browser)
"""Fixtures this module uses from the console browser tests and console fixtures."""

MESSAGES_URL = (
    "https://api.twilio.com/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json"
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}"
    ),
]


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A 390 px wide tab (an iPhone 12-14 screen)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def test_a_phone_report_is_resolved_in_the_browser_and_the_resident_hears_and_reads_it(
    phone: Any,
    base_url: str,
    call: Callable[..., Call],
    engine: sa.Engine,
    make_staff: MakeStaff,
    run_jobs: Callable[[], int],
    twilio_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from playwright.sync_api import expect

    twilio_api.add_passthru(base_url)
    c = call()
    c.press("1")
    c.press("1")
    c.press("2")  # pothole
    c.record(seconds=15)
    c.speak("Oracle Road and Grant Road")
    c.press("1")
    c.press("2")  # text me when the status changes
    with engine.connect() as conn:
        reference = conn.execute(sa.select(requests_table.c.reference)).scalar_one()

    agent = make_staff("agent_311", name="Lee Park")
    page = phone
    page.goto(base_url + "/reports")
    page.fill("#staff_id", agent.staff_id)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page).to_have_url(base_url + "/reports")
    row = page.locator(f'#reports tr[data-reference="{reference}"]')
    expect(row).to_contain_text("Oracle Road and Grant Road")
    expect(row).to_contain_text("Received")
    assert page_width(page) <= 390
    assert axe_violations(page) == []

    link = row.get_by_role("link", name=reference)
    link.focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text(f"Report {reference}: Pothole or road damage")
    expect(page.locator("#recording")).to_have_attribute("src", f"/reports/{reference}/recording")
    assert page_width(page) <= 390
    assert axe_violations(page) == []

    page.get_by_label("Resolved").check()
    page.get_by_label("Assign to").select_option(label="Streets Maintenance")
    page.get_by_label("Public note", exact=False).fill("Patched on Tuesday.")
    page.get_by_label("Internal note", exact=False).fill("Crew 4, 2 bags of cold patch")
    page.locator("#save").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".notice")).to_have_text("Saved: the report is now resolved.")
    expect(page.locator("#status")).to_have_text("Resolved")
    expect(page.locator("#history")).to_contain_text("Internal note: Crew 4, 2 bags of cold patch")

    as_xml = requests.get(f"{base_url}/open311/v2/requests/{reference}.xml", timeout=5)
    request = etree.fromstring(as_xml.content).find("request")
    assert request.findtext("status") == "closed"
    assert request.findtext("status_notes") == "Patched on Tuesday."
    assert request.findtext("agency_responsible") == "Streets Maintenance"
    as_json = requests.get(f"{base_url}/open311/v2/requests/{reference}.json", timeout=5).json()
    assert as_json[0]["status"] == "closed"
    assert as_json[0]["updated_datetime"] >= as_json[0]["requested_datetime"]

    again = call()
    again.press("1")
    again.press("2")
    again.press(reference)
    heard = again.heard_since_last()
    assert "has been resolved" in heard and "The city's note: Patched on Tuesday." in heard
    assert "Crew 4" not in heard

    noon = datetime.now(ZoneInfo("America/Phoenix")).replace(hour=12, minute=0)
    monkeypatch.setattr(workers.sms, "_now", lambda: noon)
    sent = twilio_api.post(MESSAGES_URL, json={"sid": "SM" + "4" * 32}, status=201)
    run_jobs()
    run_jobs()
    assert sent.call_count == 1
    body = parse_qs(sent.calls[0].request.body)["Body"][0]
    assert body.startswith(f"City 311: your report {reference} (a pothole or road damage)")
    assert "has been resolved. Note: Patched on Tuesday." in body and "Crew" not in body

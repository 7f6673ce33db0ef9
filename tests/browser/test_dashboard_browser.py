"""The supervisor dashboard in a real headless Chromium: filters, charts, CSV, a QA review."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.store.qa_tables import qa_findings, qa_items
from tests.browser.test_console_browser import CHROMIUM, base_url, browser
from tests.console_fixtures import PASSWORD, MakeStaff, make_staff
from tests.dashboard_fixtures import (
    _forget_handoffs,
    add_event,
    add_handoff,
    add_live_call,
    utc,
)

FIXTURES = (make_staff, _forget_handoffs, base_url, browser)
"""Fixtures this module uses from the console and dashboard fixture modules."""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}"
    ),
]


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab that records every console error (a CSP violation shows up there)."""
    context = browser.new_context(accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    tab.console_errors = []
    tab.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
    yield tab
    context.close()


def _seed(engine: sa.Engine) -> None:
    # Phoenix (UTC-7): 2026-11-08 09:05 UTC is Sunday 02:05 local; 11-11 21:00 is Wed 14:00.
    sunday = utc(2026, 11, 8, 9, 5)
    wednesday = utc(2026, 11, 11, 21, 0)
    c1 = add_live_call(engine, "CA-b1", sunday)
    add_handoff(
        engine,
        c1,
        "embedded_clinician",
        sunday,
        answer_s=9,
        duration_s=420,
        outcome="resolved_by_phone",
        outcome_note="stayed with a neighbour",
    )
    c2 = add_live_call(engine, "CA-b2", wednesday)
    add_handoff(
        engine, c2, "telehealth_nurse", wednesday, answer_s=16, duration_s=300, outcome="referred"
    )
    c3 = add_live_call(engine, "CA-b3", wednesday)
    add_handoff(
        engine,
        c3,
        "telehealth_nurse",
        wednesday + timedelta(minutes=5),
        status="returned",
        reason_code="chain_exhausted",
        attempt=2,
    )
    add_event(engine, "CA-self", "language", "en", wednesday)


def _sign_in(page: Any, base: str, staff_id: str) -> None:
    page.goto(base + "/dashboard")
    page.fill("#staff_id", staff_id)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")


def _cell(page: Any, table: str, row_label: str, column: int = 2) -> str:
    row = page.locator(f'table[data-table="{table}"] tbody tr', has_text=row_label).first
    return str(row.locator(f"td:nth-child({column})").inner_text())


def test_supervisor_filters_reads_charts_downloads_csv_and_records_a_finding(
    page: Any, base_url: str, engine: sa.Engine, make_staff: MakeStaff, tmp_path: Path
) -> None:
    _seed(engine)
    supervisor = make_staff("supervisor")
    _sign_in(page, base_url, supervisor.staff_id)
    page.wait_for_url("**/dashboard**")
    page.fill("#f-start", "2026-11-01")
    page.fill("#f-end", "2026-11-30")
    page.click("#apply-filters")
    page.wait_for_url("**start=2026-11-01**")
    assert _cell(page, "summary", "handoffs requested") == "3"
    assert _cell(page, "summary", "calls diverted from dispatch") == "2"
    assert _cell(page, "summary", "estimated savings") == "500.0"
    # the hour chart: 24 bars, one handoff at 02 and two at 14 (local time)
    bars = page.locator("#chart-handoffs-by-hour g.bar")
    assert bars.count() == 24
    assert (
        page.locator('#chart-handoffs-by-hour g.bar[data-label="02"]').get_attribute("data-value")
        == "1"
    )
    assert (
        page.locator('#chart-handoffs-by-hour g.bar[data-label="14"]').get_attribute("data-value")
        == "2"
    )
    box = page.locator('#chart-handoffs-by-hour g.bar[data-label="14"] rect').bounding_box()
    assert box is not None and box["height"] > 0  # drawn, not just present in the markup

    # narrow to the nurse, then to Sunday: the figures follow
    page.select_option("#f-helper-type", "telehealth_nurse")
    page.click("#apply-filters")
    page.wait_for_url("**helper_type=telehealth_nurse**")
    assert _cell(page, "summary", "handoffs requested") == "2"
    assert _cell(page, "no_helper", "chain_exhausted") == "1"
    page.select_option("#f-helper-type", "")
    page.check("#f-day-6")
    page.click("#apply-filters")
    page.wait_for_url("**weekday=6**")
    assert _cell(page, "summary", "handoffs requested") == "1"

    # CSV of the handoff log, as the browser downloads it: no free-text notes
    with page.expect_download() as download_info:
        page.click("#csv-handoff-log")
    saved = tmp_path / "log.csv"
    download_info.value.save_as(saved)
    text = saved.read_text(encoding="utf-8")
    assert text.startswith("handoff_id,created_at_utc,local_time,helper_type")
    assert "embedded_clinician" in text and "neighbour" not in text
    assert download_info.value.suggested_filename.startswith("handoff_log_2026-11-01")

    # the QA queue: review the clinician handoff through the form
    page.click("#qa-link")
    page.wait_for_url("**/dashboard/qa**")
    row = page.locator('#qa-items tr[data-reason="mental_health_handoff"]').first
    row.locator("a.review").click()
    page.wait_for_selector("#review-form")
    page.check("#compliant-no")
    page.select_option("#not-offered-reason", "no_team_on_duty")
    page.fill("#coaching-note", "Offer 988 when the clinician is off shift.")
    page.click("#save-finding")
    page.wait_for_url("**/dashboard/qa**")
    page.click("#show-reviewed")
    page.wait_for_url("**show=reviewed**")
    assert "not compliant" in page.locator("#qa-items").inner_text()
    assert _cell(page, "qa_findings", "mental_health_handoff", 6) == "0.0"
    with engine.connect() as conn:
        finding = conn.execute(
            sa.select(
                qa_findings.c.compliant, qa_findings.c.not_offered_reason, qa_items.c.reason
            ).join(qa_items, qa_items.c.id == qa_findings.c.item_id)
        ).one()
    assert tuple(finding) == (False, "no_team_on_duty", "mental_health_handoff")
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def test_a_clinician_in_the_browser_is_refused_the_dashboard(
    page: Any, base_url: str, make_staff: MakeStaff
) -> None:
    clinician = make_staff("clinician", helper_type="embedded_clinician")
    _sign_in(page, base_url, clinician.staff_id)
    response = page.goto(base_url + "/dashboard")
    assert response.status == 403
    assert "may not see this page" in page.locator("main").inner_text()

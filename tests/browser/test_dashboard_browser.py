"""The supervisor dashboard in a real headless Chromium: filters, charts, CSV, a QA review."""

from __future__ import annotations

import re
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
    """The text of cell `column` (1 = the row's name) in the row whose name is `row_label`."""
    row = page.locator(f'table[data-table="{table}"] tbody tr', has_text=row_label).first
    return str(row.locator(f":scope > :nth-child({column})").inner_text())


CODE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b|\b[a-z]+:\d+:[a-z_]+\b")
"""A stored code (no_one_on_duty, crisis_988, main:1:report) where a word belongs."""


def _overlapping_labels(page: Any, chart_id: str) -> list[str]:
    """Pairs of text labels of one chart whose drawn boxes overlap."""
    return list(
        page.evaluate(
            """(id) => {
              const boxes = [...document.querySelectorAll('#' + id + ' text')]
                .map(t => [t.textContent, t.getBoundingClientRect()])
                .filter(([, r]) => r.width > 0);
              const out = [];
              for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
                const [a, r] = boxes[i], [b, q] = boxes[j];
                if (r.left < q.right - 0.5 && q.left < r.right - 0.5 &&
                    r.top < q.bottom - 0.5 && q.top < r.bottom - 0.5) out.push(a + ' / ' + b);
              }
              return out;
            }""",
            chart_id,
        )
    )


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
    assert _cell(page, "summary", "Handoffs requested") == "3"
    assert _cell(page, "summary", "Calls diverted from dispatch") == "2"
    assert _cell(page, "summary", "Estimated savings") == "$500"
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
    assert _cell(page, "summary", "Handoffs requested") == "2"
    assert _cell(page, "no_helper", "Everyone on the roster tried") == "1"
    # the figure opens the handoffs behind it, filtered the same way
    page.locator('table[data-table="no_helper"] tbody tr').first.get_by_role("link").first.click()
    page.wait_for_url("**/dashboard/records/handoffs**")
    assert page.locator("#records-total").inner_text() == "1 record."
    assert "Telehealth nurse" in page.locator("#records").inner_text()
    page.click("#back-to-dashboard")
    page.wait_for_url("**helper_type=telehealth_nurse**")
    page.select_option("#f-helper-type", "")
    page.check("#f-day-6")
    page.click("#apply-filters")
    page.wait_for_url("**weekday=6**")
    assert _cell(page, "summary", "Handoffs requested") == "1"

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
    page.click("nav.staff-nav >> text=QA")
    page.wait_for_url("**/dashboard/qa**")
    page.goto(base_url + "/dashboard/qa?start=2026-11-01&end=2026-11-30")
    row = page.locator('#qa-items tr[data-reason="mental_health_handoff"]').first
    row.locator("a.review").click()
    page.wait_for_selector("#review-form")
    page.check("#compliant-no")
    page.select_option("#not-offered-reason", "no_team_on_duty")
    page.fill("#coaching-note", "Offer 988 when the clinician is off shift.")
    page.click("#save-finding")
    page.wait_for_url("**/dashboard/qa**")
    assert "is not compliant" in page.locator("#flash").inner_text()
    page.click("#show-reviewed")
    page.wait_for_url("**show=reviewed**")
    assert "not compliant" in page.locator("#qa-items").inner_text()
    assert _cell(page, "qa_findings", "Mental-health, suicide or welfare handoff", 5) == "0.0%"
    with engine.connect() as conn:
        finding = conn.execute(
            sa.select(
                qa_findings.c.compliant, qa_findings.c.not_offered_reason, qa_items.c.reason
            ).join(qa_items, qa_items.c.id == qa_findings.c.item_id)
        ).one()
    assert tuple(finding) == (False, "no_team_on_duty", "mental_health_handoff")
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def test_every_chart_has_a_visible_title_axis_titles_and_no_overlapping_labels(
    page: Any, base_url: str, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    _seed(engine)
    _sign_in(page, base_url, make_staff("supervisor").staff_id)
    page.wait_for_url("**/dashboard**")
    page.goto(base_url + "/dashboard?start=2026-11-01&end=2026-11-30")
    figures = page.locator("figure.chart-figure")
    assert figures.count() == 6
    titles = [figures.nth(i).locator("figcaption").inner_text() for i in range(6)]
    assert titles == [
        "Handoffs by hour of day",
        "Handoffs that found no helper, by hour of day",
        "Handoffs by day of week",
        "Handoffs that reached a helper, by helper type",
        "Outcomes of handoffs",
        "Self-service calls by hour of day",
    ]
    for i in range(6):
        figure = figures.nth(i)
        assert figure.locator("figcaption").is_visible()
        axis = figure.locator("svg text.axis-title")
        assert axis.count() == 2 and all(axis.nth(j).text_content() for j in range(2))
        assert figure.locator("table.chart-data tbody tr").count() >= 1  # the table beside it
        chart_id = figure.locator("svg").get_attribute("id")
        assert _overlapping_labels(page, chart_id) == [], chart_id
        # tick labels are drawn at a size people read (at least 10 px on this screen)
        sizes = page.evaluate(
            "(id) => [...document.querySelectorAll('#' + id + ' text.tick')]"
            ".map(t => t.getBoundingClientRect().height)",
            chart_id,
        )
        assert sizes and min(sizes) >= 10, (chart_id, sizes)
    text = page.locator("main").inner_text()
    assert CODE.findall(text) == []
    assert "Resolved by phone" in text and "Everyone on the roster tried" in text


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard?start=2026-11-01&end=2026-11-30",
        "/dashboard/report?start=2026-11-01&end=2026-11-30&jurisdiction=city",
        "/dashboard/records/handoffs?start=2026-11-01&end=2026-11-30&reached=yes",
        "/dashboard/qa?start=2026-11-01&end=2026-11-30",
    ],
)
def test_supervisor_pages_fit_390_px_read_in_words_and_pass_axe(
    browser: Any, base_url: str, engine: sa.Engine, make_staff: MakeStaff, path: str
) -> None:
    from tests.browser.test_live_browser import axe_violations, page_width

    _seed(engine)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    phone = context.new_page()
    phone.set_default_timeout(10_000)
    try:
        _sign_in(phone, base_url, make_staff("supervisor").staff_id)
        phone.wait_for_url("**/dashboard**")
        phone.goto(base_url + path)
        assert page_width(phone) <= 390, path
        assert CODE.findall(phone.locator("main").inner_text()) == []
        assert axe_violations(phone) == []
    finally:
        context.close()


def test_the_qa_review_page_passes_axe_and_works_by_keyboard(
    page: Any, base_url: str, engine: sa.Engine, make_staff: MakeStaff
) -> None:
    from tests.browser.test_live_browser import axe_violations

    _seed(engine)
    _sign_in(page, base_url, make_staff("supervisor").staff_id)
    page.wait_for_url("**/dashboard**")
    page.goto(base_url + "/dashboard/qa?start=2026-11-01&end=2026-11-30")
    page.locator("#next-to-review").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#review-form")
    assert axe_violations(page) == []
    page.locator("#compliant-yes").focus()
    page.keyboard.press("Space")
    page.locator("#coaching-note").focus()
    page.keyboard.type("Good call.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard/qa**")
    assert "is compliant" in page.locator("#flash").inner_text()


def test_the_council_report_prints_with_the_programs_name_and_no_navigation(
    page: Any, base_url: str, engine: sa.Engine, make_staff: MakeStaff, tmp_path: Path
) -> None:
    _seed(engine)
    _sign_in(page, base_url, make_staff("supervisor").staff_id)
    page.wait_for_url("**/dashboard**")
    page.goto(base_url + "/dashboard/report?start=2026-11-01&end=2026-11-30")
    page.emulate_media(media="print")
    assert page.locator("#program-name").is_visible()
    assert page.locator("#program-name").inner_text() == "Tucson Alternative Response"
    assert not page.locator("header.top").is_visible()
    assert not page.locator("nav.staff-nav").is_visible()
    assert page.locator("#headlines").is_visible()
    pdf = page.pdf(path=str(tmp_path / "report.pdf"))
    assert pdf[:4] == b"%PDF"


def test_a_clinician_in_the_browser_is_refused_the_dashboard(
    page: Any, base_url: str, make_staff: MakeStaff
) -> None:
    clinician = make_staff("clinician", helper_type="embedded_clinician")
    _sign_in(page, base_url, clinician.staff_id)
    response = page.goto(base_url + "/dashboard")
    assert response.status == 403
    assert "may not see this page" in page.locator("main").inner_text()

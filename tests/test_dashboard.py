"""The supervisor pages: who may open them, the figures they show, CSV exports, QA reviews."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr.store.qa_tables import qa_findings, qa_items
from tests.console_fixtures import PASSWORD, MakeStaff, make_staff
from tests.dashboard_fixtures import (
    _forget_handoffs,
    add_callback,
    add_event,
    add_handoff,
    add_live_call,
    csrf_from,
    sign_in,
    utc,
)

FIXTURES = (make_staff, _forget_handoffs)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

NOV = {"start": "2026-11-01", "end": "2026-11-30"}


def _supervisor(client: FlaskClient, make_staff: MakeStaff) -> None:
    staff = make_staff("supervisor")
    assert sign_in(client, staff.staff_id, PASSWORD).status_code == 302


def _seed(engine: sa.Engine) -> None:
    # Phoenix (UTC-7): 2026-11-08 09:10 UTC is Sunday 02:10 local.
    sunday_2am = utc(2026, 11, 8, 9, 10)
    call = add_live_call(engine, "CA-live-1", sunday_2am)
    add_handoff(
        engine,
        call,
        "embedded_clinician",
        sunday_2am,
        answer_s=12,
        duration_s=600,
        outcome="resolved_by_phone",
        reason="caller said he wants to kill myself",
        outcome_note="Spoke with his sister; she stays tonight.",
    )
    call2 = add_live_call(engine, "CA-live-2", sunday_2am + timedelta(days=3))
    add_handoff(
        engine,
        call2,
        "telehealth_nurse",
        sunday_2am + timedelta(days=3),
        status="returned",
        reason_code="chain_exhausted",
        attempt=2,
        events=("no_answer", "declined"),
    )
    add_event(engine, "CA-self-1", "language", "en", sunday_2am)


def test_anonymous_visitors_are_sent_to_the_login_page(client: FlaskClient) -> None:
    for path in ("/dashboard", "/dashboard/qa", "/dashboard/export/summary.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_clinician_and_call_taker_logins_are_refused(app: Flask, make_staff: MakeStaff) -> None:
    for role in ("clinician", "call_taker"):
        staff = make_staff(role)
        client = app.test_client()
        assert sign_in(client, staff.staff_id, PASSWORD).status_code == 302
        for path in (
            "/dashboard",
            "/dashboard/qa",
            "/dashboard/export/summary.csv",
            "/dashboard/export/handoff-log.csv",
        ):
            response = client.get(path, base_url="https://localhost")
            assert response.status_code == 403, (role, path)
            assert b"nothing in this range" not in response.data


def visible_text(html: str) -> str:
    """What a reader sees: the page's text without markup, scripts or styles."""
    import lxml.html

    tree = lxml.html.fromstring(html)
    for node in tree.xpath("//script|//style|//title"):
        node.drop_tree()
    main = tree.find(".//main")
    return " ".join(" ".join((main if main is not None else tree).itertext()).split())


CODE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b|\b[a-z]+:\d+:[a-z_]+\b")
"""A code a program stores (no_one_on_duty, crisis_988, main:1:report), not a word."""


def test_supervisor_reads_the_figures_in_words_with_money_and_charts(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    slow = add_live_call(engine, "CA-live-3", utc(2026, 11, 12, 18))
    add_handoff(engine, slow, "telehealth_nurse", utc(2026, 11, 12, 18), answer_s=16, duration_s=60)
    _supervisor(client, make_staff)
    page = client.get("/dashboard", query_string=NOV, base_url="https://localhost")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="chart-handoffs-by-hour"' in html and "<svg" in html
    assert 'data-label="02" data-value="1"' in html  # one handoff at 02:xx local
    text = visible_text(html)
    assert CODE.findall(text) == []
    assert "Resolved by phone" in text and "Everyone on the roster tried" in text
    assert "Embedded clinician" in text and "Telehealth nurse" in text
    # two diverted calls x $250, as money
    assert "Estimated savings ($250 per avoided dispatch) $500" in text
    # the nurse answered nobody within 15 s: below the NENA target, said in words
    nurse = re.search(r"Telehealth nurse 2 1 16 s 16 s (\S+) (.{14})", text)
    assert nurse and nurse.groups() == ("0.0%", "— below target"), text
    assert "kill myself" not in html and "sister" not in html
    # every chart has a visible title, axis titles, and a table of its figures beside it
    titles = re.findall(r'<h3 id="chart-[a-z-]+-caption" class="chart-title">([^<]+)</h3>', html)
    assert len(titles) == 6 and "Handoffs by hour of day" in titles
    assert html.count('class="axis-title"') >= 11
    assert html.count('<table class="chart-data') == 6


def test_numbers_read_with_separators_money_and_units() -> None:
    from ivr.dashboard import present

    assert present.count(1234567) == "1,234,567"
    assert present.money(16750.0, "USD") == "$16,750"
    assert present.money(1234.5, "CAD") == "CA$1,234.50"
    assert present.money(10, "CHF") == "CHF 10"
    assert present.percent(81.8) == "81.8%" and present.percent("") == "no data"
    assert present.seconds(12) == "12 s" and present.minutes(7.5) == "7.5 min"


def test_each_figure_links_to_the_handoffs_behind_it_with_the_same_filters(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    _supervisor(client, make_staff)
    html = client.get("/dashboard", query_string=NOV, base_url="https://localhost").get_data(
        as_text=True
    )
    link = re.search(
        r'<a href="(/dashboard/records/handoffs\?[^"]*reason=chain_exhausted[^"]*)">', html
    )
    assert link, "the no-helper reason links to its handoffs"
    href = link.group(1).replace("&amp;", "&")
    assert "start=2026-11-01" in href and "end=2026-11-30" in href  # same filters
    records = client.get(href, base_url="https://localhost").get_data(as_text=True)
    text = visible_text(records)
    assert "1 record." in text
    assert "everyone on the roster tried" in text and "Telehealth nurse" in text
    assert "Wed 11 Nov 2026 02:10" in text  # local time (Phoenix), 09:10 UTC
    assert CODE.findall(text) == []
    # the requested figure lists both handoffs; outside the range, none
    every = client.get(
        "/dashboard/records/handoffs", query_string=NOV, base_url="https://localhost"
    )
    assert "2 records." in visible_text(every.get_data(as_text=True))
    outside = client.get(
        "/dashboard/records/handoffs",
        query_string={"start": "2026-10-01", "end": "2026-10-31"},
        base_url="https://localhost",
    )
    assert "0 records." in visible_text(outside.get_data(as_text=True))
    bad = client.get(
        "/dashboard/records/handoffs",
        query_string={**NOV, "reached": "maybe"},
        base_url="https://localhost",
    )
    assert bad.status_code == 400
    assert client.get("/dashboard/records/wizards", base_url="https://localhost").status_code == 404


def test_every_drill_down_link_lists_as_many_records_as_its_figure_says(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    add_callback(engine, status="pending", created_at=utc(2026, 11, 9, 18),
                 deadline_at=utc(2026, 11, 10, 18))  # fmt: skip
    add_event(engine, "CA-self-1", "to_person", None, utc(2026, 11, 8, 9, 12))
    add_event(engine, "CA-self-2", "transfer", "crisis_988", utc(2026, 11, 9, 9, 12))
    add_event(engine, "CA-self-3", "menu_item", "main:1:report", utc(2026, 11, 9, 10, 0))
    _supervisor(client, make_staff)
    html = client.get("/dashboard", query_string=NOV, base_url="https://localhost").get_data(
        as_text=True
    )
    checked = 0
    for href, shown in re.findall(r'<a href="(/dashboard/records/[^"]+)">([0-9,]+)</a>', html):
        records = client.get(href.replace("&amp;", "&"), base_url="https://localhost")
        assert records.status_code == 200, href
        found = re.search(r"<strong>([0-9,]+)</strong> record", records.get_data(as_text=True))
        assert found and found.group(1) == shown, (href, shown)
        checked += 1
    assert checked > 40
    # with an hour filter, the hours it leaves out count 0 and list nothing
    html = client.get(
        "/dashboard", query_string={**NOV, "hour": "2"}, base_url="https://localhost"
    ).get_data(as_text=True)
    hour_14 = re.findall(r'<a href="(/dashboard/records/[^"]+at_hour=14[^"]*)">([0-9,]+)</a>', html)
    assert len(hour_14) == 4  # handoffs, reached, found no helper, self-service calls
    for href, shown in hour_14:
        text = client.get(href.replace("&amp;", "&"), base_url="https://localhost").get_data(
            as_text=True
        )
        found = re.search(r"<strong>([0-9,]+)</strong> record", text)
        assert shown == "0" and found and found.group(1) == "0", href


def test_the_council_report_prints_the_programs_name_and_the_seed_figures(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    _supervisor(client, make_staff)
    page = client.get(
        "/dashboard/report",
        query_string={**NOV, "jurisdiction": "city"},
        base_url="https://localhost",
    )
    assert page.status_code == 200
    text = visible_text(page.get_data(as_text=True))
    assert "Tucson Alternative Response" in text and "City of Tucson" in text
    for figure in (
        "Calls diverted from police or EMS dispatch",
        "Estimated savings ($250 per avoided dispatch)",
        "Calls transferred to the 988 crisis line",
        "Calls transferred to 311",
        "Answer time, median",
        "Call length, median",
        "Outcomes by helper type",
    ):
        assert figure in text, figure
    assert CODE.findall(text) == []
    css = client.get("/dashboard/static/dashboard.css").get_data(as_text=True)
    assert "@media print" in css and "@page" in css


def test_filters_narrow_the_figures_and_bad_values_are_explained(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    _supervisor(client, make_staff)
    summary = client.get(
        "/dashboard/export/summary.csv",
        query_string={**NOV, "helper_type": "telehealth_nurse"},
        base_url="https://localhost",
    )
    rows = dict(csv.reader(io.StringIO(summary.get_data(as_text=True))))
    assert rows["handoffs requested"] == "1"
    assert rows["handoffs that found no helper"] == "1"
    sunday = client.get(
        "/dashboard/export/summary.csv",
        query_string={**NOV, "weekday": "6", "hour": "2"},
        base_url="https://localhost",
    )
    rows = dict(csv.reader(io.StringIO(sunday.get_data(as_text=True))))
    assert rows["handoffs requested"] == "1"
    bad = client.get(
        "/dashboard", query_string={"start": "2026-13-01"}, base_url="https://localhost"
    )
    assert bad.status_code == 400 and b"must be a date" in bad.data
    unknown = client.get(
        "/dashboard", query_string={"helper_type": "wizard"}, base_url="https://localhost"
    )
    assert unknown.status_code == 400


def test_handoff_log_csv_leaves_out_notes_unless_asked_and_never_has_phone_numbers(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    _supervisor(client, make_staff)
    plain = client.get(
        "/dashboard/export/handoff-log.csv", query_string=NOV, base_url="https://localhost"
    )
    assert plain.mimetype == "text/csv"
    assert "attachment" in plain.headers["Content-Disposition"]
    text = plain.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["helper_type"] for r in rows] == ["embedded_clinician", "telehealth_nurse"]
    assert rows[0]["answer_seconds"] == "12" and rows[0]["duration_seconds"] == "600"
    assert rows[0]["local_time"].startswith("2026-11-08 02:10")
    assert "kill myself" not in text and "sister" not in text and "555" not in text
    noted = client.get(
        "/dashboard/export/handoff-log.csv",
        query_string={**NOV, "notes": "1"},
        base_url="https://localhost",
    ).get_data(as_text=True)
    assert "sister" in noted and "555" not in noted


def test_every_dashboard_table_exports_as_csv(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    _supervisor(client, make_staff)
    html = client.get("/dashboard", query_string=NOV, base_url="https://localhost").get_data(
        as_text=True
    )
    import re

    links = re.findall(r'href="(/dashboard/export/[a-z_]+\.csv[^"]*)"', html)
    names = {re.search(r"export/([a-z_]+)\.csv", link).group(1) for link in links}  # type: ignore[union-attr]
    assert {
        "summary",
        "helper_types",
        "no_helper",
        "outcomes",
        "by_hour",
        "by_weekday",
        "self_service",
        "self_service_items",
        "callbacks",
    } <= names
    for link in links:
        response = client.get(link.replace("&amp;", "&"), base_url="https://localhost")
        assert response.status_code == 200 and response.mimetype == "text/csv", link
        assert len(response.get_data(as_text=True).splitlines()) >= 1


def test_reviewer_records_a_finding_through_the_form_with_csrf(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    _seed(engine)
    _supervisor(client, make_staff)
    queue = client.get("/dashboard/qa", query_string=NOV, base_url="https://localhost")
    assert queue.status_code == 200
    with engine.connect() as conn:
        items = conn.execute(sa.select(qa_items.c.id, qa_items.c.reason)).all()
    reasons = {r.reason for r in items}
    assert "mental_health_handoff" in reasons and "declined_or_fallback" in reasons
    item_id = next(r.id for r in items if r.reason == "mental_health_handoff")
    form = client.get(f"/dashboard/qa/{item_id}", base_url="https://localhost")
    html = form.get_data(as_text=True)
    assert "kill myself" in html  # the reviewer sees the context
    no_token = client.post(
        f"/dashboard/qa/{item_id}",
        data={"compliant": "yes"},
        base_url="https://localhost",
        headers={"Referer": f"https://localhost/dashboard/qa/{item_id}"},
    )
    assert no_token.status_code == 400
    saved = client.post(
        f"/dashboard/qa/{item_id}",
        data={
            "csrf_token": csrf_from(html),
            "compliant": "no",
            "not_offered_reason": "no_team_on_duty",
            "coaching_note": "Offer 988 when the clinician is off shift.",
        },
        base_url="https://localhost",
        headers={"Referer": f"https://localhost/dashboard/qa/{item_id}"},
    )
    assert saved.status_code == 302
    with engine.connect() as conn:
        finding = conn.execute(sa.select(qa_findings)).one()
    assert finding.item_id == item_id and finding.compliant is False
    assert finding.not_offered_reason == "no_team_on_duty"
    rates = client.get(
        "/dashboard/export/qa_findings.csv", query_string=NOV, base_url="https://localhost"
    ).get_data(as_text=True)
    row = next(
        r for r in csv.DictReader(io.StringIO(rates)) if r["reason"] == "mental_health_handoff"
    )
    assert row["reviewed"] == "1" and row["compliant"] == "0" and row["compliant %"] == "0.0"

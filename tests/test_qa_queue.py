"""A QA reviewer works the queue: one row per call with all its reasons, mandated reviews first,
a page at a time, "next to review", a confirmation after saving, and the call's facts in words
and local time beside the form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr.decisions.handoffs import EventSource, HandoffEvent, Origin
from ivr.flows import handoffs
from ivr.reporting import qa_queue
from ivr.reporting.qa import QAItem, QAReason, SubjectKind
from ivr.store.account_tables import call_notes
from ivr.store.qa_tables import qa_findings, qa_items
from tests.console_fixtures import PASSWORD, MakeStaff, make_staff
from tests.dashboard_fixtures import (
    _forget_handoffs,
    add_event,
    add_handoff,
    add_live_call,
    csrf_from,
    sign_in,
    utc,
)
from tests.test_dashboard import CODE, visible_text

FIXTURES = (make_staff, _forget_handoffs)
"""Fixtures this module uses from the console and dashboard fixture modules."""

NOV = {"start": "2026-11-01", "end": "2026-11-30"}

ANSWERS = {"weapon": False, "immediate_danger": False, "violence": False, "consent": True,
           "medical": False, "health_question": False}  # fmt: skip


def _supervisor(client: FlaskClient, make_staff: MakeStaff) -> None:
    staff = make_staff("supervisor", staff_id="7001")
    assert sign_in(client, staff.staff_id, PASSWORD).status_code == 302


def _get(client: FlaskClient, path: str, **query: Any) -> str:
    response = client.get(path, query_string=query, base_url="https://localhost")
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _rows(html: str) -> list[tuple[str, str]]:
    """(first item id, reasons) of each queue row, in order."""
    return re.findall(
        r'<tr data-item="(\d+)" data-reason="[a-z_]+" data-reasons="([a-z_ ]+)">', html
    )


def test_a_call_with_two_flagged_handoffs_is_one_row_with_every_reason(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    call = add_live_call(engine, "CA-qa-1", utc(2026, 11, 10, 18))
    add_handoff(engine, call, "telehealth_nurse", utc(2026, 11, 10, 18), status="returned",
                reason_code="chain_exhausted", attempt=2, events=("declined",))  # fmt: skip
    add_handoff(engine, call, "embedded_clinician", utc(2026, 11, 10, 18, 5), answer_s=10)
    _supervisor(client, make_staff)
    html = _get(client, "/dashboard/qa", **NOV)
    rows = _rows(html)
    assert len(rows) == 1
    assert rows[0][1] == "mental_health_handoff declined_or_fallback"  # mandated first
    text = visible_text(html)
    assert f"Call #{call}" in text and "Required review" in text
    assert "Telehealth nurse" in text and "Embedded clinician" in text
    assert "Tue 10 Nov 2026 11:00" in text  # local time (Phoenix, UTC-7)
    assert CODE.findall(text) == []


def test_mandated_reviews_come_first_then_the_oldest(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    older = add_live_call(engine, "CA-qa-old", utc(2026, 11, 2, 18))
    add_handoff(engine, older, "telehealth_nurse", utc(2026, 11, 2, 18), status="returned",
                reason_code="no_answer", attempt=2)  # fmt: skip
    newer = add_live_call(engine, "CA-qa-new", utc(2026, 11, 20, 18))
    add_handoff(engine, newer, "crisis_988", utc(2026, 11, 20, 18), answer_s=5)
    _supervisor(client, make_staff)
    rows = _rows(_get(client, "/dashboard/qa", **NOV))
    assert [r[1] for r in rows] == ["mental_health_handoff", "declined_or_fallback"]


def test_the_queue_is_paged_and_next_to_review_is_the_most_pressing_open_call(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    start = utc(2026, 11, 3, 18)
    for n in range(30):
        at = start + timedelta(hours=n)
        call = add_live_call(engine, f"CA-qa-page-{n}", at)
        add_handoff(engine, call, "navigator", at, answer_s=8)
    _supervisor(client, make_staff)
    first = _get(client, "/dashboard/qa", **NOV)
    assert len(_rows(first)) == qa_queue.PAGE_SIZE == 25
    assert "30 calls, page 1 of 2" in visible_text(first)
    second = _get(client, "/dashboard/qa", page="2", **NOV)
    assert len(_rows(second)) == 5
    assert not set(_rows(first)) & set(_rows(second))
    next_link = re.search(r'id="next-to-review" class="button" href="/dashboard/qa/(\d+)', first)
    assert next_link and next_link.group(1) == _rows(first)[0][0]


def test_saving_a_finding_confirms_it_covers_every_flag_and_moves_next_along(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    a = add_live_call(engine, "CA-qa-a", utc(2026, 11, 4, 18))
    add_handoff(engine, a, "embedded_clinician", utc(2026, 11, 4, 18), status="returned",
                reason_code="declined", attempt=2, events=("declined",))  # fmt: skip
    b = add_live_call(engine, "CA-qa-b", utc(2026, 11, 5, 18))
    add_handoff(engine, b, "embedded_clinician", utc(2026, 11, 5, 18), answer_s=7)
    _supervisor(client, make_staff)
    queue = _get(client, "/dashboard/qa", **NOV)
    item_id = re.search(r'id="next-to-review" class="button" href="/dashboard/qa/(\d+)', queue)
    assert item_id
    back = "/dashboard/qa?start=2026-11-01&end=2026-11-30"
    form = _get(client, f"/dashboard/qa/{item_id.group(1)}", back=back)
    assert "The finding is saved on every reason this call was flagged for (2)" in form
    saved = client.post(
        f"/dashboard/qa/{item_id.group(1)}",
        data={
            "csrf_token": csrf_from(form),
            "compliant": "no",
            "not_offered_reason": "no_team_on_duty",
            "coaching_note": "Offer 988 when the clinician is off shift.",
            "back": back,
        },
        base_url="https://localhost",
        headers={"Referer": "https://localhost/dashboard/qa"},
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith(back)
    after = _get(client, "/dashboard/qa", **NOV)
    assert f"Finding saved: Call #{a} is not compliant." in visible_text(after)
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(qa_items.c.reason, qa_findings.c.compliant).join(
                qa_findings, qa_findings.c.item_id == qa_items.c.id
            )
        ).all()
    assert sorted(tuple(r) for r in found) == [
        ("declined_or_fallback", False),
        ("mental_health_handoff", False),
    ]
    rows = _rows(after)
    assert len(rows) == 1 and f"Call #{b}" in visible_text(after)
    # the confirmation shows once, not on the next visit
    assert "Finding saved" not in _get(client, "/dashboard/qa", **NOV)
    reviewed = visible_text(_get(client, "/dashboard/qa", show="reviewed", **NOV))
    assert f"Call #{a}" in reviewed and "not compliant" in reviewed


def test_the_review_shows_the_call_in_words_and_local_time_with_notes(
    app: Flask, client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    now = datetime.now(UTC)
    live = handoffs.open_live_call(
        engine,
        call_sid="CA" + "7" * 32,
        origin=Origin.INTAKE,
        callback_number="+15205550144",
        call_taker_staff_id=None,
        now=now,
    )
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
    handoffs.record_event(
        engine, handoff.id, HandoffEvent.DIALING, source=EventSource.TWILIO,
        dedupe_key="qa-dial", occurred_at=now, attempt=1, member_id="clin-rivera",
    )  # fmt: skip
    handoffs.record_event(
        engine, handoff.id, HandoffEvent.DECLINED, source=EventSource.TWILIO,
        dedupe_key="qa-declined", occurred_at=now + timedelta(seconds=4), attempt=1,
    )  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            call_notes.insert().values(
                live_call_id=live.id, staff_id="4601", body="caller calmer now", at=now
            )
        )
    _supervisor(client, make_staff)
    today = now.astimezone(app.extensions["bridgeline"].program.zone).date().isoformat()
    queue = _get(client, "/dashboard/qa", start=today, end=today)
    item = re.search(r'href="/dashboard/qa/(\d+)', queue)
    assert item
    html = _get(client, f"/dashboard/qa/{item.group(1)}")
    text = visible_text(html)
    assert "Is a weapon involved? no" in text
    assert "Does the caller agree to talk with a helper? yes" in text
    assert "declined — Dana Rivera" in text
    assert "caller calmer now" in text and "panic attack" in text
    assert "Transcript tags" in text or "No transcript tags" in text
    assert "UTC" not in text and "member id" not in text and "{" not in text
    assert "+15205550144" not in html
    assert CODE.findall(text) == []


def test_flags_are_grouped_by_call_and_ordered_by_priority() -> None:
    at = datetime(2026, 11, 10, tzinfo=UTC)

    def flag(item_id: int, ref: str, reason: QAReason, minutes: int) -> QAItem:
        return QAItem(item_id, SubjectKind.HANDOFF, ref, reason, at + timedelta(minutes=minutes),
                      None, None, "navigator", False, None, None, None, None)  # fmt: skip

    items = [
        flag(1, "10", QAReason.RANDOM_SAMPLE, 0),
        flag(2, "11", QAReason.DECLINED_OR_FALLBACK, 5),
        flag(3, "12", QAReason.CRISIS_NOT_OFFERED, 9),
        flag(4, "11", QAReason.MENTAL_HEALTH_HANDOFF, 5),
    ]
    calls = qa_queue.group_calls(
        items,
        {("handoff", "10"): "live:1", ("handoff", "11"): "live:2", ("handoff", "12"): "live:2"},
    )
    assert [c.key for c in calls] == ["live:2", "live:1"]
    assert calls[0].reasons == (
        QAReason.CRISIS_NOT_OFFERED,
        QAReason.MENTAL_HEALTH_HANDOFF,
        QAReason.DECLINED_OR_FALLBACK,
    )
    assert calls[0].mandated and not calls[1].mandated
    assert calls[0].occurred_at == at + timedelta(minutes=5)


def test_a_self_service_call_with_crisis_words_is_reviewed_with_its_steps(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    at = utc(2026, 11, 12, 3, 0)
    add_event(engine, "CA-ss-crisis", "language", "es", at)
    add_event(engine, "CA-ss-crisis", "crisis_words", "crisis_988", at + timedelta(seconds=20))
    _supervisor(client, make_staff)
    queue = _get(client, "/dashboard/qa", **NOV)
    assert [r[1] for r in _rows(queue)] == ["crisis_not_offered"]
    item = re.search(r'href="/dashboard/qa/(\d+)', queue)
    assert item
    text = visible_text(_get(client, f"/dashboard/qa/{item.group(1)}"))
    assert "crisis words heard, no crisis helper offered" in text
    assert "language chosen: Spanish" in text and "crisis words heard: 988 crisis line" in text
    assert "20:00:20" in text  # 03:00:20 UTC is 20:00:20 the day before in Phoenix
    assert "CA-ss-crisis" not in text
    assert CODE.findall(text) == []


def test_transcript_tags_show_in_words_and_filter_the_queue(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    from ivr.store.qa_tags import add_tags

    tagged_call = add_live_call(engine, "CA-qa-tagged", utc(2026, 11, 6, 18))
    tagged = add_handoff(engine, tagged_call, "crisis_988", utc(2026, 11, 6, 18), answer_s=6)
    add_tags(
        engine, "handoff", str(tagged), ["suicide_self_harm", "substance_use"], source="reason"
    )
    other = add_live_call(engine, "CA-qa-untagged", utc(2026, 11, 7, 18))
    add_handoff(engine, other, "navigator", utc(2026, 11, 7, 18), answer_s=6)
    _supervisor(client, make_staff)
    html = _get(client, "/dashboard/qa", **NOV)
    assert len(_rows(html)) == 2
    text = visible_text(html)
    assert "substance use suicide or self-harm" in text
    assert CODE.findall(text) == []
    only = _get(client, "/dashboard/qa", tag="suicide_self_harm", **NOV)
    assert len(_rows(only)) == 1 and f"Call #{tagged_call}" in visible_text(only)
    assert 'option value="suicide_self_harm" selected' in only
    assert "tag=suicide_self_harm" in re.search(r'id="show-all" href="([^"]+)"', only).group(1)  # type: ignore[union-attr]
    bad = client.get(
        "/dashboard/qa", query_string={**NOV, "tag": "nonsense"}, base_url="https://localhost"
    )
    assert bad.status_code == 400
    item = re.search(r'href="/dashboard/qa/(\d+)', only)
    assert item
    review = visible_text(_get(client, f"/dashboard/qa/{item.group(1)}"))
    assert "Transcript tags: substance use suicide or self-harm" in review

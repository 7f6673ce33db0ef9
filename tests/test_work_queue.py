"""The 311 work queue as staff use it: find reports, hear them, assign them, move them on."""

from __future__ import annotations

import re
from base64 import b64encode
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import responses
import sqlalchemy as sa
from lxml import etree

from ivr.simulator import Call
from ivr.store import audit, service_requests
from ivr.store.service_requests import RequestStatus
from ivr.store.tables import service_request_changes
from ivr.store.tables import service_requests as requests_table
from ivr.work_queue.filters import age_in_words, assignment_label, parse_filters
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.console_fixtures import LoggedIn, MakeStaff, logged_in_client, make_staff

FIXTURES = (logged_in_client, make_staff)
"""Fixtures this module uses from tests/console_fixtures.py."""

Place = Callable[..., Call]
RECORDING_SID = "RE" + "c" * 32
MEDIA_URL = (
    f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}.mp3"
)


def phone_report(call: Place, engine: sa.Engine, category_key: str = "2", where: str = "") -> str:
    c = call()
    c.press("1")
    c.press("1")
    c.press(category_key)
    c.record(seconds=12)
    if where:
        c.speak(where)
        c.press("1")
    else:
        c.press("1")  # skip
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(requests_table.c.reference).order_by(requests_table.c.id.desc())
            ).scalar()
        )


def test_an_agent_signs_in_to_the_queue_and_finds_reports_by_filter(
    call: Place, engine: sa.Engine, logged_in_client: LoggedIn
) -> None:
    pothole = phone_report(call, engine, "2", where="Grant and Oracle")
    noise = phone_report(call, engine, "3")
    agent = logged_in_client("agent_311")
    page = agent.get("/reports").get_data(as_text=True)
    assert "311 reports" in page and "2 reports." in page
    assert "Grant and Oracle" in page and "No address given" in page
    assert "Pothole or road damage" in page and "Received" in page
    only_noise = agent.get("/reports?category=noise").get_data(as_text=True)
    assert noise in only_noise and pothole not in only_noise
    assert "1 report." in agent.get("/reports?category=noise&jurisdiction=city").get_data(
        as_text=True
    )
    assert "0 reports." in agent.get("/reports?jurisdiction=county").get_data(as_text=True)
    assert "0 reports." in agent.get("/reports?age=over_week").get_data(as_text=True)
    assert "2 reports." in agent.get("/reports?age=day&status=bogus").get_data(as_text=True)
    assert "0 reports." in agent.get("/reports?status=closed").get_data(as_text=True)


def test_roles_who_may_and_may_not_work_the_queue(
    call: Place, engine: sa.Engine, logged_in_client: LoggedIn
) -> None:
    reference = phone_report(call, engine)
    for role in ("agent_311", "supervisor", "call_taker"):
        assert logged_in_client(role).get(f"/reports/{reference}").status_code == 200, role
    assert logged_in_client("clinician").get("/reports").status_code == 403
    anonymous = logged_in_client().get(f"/reports/{reference}/recording")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    signed_in = logged_in_client("agent_311")
    assert signed_in.get("/login").headers["Location"] == "/reports"  # the agent's home


def test_the_recording_plays_through_bridgeline_never_from_twilios_url(
    signed_post, engine: sa.Engine, logged_in_client: LoggedIn
) -> None:
    signed_post(
        "/voice/self-service/report/recorded?lang=en&cat=noise",
        {
            "RecordingSid": RECORDING_SID,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING_SID}",
            "RecordingDuration": "7",
        },
    )
    with engine.connect() as conn:
        reference = conn.execute(sa.select(requests_table.c.reference)).scalar_one()
    agent = logged_in_client("agent_311")
    page = agent.get(f"/reports/{reference}").get_data(as_text=True)
    assert f'src="/reports/{reference}/recording"' in page
    assert "api.twilio.com" not in page and RECORDING_SID not in page
    audio = b"ID3\x03\x00fake-mp3-frames" * 100
    with responses.RequestsMock() as twilio_media:
        served = twilio_media.get(
            MEDIA_URL, body=audio, content_type="audio/mpeg", headers={"Content-Length": "2000"}
        )
        played = agent.get(f"/reports/{reference}/recording")
        assert played.status_code == 200 and played.mimetype == "audio/mpeg"
        assert played.data == audio
        credentials = b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        assert served.calls[0].request.headers["Authorization"] == f"Basic {credentials}"
        assert played.headers["Cache-Control"] == "no-store"
    (entry,) = [e for e in audit.entries(engine) if e.action == "service_request.recording_played"]
    assert entry.actor == f"staff:{agent.staff.staff_id}"  # type: ignore[union-attr]
    with responses.RequestsMock() as twilio_media:
        twilio_media.get(MEDIA_URL, status=404, json={"code": 20404})
        assert agent.get(f"/reports/{reference}/recording").status_code == 404


def test_a_status_change_is_saved_audited_shown_and_owes_the_resident_a_text(
    call: Place, engine: sa.Engine, logged_in_client: LoggedIn, make_staff: MakeStaff
) -> None:
    c = call()
    c.press("1")
    c.press("1")
    c.press("1")
    c.record()
    c.speak("Stone and Speedway")
    c.press("1")
    c.press("2")  # text me when the status changes
    with engine.connect() as conn:
        reference = conn.execute(sa.select(requests_table.c.reference)).scalar_one()
    crew_lead = make_staff("agent_311", name="Dana Ruiz", staff_id="4101")
    agent = logged_in_client("agent_311")
    saved = agent.post(
        f"/reports/{reference}/change",
        data={
            "status": "in_progress",
            "public_note": "A crew will fix it this week.",
            "internal_note": "Ticket TR-5512",
            "assigned_to": f"staff:{crew_lead.staff_id}",
        },
    )
    assert saved.status_code == 303
    page = agent.get(f"/reports/{reference}").get_data(as_text=True)
    assert "Saved: the report is now in progress." in page
    assert "A crew will fix it this week." in page and "Ticket TR-5512" in page
    assert "Dana Ruiz (4101)" in page
    found = service_requests.find_by_reference(engine, reference)
    assert found is not None and found.status is RequestStatus.IN_PROGRESS
    assert found.assigned_to == "staff:4101"
    with engine.connect() as conn:
        change = conn.execute(sa.select(service_request_changes)).one()
    assert change.notify == "pending" and change.actor == f"staff:{agent.staff.staff_id}"  # type: ignore[union-attr]
    (entry,) = [e for e in audit.entries(engine) if e.action == "service_request.change"]
    assert '"from":"received"' in entry.details and '"to":"in_progress"' in entry.details
    assert "TR-5512" not in entry.details and "crew" not in entry.details


def test_bad_changes_are_refused_in_plain_words_and_nothing_is_saved(
    call: Place, engine: sa.Engine, logged_in_client: LoggedIn
) -> None:
    reference = phone_report(call, engine)
    agent = logged_in_client("agent_311")
    for form, message in (
        ({"status": "done"}, "Choose a status."),
        ({"status": "received"}, "Nothing was saved: nothing to change."),
        (
            {"status": "resolved", "assigned_to": "staff:9999"},
            "Choose a person or a department from the list.",
        ),
    ):
        agent.post(f"/reports/{reference}/change", data=form)
        assert message in agent.get(f"/reports/{reference}").get_data(as_text=True)
    without_token = agent.client.post(f"/reports/{reference}/change", data={"status": "closed"})
    assert without_token.status_code == 400
    found = service_requests.find_by_reference(engine, reference)
    assert found is not None and found.status is RequestStatus.RECEIVED
    assert service_requests.history(engine, found.id) == []


def test_assigning_to_a_department_shows_in_open311_as_the_agency(
    call: Place, engine: sa.Engine, logged_in_client: LoggedIn, client
) -> None:
    reference = phone_report(call, engine, "3")
    agent = logged_in_client("supervisor")
    agent.post(
        f"/reports/{reference}/change",
        data={"status": "received", "assigned_to": "dept:Transportation"},
    )
    shown = client.get(f"/open311/v2/requests/{reference}.json").get_json()[0]
    assert shown["agency_responsible"] == "Transportation"
    agent.post(f"/reports/{reference}/change", data={"status": "received", "assigned_to": ""})
    shown = client.get(f"/open311/v2/requests/{reference}.json").get_json()[0]
    assert shown["agency_responsible"] == "Code Enforcement"  # the category's department


def test_filter_choices_fall_back_to_defaults_and_ages_read_plainly() -> None:
    chosen = parse_filters(
        {"category": "pothole", "status": "closed", "age": "week", "jurisdiction": "x"},
        ["pothole"],
        ["city"],
    )
    assert (chosen.category, chosen.status, chosen.age, chosen.jurisdiction) == (
        "pothole",
        "closed",
        "week",
        "",
    )
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    query = chosen.query(now)
    assert query.statuses == {"closed"} and query.created_from == now - timedelta(days=7)
    assert parse_filters({"status": "nope"}, [], []).query(now).statuses == {
        "received",
        "in_progress",
    }
    assert age_in_words(now - timedelta(minutes=1), now) == "1 minute"
    assert age_in_words(now - timedelta(hours=30), now) == "30 hours"
    assert age_in_words(now - timedelta(days=9), now) == "9 days"
    assert assignment_label("staff:4101", {"4101": "Dana Ruiz"}) == "Dana Ruiz (4101)"
    assert assignment_label("dept:Streets", {}) == "Streets"
    assert assignment_label(None, {}) == "Nobody yet"


@pytest.mark.parametrize("path", ["/reports/12ab", "/reports/99999999", "/reports/1/recording"])
def test_unknown_reports_are_404(path: str, logged_in_client: LoggedIn) -> None:
    assert logged_in_client("agent_311").get(path).status_code == 404


def test_times_on_the_page_are_local(
    call: Place, engine: sa.Engine, logged_in_client: LoggedIn
) -> None:
    reference = phone_report(call, engine)
    page = logged_in_client("agent_311").get(f"/reports/{reference}").get_data(as_text=True)
    assert re.search(r"\w{3} \d{2} \w{3} \d{4}, \d{1,2}:\d{2} [ap]\.m\.", page)
    assert "UTC" not in page


def test_twilios_transcript_and_its_tags_reach_staff_but_not_partners_or_logs(
    signed_post, engine: sa.Engine, logged_in_client: LoggedIn, client, caplog
) -> None:
    english = signed_post("/voice/self-service/report/category?lang=en", {"Digits": "2"})
    record = etree.fromstring(english.data).find("Record")
    assert record.get("transcribe") == "true"
    assert "/voice/self-service/report/transcription" in record.get("transcribeCallback")
    signed_post(
        "/voice/self-service/report/recorded?lang=en&cat=pothole",
        {"RecordingSid": RECORDING_SID, "RecordingUrl": MEDIA_URL[:-4], "RecordingDuration": "9"},
    )
    said = "There is a huge pothole on the road, it is dangerous and blocking the bike lane."
    answer = signed_post(
        "/voice/self-service/report/transcription?lang=en",
        {
            "RecordingSid": RECORDING_SID,
            "TranscriptionSid": "TR" + "d" * 32,
            "TranscriptionText": said,
            "TranscriptionStatus": "completed",
        },
    )
    assert answer.status_code == 200
    with engine.connect() as conn:
        reference, tags = conn.execute(
            sa.select(requests_table.c.reference, requests_table.c.tags)
        ).one()
    page = logged_in_client("agent_311").get(f"/reports/{reference}").get_data(as_text=True)
    assert said in page
    shown_tags = re.findall(r'<span class="tag">([^<]+)</span>', page)
    assert shown_tags == (tags.split(",") if tags else [])
    assert "Urgent" not in page
    shown = client.get(f"/open311/v2/requests/{reference}.json").get_json()[0]
    assert shown["description"] is None
    assert "bike lane" not in caplog.text


def test_a_report_whose_recording_has_crisis_words_stands_out_in_the_queue(
    signed_post, engine: sa.Engine, logged_in_client: LoggedIn
) -> None:
    signed_post(
        "/voice/self-service/report/recorded?lang=en&cat=noise",
        {"RecordingSid": RECORDING_SID, "RecordingUrl": MEDIA_URL[:-4], "RecordingDuration": "9"},
    )
    signed_post(
        "/voice/self-service/report/transcription?lang=en",
        {
            "RecordingSid": RECORDING_SID,
            "TranscriptionText": "my neighbor says he wants to kill himself and has a gun",
            "TranscriptionStatus": "completed",
        },
    )
    agent = logged_in_client("agent_311")
    listing = agent.get("/reports").get_data(as_text=True)
    assert "Urgent: crisis words" in listing
    with engine.connect() as conn:
        reference = conn.execute(sa.select(requests_table.c.reference)).scalar_one()
    assert 'id="urgent"' in agent.get(f"/reports/{reference}").get_data(as_text=True)

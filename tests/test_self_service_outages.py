"""Redis or the database down in the middle of calls: the line keeps answering, nothing acknowledged is lost."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr.queueing import Queues, connect
from ivr.simulator import Call
from ivr.store.tables import outbound_sms
from tests.twiml_check import check_twiml

Place = Callable[..., Call]


@pytest.fixture
def database_down(app: Flask, tmp_path) -> None:
    broken = sa.create_engine(f"sqlite:///{tmp_path}/missing-folder/db.sqlite3")
    app.extensions["bridgeline"].self_service.engine = broken


@pytest.fixture
def redis_down(app: Flask) -> None:
    app.extensions["bridgeline"].self_service.queues = Queues(
        connect("redis://127.0.0.1:1/0", 0.2), "bltest"
    )


def test_with_the_database_down_the_menu_still_plays_and_transfers_still_work(
    call: Place, database_down
) -> None:
    c = call()
    c.press("1")
    assert "To report a non-emergency problem, press 1" in c.heard_since_last()
    c.press("4")
    c.press("2")
    assert c.dialed == ["+15205550988"]


def test_with_the_database_down_a_report_is_not_claimed_and_the_caller_reaches_a_person(
    call: Place, database_down, caplog
) -> None:
    caplog.set_level(logging.INFO)
    c = call()
    c.press("1")
    c.press("1")
    c.press("1")
    c.record()
    heard = c.heard_since_last()
    assert "we could not save your report right now" in heard
    assert "reference number" not in heard
    assert c.waiting_for == "Enqueue"
    assert "report not saved" in caplog.text
    assert "5205550123" not in caplog.text and "Recordings" not in caplog.text


def test_with_the_database_down_a_callback_request_is_not_claimed(
    call: Place, database_down
) -> None:
    c = call()
    c.press("1")
    c.press("5")
    c.press("1")
    heard = c.heard_since_last()
    assert "could not take your call back request" in heard
    assert "saved" not in heard


def test_with_redis_down_a_text_is_recorded_and_sent_by_the_sweep_when_redis_is_back(
    call: Place, redis_down, engine: sa.Engine, run_jobs, twilio_api
) -> None:
    c = call()
    c.press("1")
    c.press("3")
    c.press("1")
    c.press("1")
    assert "We are sending a text message" in c.heard_since_last()
    with engine.connect() as conn:
        assert conn.execute(sa.select(outbound_sms.c.status)).scalar_one() == "pending"
    sent = twilio_api.post(
        "https://api.twilio.com/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json",
        json={"sid": "SM" + "2" * 32, "status": "queued"},
        status=201,
    )
    from workers.sms import sweep_sms

    assert run_jobs() == 0  # nothing was queued while Redis was down
    assert sweep_sms() == 1
    assert run_jobs() == 1
    assert sent.call_count == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(outbound_sms.c.status)).scalar_one() == "sent"


def test_an_internal_error_gives_an_apology_and_a_person_never_an_application_error(
    app: Flask, signed_post, monkeypatch
) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(app.extensions["bridgeline"].self_service, "menu_choice", broken)
    response = signed_post("/voice/self-service/menu/main/choose?lang=es", {"Digits": "1"})
    root = check_twiml(response.data)
    assert response.status_code == 200
    assert "Lo sentimos" in root.find("Say").text
    assert [n.text for n in root.iter("Number")] == ["+15205550311"]


def test_the_fallback_url_answers_with_an_apology_and_an_operator(signed_post) -> None:
    response = signed_post("/voice/fallback", {"ErrorCode": "11200", "ErrorUrl": "https://x/voice"})
    root = check_twiml(response.data)
    assert [n.text for n in root.iter("Number")] == ["+15205550311"]


def test_a_bad_signature_gets_403_and_records_nothing(signed_post, engine: sa.Engine) -> None:
    data = {
        "RecordingSid": "RE" + "b" * 32,
        "RecordingUrl": "https://x/Recordings/REb",
        "RecordingDuration": "5",
    }
    response = signed_post(
        "/voice/self-service/report/recorded?lang=en&cat=noise", data, token="wrong-token"
    )
    assert response.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM service_requests")).scalar() == 0


def test_a_missing_signature_gets_403(client) -> None:
    assert client.post("/voice/self-service", data={"CallSid": "CA1"}).status_code == 403
    assert client.post("/voice/no-such-step", data={"CallSid": "CA1"}).status_code == 403


def test_a_signed_request_to_an_unknown_voice_url_still_gets_twiml(signed_post) -> None:
    response = signed_post("/voice/self-service/no-such-step")
    assert response.status_code == 200
    check_twiml(response.data)


def test_the_signature_is_checked_against_the_public_url_behind_a_proxy(client) -> None:
    from ivr.security import SIGNATURE_HEADER, compute_signature

    data = {"CallSid": "CA" + "3" * 32, "From": "+15205550123"}
    signature = compute_signature(
        "test-auth-token-0123456789",
        "https://bridgeline.example.org/voice/self-service",
        data.items(),
    )
    response = client.post(
        "/voice/self-service",
        data=data,
        headers={SIGNATURE_HEADER: signature, "Host": "10.0.0.5:8000", "X-Forwarded-Proto": "http"},
    )
    assert response.status_code == 200

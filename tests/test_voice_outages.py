"""Every voice URL with Redis down, with the database down, and with the optional config files
absent and no Twilio fields at all: Twilio always gets valid TwiML, never an error page.

A caller must never hear Twilio's "application error". The routes are read from the app's URL
map (tests/voice_routes.py), so a voice route added later is cut off from Redis and the database
here too. The app is built as production builds it, with the outage in its own settings: the
Redis URL or the database URL points at a port where nothing listens.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from ivr import create_app
from ivr.security import SIGNATURE_HEADER, compute_signature
from tests.conftest import AUTH_TOKEN, CALLER, PUBLIC_BASE, REPO
from tests.twiml_check import check_twiml
from tests.voice_routes import RULES, fill

DEAD_REDIS = "redis://127.0.0.1:1/0"
"""Nothing listens on port 1: every Redis command fails at once (connection refused)."""

VARIABLES = {"menu_id": "main", "topic": "hours"}
"""Values for the variables of a voice rule: a menu and an information topic that exist."""

QUERY = "lang=en&live=1&h=1&at=1&t=1&r=1&s=4821&n=1&q=weapon&handoff=1&kind=helper&cat=pothole"
"""The URL state Bridgeline signs into its TwiML (desk staff id, handoff, attempt, ...), so each
route goes past its first checks to where it reads or writes."""

FIELDS = {
    "CallSid": "CA" + "e" * 32,
    "AccountSid": "AC" + "1" * 32,
    "From": CALLER,
    "To": "+15205550100",
    "CallStatus": "completed",
    "Digits": "1",
    "SpeechResult": "a pothole on my street",
    "Confidence": "0.9",
    "RecordingSid": "RE" + "1" * 32,
    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/RE1",
    "RecordingStatus": "completed",
    "RecordingDuration": "12",
    "TranscriptionText": "a pothole on my street",
    "TranscriptionStatus": "completed",
    "DialCallStatus": "no-answer",
    "QueueResult": "hangup",
    "ConferenceSid": "CF" + "1" * 32,
    "StatusCallbackEvent": "participant-leave",
    "ParticipantLabel": "caller",
    "SequenceNumber": "3",
    "Timestamp": "Tue, 01 Dec 2026 17:00:00 +0000",
}
"""What Twilio sends along a call (a caller who pressed 1, a leg that ended, a recording)."""


def _post(app: Flask, rule: str, form: dict[str, str], query: str) -> tuple[int, bytes, str]:
    path = fill(rule, VARIABLES)
    url = PUBLIC_BASE + path + (f"?{query}" if query else "")
    signature = compute_signature(AUTH_TOKEN, url, form.items())
    response = app.test_client().post(
        path, query_string=query, data=form, headers={SIGNATURE_HEADER: signature}
    )
    return response.status_code, response.data, response.mimetype


def _answered(status: int, body: bytes, mimetype: str) -> None:
    """Twilio's view: a 200 with valid TwiML, or an empty 204 (a status callback)."""
    if status == 204:
        assert body == b""
        return
    assert status == 200, (status, body[:200])
    assert mimetype == "text/xml"
    check_twiml(body)


def _unreachable(database_url: str, tmp: Path) -> str:
    """A database URL of the same kind as the suite's, where nothing answers."""
    if database_url.startswith("postgresql"):
        return "postgresql://postgres@127.0.0.1:1/bridgeline"  # nothing listens on port 1
    (tmp / "a-folder").mkdir()
    return f"sqlite:///{tmp}/a-folder"  # SQLite cannot open a folder as its database file


def _app(env: dict[str, str]) -> Iterator[Flask]:
    application = create_app({**env, "TESTING": True})
    yield application
    application.extensions["bridgeline"].engine.dispose()


@pytest.fixture(scope="module")
def _module_env(database_url: str) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "DATABASE_URL": database_url,
        "REDIS_URL": DEAD_REDIS,
        "BRIDGELINE_CONFIG": str(REPO / "config"),
        "BRIDGELINE_QUEUE_PREFIX": "bltest",
    }


@pytest.fixture(scope="module")
def redis_down(_module_env: dict[str, str]) -> Iterator[Flask]:
    """The app with the database up and Redis refusing every connection."""
    yield from _app(_module_env)


@pytest.fixture(scope="module")
def database_down(
    _module_env: dict[str, str], database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app with Redis down too and the database unreachable: nothing can be recorded."""
    url = _unreachable(database_url, tmp_path_factory.mktemp("db-down"))
    yield from _app({**_module_env, "DATABASE_URL": url})


@pytest.fixture(scope="module")
def optional_config_absent(
    _module_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app from a config folder without the optional program.yaml and retention.yaml."""
    folder = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(REPO / "config", folder)
    (folder / "program.yaml").unlink()
    (folder / "retention.yaml").unlink()
    yield from _app({**_module_env, "BRIDGELINE_CONFIG": str(folder)})


IDS = [rule for rule, _, _ in RULES]


@pytest.mark.parametrize("rule", IDS)
def test_with_redis_down_every_voice_route_answers_twiml(
    redis_down: Flask, rule: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _answered(*_post(redis_down, rule, FIELDS, QUERY))
    assert CALLER.lstrip("+") not in caplog.text


@pytest.mark.parametrize("rule", IDS)
def test_with_the_database_down_every_voice_route_answers_twiml(
    database_down: Flask, rule: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _answered(*_post(database_down, rule, FIELDS, QUERY))
    assert CALLER.lstrip("+") not in caplog.text


@pytest.mark.parametrize("rule", IDS)
def test_with_no_fields_and_no_optional_config_every_voice_route_answers_twiml(
    optional_config_absent: Flask, rule: str
) -> None:
    _answered(*_post(optional_config_absent, rule, {}, ""))
    _answered(*_post(optional_config_absent, rule, {"CallSid": FIELDS["CallSid"]}, QUERY))


def test_the_outage_apps_really_are_cut_off(redis_down: Flask, database_down: Flask) -> None:
    """The outages above are real: Redis refuses, the database cannot be reached."""
    with pytest.raises(Exception, match=r"(?i)connect"):
        redis_down.extensions["bridgeline"].queues.connection.ping()
    with pytest.raises(sa.exc.OperationalError):
        with database_down.extensions["bridgeline"].engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))


def test_every_voice_route_is_cut_off_here(redis_down: Flask) -> None:
    from tests.voice_routes import voice_rules

    assert [rule for rule, _, _ in voice_rules(redis_down)] == IDS
    assert {"/voice/transfer-desk/status", "/voice/intake/status"} <= set(IDS)

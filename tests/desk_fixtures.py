"""Fixtures for the transfer desk and handoff tests: a signed-in call-taker, a fixed clock,
and Twilio's status callbacks (signed, with the idempotency header when asked)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr.accounts import Staff, create_staff
from ivr.flows.desk import TransferDesk
from ivr.security import SIGNATURE_HEADER, compute_signature
from ivr.voice.desk_routes import DESK_KEY
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE
from tests.twiml_check import check_twiml

PSAP_LINE = "+15205550199"
"""The number the PSAP's phone system calls the desk from."""

CALL_TAKER_ID = "4821"
CALL_TAKER_PIN = "2468"

WEDNESDAY_11AM = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
"""11:00 in Phoenix: the embedded clinician Rivera, the navigator and 988 are on duty."""

WEDNESDAY_8AM = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
"""08:00 in Phoenix: no clinician until 10 a.m., no navigator until 9 a.m."""

CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


def call_url(call_sid: str) -> str:
    """REST URL of one call."""
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json"


def participant_url(conference: str, label: str) -> str:
    """REST URL of one conference participant, by label."""
    return (
        f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
        f"/Conferences/{conference}/Participants/{label}.json"
    )


def form_of(request: Any) -> dict[str, list[str]]:
    """The urlencoded body Twilio's client sent."""
    body = request.body
    if isinstance(body, bytes):
        body = body.decode()
    return parse_qs(body or "", keep_blank_values=True)


def call_json(sid: str, to: str = "+15205550151", status: str = "queued") -> str:
    """A minimal Calls API answer."""
    return json.dumps({"sid": sid, "account_sid": ACCOUNT_SID, "to": to, "status": status})


@pytest.fixture
def call_taker(engine: sa.Engine) -> Staff:
    """A call-taker with a desk PIN."""
    return create_staff(
        engine,
        staff_id=CALL_TAKER_ID,
        name="Casey Morgan",
        roles=["call_taker"],
        pin=CALL_TAKER_PIN,
    )


@pytest.fixture
def desk(app: Flask) -> Iterator[TransferDesk]:
    """The app's transfer desk with its clock at Wednesday 11:00 Phoenix time."""
    the_desk: TransferDesk = app.extensions[DESK_KEY]
    the_desk.clock = lambda: WEDNESDAY_11AM
    yield the_desk


@pytest.fixture
def worker_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time the handoff jobs see."""
    import workers.handoff_legs
    import workers.handoffs

    def set_time(moment: datetime) -> None:
        monkeypatch.setattr(workers.handoff_legs, "_now", lambda: moment)

    set_time(WEDNESDAY_11AM)
    return set_time


@pytest.fixture
def twilio_post(client: FlaskClient) -> Callable[..., Any]:
    """POST a status callback exactly as Twilio would (signed; optional idempotency token)."""

    def post(path: str, data: dict[str, str], token: str | None = None) -> Any:
        url = PUBLIC_BASE + path if path.startswith("/") else path
        local = url[len(PUBLIC_BASE) :]
        headers = {SIGNATURE_HEADER: compute_signature(AUTH_TOKEN, url, data.items())}
        if token:
            headers["I-Twilio-Idempotency-Token"] = token
        response = client.post(local, data=data, headers=headers)
        assert response.status_code == 200, response.data
        check_twiml(response.data)
        return response

    return post

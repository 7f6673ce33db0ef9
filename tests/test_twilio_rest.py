"""Twilio's REST API having a bad minute: retried with backoff and jitter, never a second call."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs

import pytest
import requests
import responses as responses_lib
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from ivr import twilio_rest
from ivr.twilio_rest import Backoff, CallOutcomeUnknown, RetriesExhausted
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN

API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
CALLS = f"{API}/Calls.json"
LIST_CALLS = re.compile(re.escape(CALLS) + r"\?.*")
TO = "+15205550177"
FROM = "+15205550100"
STARTED = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def call_json(sid: str, created: datetime) -> dict[str, object]:
    return {
        "sid": sid,
        "to": TO,
        "from": FROM,
        "status": "queued",
        "date_created": format_datetime(created, usegmt=True),
    }


def listing(*calls: dict[str, object]) -> dict[str, object]:
    return {"calls": list(calls), "next_page_uri": None, "page": 0, "page_size": 20}


@pytest.fixture
def client() -> Client:
    return Client(ACCOUNT_SID, AUTH_TOKEN)


class Waits:
    """Stands in for time.sleep: records each backoff instead of waiting."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    backoff = Backoff(attempts=6, base_seconds=0.5, cap_seconds=4.0)
    assert [backoff.delay(n, rng=lambda: 1.0) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [backoff.delay(n, rng=lambda: 0.25) for n in range(3)] == [0.125, 0.25, 0.5]


def test_a_fetch_is_retried_through_429_500_503_and_a_timeout(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    url = f"{API}/Calls/CA1.json"
    for status in (429, 500, 503):
        twilio_api.get(url, json={"code": 20000 + status, "message": "try later"}, status=status)
    twilio_api.get(url, body=requests.exceptions.ReadTimeout("read timed out"))
    twilio_api.get(url, json=call_json("CA1", STARTED))
    waits = Waits()
    call = twilio_rest.with_retries(
        lambda: client.calls("CA1").fetch(),
        what="fetch call",
        backoff=Backoff(attempts=5),
        sleep=waits,
        rng=lambda: 0.5,
    )
    assert call.sid == "CA1"
    assert waits.seconds == [0.25, 0.5, 1.0, 2.0]


def test_a_refusal_is_not_retried(twilio_api: responses_lib.RequestsMock, client: Client) -> None:
    twilio_api.get(f"{API}/Calls/CA2.json", json={"code": 20404, "message": "nope"}, status=404)
    waits = Waits()
    with pytest.raises(TwilioRestException):
        twilio_rest.with_retries(lambda: client.calls("CA2").fetch(), what="fetch", sleep=waits)
    assert waits.seconds == []


def test_retries_run_out_and_say_so(twilio_api: responses_lib.RequestsMock, client: Client) -> None:
    for _ in range(3):
        twilio_api.get(f"{API}/Calls/CA3.json", json={"code": 1, "message": "x"}, status=503)
    with pytest.raises(RetriesExhausted):
        twilio_rest.with_retries(
            lambda: client.calls("CA3").fetch(),
            what="fetch",
            backoff=Backoff(attempts=3),
            sleep=Waits(),
        )


def test_a_create_call_rate_limited_is_simply_sent_again(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    twilio_api.post(CALLS, json={"code": 20429, "message": "too many"}, status=429)
    twilio_api.post(CALLS, json=call_json("CAnew", STARTED), status=201)
    call = twilio_rest.create_call(
        client, to=TO, from_=FROM, url="https://x.example/twiml", attempt_started=STARTED,
        sleep=Waits(),
    )  # fmt: skip
    assert call.sid == "CAnew"
    creates = [c for c in twilio_api.calls if c.request.method == "POST"]
    assert len(creates) == 2
    assert parse_qs(creates[0].request.body) == {
        "To": [TO],
        "From": [FROM],
        "Url": ["https://x.example/twiml"],
    }


def test_a_create_call_that_timed_out_but_rang_is_found_not_placed_again(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    twilio_api.post(CALLS, body=requests.exceptions.ReadTimeout("read timed out"))
    older = call_json("CAold", STARTED - timedelta(hours=3))
    placed = call_json("CAplaced", STARTED + timedelta(seconds=1))
    twilio_api.get(LIST_CALLS, json=listing(placed, older))
    call = twilio_rest.create_call(
        client, to=TO, from_=FROM, url="https://x.example/twiml", attempt_started=STARTED,
        sleep=Waits(),
    )  # fmt: skip
    assert call.sid == "CAplaced"
    assert [c.request.method for c in twilio_api.calls] == ["POST", "GET"]
    assert parse_qs(twilio_api.calls[1].request.url.split("?", 1)[1]) == {
        "To": [TO],
        "From": [FROM],
        "PageSize": ["20"],
    }


def test_a_create_call_that_timed_out_without_ringing_is_sent_again_after_the_check(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    twilio_api.post(CALLS, json={"code": 20500, "message": "oops"}, status=500)
    twilio_api.get(LIST_CALLS, json=listing(call_json("CAold", STARTED - timedelta(hours=3))))
    twilio_api.post(CALLS, json=call_json("CAnew", STARTED), status=201)
    waits = Waits()
    call = twilio_rest.create_call(
        client, to=TO, from_=FROM, url="https://x.example/twiml", attempt_started=STARTED,
        sleep=waits, rng=lambda: 1.0,
    )  # fmt: skip
    assert call.sid == "CAnew"
    assert [c.request.method for c in twilio_api.calls] == ["POST", "GET", "POST"]
    assert waits.seconds == [0.5]


def test_a_job_run_again_after_a_crash_checks_before_calling(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    twilio_api.get(LIST_CALLS, json=listing(call_json("CAfirstrun", STARTED)))
    call = twilio_rest.create_call(
        client, to=TO, from_=FROM, url="https://x.example/twiml", attempt_started=STARTED,
        check_first=True, sleep=Waits(),
    )  # fmt: skip
    assert call.sid == "CAfirstrun"
    assert [c.request.method for c in twilio_api.calls] == ["GET"]


def test_when_twilio_cannot_be_asked_the_outcome_is_unknown_not_a_second_call(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    twilio_api.post(CALLS, body=requests.exceptions.ConnectionError("reset by peer"))
    for _ in range(2):
        twilio_api.get(LIST_CALLS, json={"code": 1, "message": "down"}, status=503)
    with pytest.raises(CallOutcomeUnknown):
        twilio_rest.create_call(
            client, to=TO, from_=FROM, url="https://x.example/twiml", attempt_started=STARTED,
            backoff=Backoff(attempts=2), sleep=Waits(),
        )  # fmt: skip
    assert [c.request.method for c in twilio_api.calls] == ["POST", "GET", "GET"]


def test_a_participant_whose_add_timed_out_is_looked_up_by_label(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    participants = f"{API}/Conferences/CF1/Participants"
    twilio_api.post(f"{participants}.json", body=requests.exceptions.ReadTimeout("timed out"))
    twilio_api.get(
        f"{participants}/helper-7.json",
        json={"call_sid": "CAhelper", "label": "helper-7", "conference_sid": "CF1"},
    )
    found = twilio_rest.add_participant(
        client, "CF1", label="helper-7", from_=FROM, to=TO, sleep=Waits()
    )
    assert found.call_sid == "CAhelper"
    assert parse_qs(twilio_api.calls[0].request.body) == {
        "From": [FROM],
        "To": [TO],
        "Label": ["helper-7"],
    }


def test_a_participant_not_found_after_a_503_is_added_again(
    twilio_api: responses_lib.RequestsMock, client: Client
) -> None:
    participants = f"{API}/Conferences/CF1/Participants"
    twilio_api.post(f"{participants}.json", json={"code": 1, "message": "x"}, status=503)
    twilio_api.get(
        f"{participants}/helper-8.json", json={"code": 20404, "message": "no"}, status=404
    )
    twilio_api.post(f"{participants}.json", json={"call_sid": "CAh8", "label": "helper-8"})
    found = twilio_rest.add_participant(
        client, "CF1", label="helper-8", from_=FROM, to=TO, sleep=Waits()
    )
    assert found.call_sid == "CAh8"
    assert [c.request.method for c in twilio_api.calls] == ["POST", "GET", "POST"]

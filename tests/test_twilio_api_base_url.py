"""TWILIO_API_BASE_URL: workers can be pointed at a stand-in for api.twilio.com (a local fake in
tests and benchmarks), never at a plain-http host elsewhere (REST requests carry the token)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ivr import twilio_rest
from ivr.settings import SettingsError, load_settings
from tests.conftest import ACCOUNT_SID
from tests.fake_twilio import FakeTwilio


def _env(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**env, **extra}


def test_workers_talk_to_twilio_itself_unless_told_otherwise(env: dict[str, str]) -> None:
    assert load_settings(env).twilio_api_base_url == "https://api.twilio.com"
    custom = load_settings(_env(env, TWILIO_API_BASE_URL="https://twilio-proxy.example.org/"))
    assert custom.twilio_api_base_url == "https://twilio-proxy.example.org"


@pytest.mark.parametrize(
    "url",
    [
        "http://twilio-proxy.example.org",  # the auth token would cross a network in clear
        "ftp://127.0.0.1:21",
        "https://twilio-proxy.example.org/2010-04-01",
        "https://twilio-proxy.example.org?x=1",
        "127.0.0.1:8080",
    ],
)
def test_an_unsafe_or_malformed_twilio_base_url_stops_startup_naming_it(
    env: dict[str, str], url: str
) -> None:
    with pytest.raises(SettingsError, match="TWILIO_API_BASE_URL"):
        load_settings(_env(env, TWILIO_API_BASE_URL=url))


def test_a_worker_pointed_at_a_local_fake_places_one_call_there_and_finds_it_again(
    env: dict[str, str],
) -> None:
    with FakeTwilio(ACCOUNT_SID) as fake:
        settings = load_settings(_env(env, TWILIO_API_BASE_URL=fake.base_url))
        client = twilio_rest.make_client(settings, timeout=5)
        started = datetime.now(UTC)
        call = twilio_rest.create_call(
            client, to="+15205550123", from_="+15205550100", attempt_started=started,
            url="https://bridgeline.example.org/voice/callback/answered",
        )  # fmt: skip
        assert call.sid in fake.calls
        # A rerun of the job checks Twilio's list first and gets the same call back.
        again = twilio_rest.create_call(
            client, to="+15205550123", from_="+15205550100", attempt_started=started,
            check_first=True, url="https://bridgeline.example.org/voice/callback/answered",
        )  # fmt: skip
        assert again.sid == call.sid
        created = fake.created_calls()
        assert len(created) == 1
        assert created[0].field("To") == "+15205550123"
        assert created[0].account == ACCOUNT_SID
        assert len(fake.recorded("GET", r"/Calls\.json")) == 1

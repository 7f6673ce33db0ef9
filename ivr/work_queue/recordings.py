"""Fetch a resident's recording from Twilio for staff, without the page ever holding its URL.

The URL is built from the RecordingSid (never from a stored URL), under TWILIO_API_BASE_URL,
with the account's credentials (Twilio's "HTTP auth on media URLs"), so the proxy can reach
nothing but this account's recordings.
"""

from __future__ import annotations

import re

import requests

from ivr.settings import Settings

RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
"""Twilio's RecordingSid: RE and 32 hex digits."""

TIMEOUT_SECONDS = 10
"""How long the proxy waits for Twilio to start answering."""


def is_recording_sid(value: str | None) -> bool:
    return bool(value and RECORDING_SID.match(value))


def media_url(settings: Settings, recording_sid: str) -> str:
    """The MP3 of a recording of this account."""
    if not is_recording_sid(recording_sid):
        raise ValueError("not a RecordingSid")
    base = settings.twilio_api_base_url.rstrip("/")
    return (
        f"{base}/2010-04-01/Accounts/{settings.twilio_account_sid}/Recordings/{recording_sid}.mp3"
    )


def fetch(settings: Settings, recording_sid: str) -> requests.Response:
    """Twilio's answer for the recording, streamed (the caller closes it)."""
    return requests.get(
        media_url(settings, recording_sid),
        auth=(settings.twilio_account_sid, settings.twilio_auth_token),
        timeout=TIMEOUT_SECONDS,
        stream=True,
    )

"""Bad input at every self-service prompt still gets valid TwiML that routes or re-asks the caller."""

from __future__ import annotations

import pytest

from tests.twiml_check import check_twiml

STEPS = [
    "/voice/self-service",
    "/voice/self-service/language",
    "/voice/self-service/menu/main/choose?lang=en&attempt=0",
    "/voice/self-service/menu/information/choose?lang=es&attempt=2",
    "/voice/self-service/menu/no-such-menu/choose?lang=xx&attempt=abc",
    "/voice/self-service/after?lang=en",
    "/voice/self-service/report/category?lang=en&attempt=0",
    "/voice/self-service/report/no-audio?lang=en&cat=noise&attempt=1",
    "/voice/self-service/report/recorded?lang=en&cat=noise",
    "/voice/self-service/report/recorded?lang=en&cat=not-a-category",
    "/voice/self-service/report/after?lang=en&ref=12345678",
    "/voice/self-service/report/recording-status",
    "/voice/self-service/status/check?lang=en&attempt=0",
    "/voice/self-service/info/hours/choose?lang=en",
    "/voice/self-service/info/nope/choose?lang=en",
    "/voice/self-service/dial-result?lang=en&line=nurse",
    "/voice/self-service/dial-result?lang=en&line=emergency",
    "/voice/self-service/dial-result?lang=en&line=unknown",
    "/voice/self-service/queue/wait?lang=en",
    "/voice/self-service/queue/offer?lang=en",
    "/voice/self-service/queue/done?lang=en",
    "/voice/self-service/callback/caller-id?lang=en&src=resident_menu",
    "/voice/self-service/callback/entered?lang=en&src=bogus",
    "/voice/self-service/callback/confirm?lang=en&src=resident_menu",
    "/voice/self-service/callback/consent?lang=en&src=resident_menu",
    "/voice/self-service/menu/main?lang=en&attempt=99999",
    "/voice/fallback",
]

BAD_INPUTS = [
    {"Digits": "abc"},
    {"Digits": "9" * 500},
    {"Digits": "*"},
    {"Digits": "#"},
    {"Digits": ""},
    {"SpeechResult": ""},
    {"SpeechResult": "   "},
    {"SpeechResult": "ñ" * 5000},
    {"CallSid": "CA-unknown-call"},
    {"CallSid": "", "From": ""},
    {"From": "+19005550100", "Digits": "1"},
    {"From": "not a number", "Digits": "1"},
    {"QueuePosition": "-3", "QueueTime": "99999999999999", "QueueResult": "system-error"},
    {"DialCallStatus": "busy", "RecordingDuration": "abc", "RecordingSid": "RE1"},
]


@pytest.mark.parametrize("step", STEPS)
def test_every_prompt_answers_bad_input_with_valid_twiml(signed_post, step: str) -> None:
    for fields in BAD_INPUTS:
        response = signed_post(step, fields)
        assert response.status_code == 200, (fields, response.data)
        root = check_twiml(response.data)
        assert len(root) > 0 or step.endswith("recording-status"), fields


@pytest.mark.parametrize("step", STEPS)
def test_every_prompt_answers_a_request_with_no_fields_at_all(client, step: str) -> None:
    from ivr.security import SIGNATURE_HEADER, compute_signature

    signature = compute_signature(
        "test-auth-token-0123456789", "https://bridgeline.example.org" + step, []
    )
    response = client.post(step, headers={SIGNATURE_HEADER: signature})
    assert response.status_code == 200
    check_twiml(response.data)

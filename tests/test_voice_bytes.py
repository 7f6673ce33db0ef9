"""Every byte a forger, a broken proxy or a new Twilio field could send still gets valid TwiML.

XML 1.0 cannot carry NUL, most C0 control characters, U+FFFE/U+FFFF or lone surrogates: echoed
into a <Say> or an attribute they make a document no parser accepts, and Twilio plays "an
application error". Such characters are stripped at the edge, from every field of every voice
route (form, query, path); every path under /voice answers TwiML, after the signature check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from ivr.security import SIGNATURE_HEADER, compute_signature
from ivr.xml_text import xml_safe
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE
from tests.twiml_check import check_twiml

UNCARRIABLE = [
    "\x00",
    "\x01",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1f",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udfff",
]
"""Characters XML 1.0 cannot carry (tab, newline and carriage return it can)."""


def _signed(client: FlaskClient, method: str, path: str, form: dict[str, str]) -> Any:
    url = PUBLIC_BASE + path
    signature = compute_signature(AUTH_TOKEN, url, form.items() if method == "POST" else [])
    headers = {SIGNATURE_HEADER: signature}
    if method == "GET":
        return client.get(path, headers=headers)
    return client.post(path, data=form, headers=headers)


def _raw_post(client: FlaskClient, path: str, body: bytes, signed_as: list[tuple[str, str]]) -> Any:
    """POST a raw urlencoded body (bytes Twilio never sends), signed over `signed_as`."""
    signature = compute_signature(AUTH_TOKEN, PUBLIC_BASE + path, signed_as)
    return client.post(
        path,
        data=body,
        content_type="application/x-www-form-urlencoded",
        headers={SIGNATURE_HEADER: signature},
    )


@pytest.mark.parametrize("char", UNCARRIABLE, ids=[f"U+{ord(c):04X}" for c in UNCARRIABLE])
def test_xml_safe_strips_what_xml_cannot_carry_and_keeps_the_rest(char: str) -> None:
    assert xml_safe(f"5{char}2\t0\n¿sí? 📞") == "52\t0\n¿sí? 📞"


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\ufffe", "\x0b"])
@pytest.mark.parametrize(
    "path",
    [
        "/voice/self-service/report/category?lang=en",
        "/voice/self-service/info/hours/choose?lang=en",
        "/voice/self-service/menu/main/choose?lang=en",
        "/voice/self-service/callback/entered?lang=en&src=resident_menu",
        "/voice/self-service/report/status?lang=en",
        "/voice/transfer-desk/id",
    ],
)
def test_a_control_character_in_the_digits_gets_valid_twiml(
    client: FlaskClient, path: str, char: str
) -> None:
    for digits in (char, f"{char}#", f"9{char}9"):
        form = {"CallSid": "CA" + "a" * 32, "From": "+15205550123", "Digits": digits}
        response = _signed(client, "POST", path, form)
        assert response.status_code == 200 and response.mimetype == "text/xml"
        check_twiml(response.data)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\ufffe"])
def test_a_control_character_in_speech_or_the_path_gets_valid_twiml(
    client: FlaskClient, char: str
) -> None:
    form = {"CallSid": "CA" + "b" * 32, "SpeechResult": f"report a pot{char}hole", "Digits": ""}
    response = _signed(client, "POST", "/voice/self-service/report/category?lang=en", form)
    check_twiml(response.data)
    path = "/voice/self-service/info/" + quote(f"ho{char}urs", safe="") + "/choose?lang=es"
    check_twiml(_signed(client, "POST", path, {"Digits": char}).data)


def test_invalid_utf8_in_the_body_gets_valid_twiml(client: FlaskClient) -> None:
    # Werkzeug keeps bytes that are not UTF-8 percent-encoded; the NUL among them is decoded.
    body = b"CallSid=CA" + b"c" * 32 + b"&Digits=%FF%FE%00&SpeechResult=%ED%A0%80%C3"
    decoded = [("CallSid", "CA" + "c" * 32), ("Digits", "%FF%FE\x00"),
               ("SpeechResult", "%ED%A0%80%C3")]  # fmt: skip
    response = _raw_post(client, "/voice/self-service/report/category?lang=en", body, decoded)
    assert response.status_code == 200, response.data[:200]
    check_twiml(response.data)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize(
    "path", ["/voice", "/voice/", "/voice/no-such-thing", "/voice/self-service/", "/voice//x"]
)
def test_every_path_under_voice_answers_twiml_to_every_method(
    client: FlaskClient, path: str, method: str
) -> None:
    url = PUBLIC_BASE + path
    headers = {SIGNATURE_HEADER: compute_signature(AUTH_TOKEN, url, [])}
    response = client.open(path, method=method, headers=headers)
    assert response.status_code == 200, (path, method, response.status_code)
    assert response.mimetype == "text/xml"
    check_twiml(response.data)
    unsigned = client.open(path, method=method)
    assert unsigned.status_code == 403


def test_post_voice_without_the_slash_reaches_a_person_not_404_html(client: FlaskClient) -> None:
    form = {"CallSid": "CA" + "d" * 32, "From": "+15205550123"}
    response = _signed(client, "POST", "/voice", form)
    root = check_twiml(response.data)
    assert [n.text for n in root.iter("Number")] == ["+15205550311"]  # the operator line


def test_a_huge_field_gets_twiml_and_a_body_too_big_to_check_is_refused(
    client: FlaskClient,
) -> None:
    path = "/voice/self-service/report/category?lang=en"
    form = {"CallSid": "CA" + "e" * 32, "SpeechResult": "pothole " * 20_000}  # 160 KB
    check_twiml(_signed(client, "POST", path, form).data)
    repeated = [("Digits", "1\x00")] * 5_000
    signature = compute_signature(AUTH_TOKEN, PUBLIC_BASE + path, repeated)
    response = client.post(path, data=MultiDict(repeated), headers={SIGNATURE_HEADER: signature})
    check_twiml(response.data)
    # Over MAX_CONTENT_LENGTH the signature cannot be checked: refused, signed or not.
    form = {"CallSid": "CA" + "e" * 32, "SpeechResult": "x" * 300_000}
    assert _signed(client, "POST", path, form).status_code == 403
    assert _signed(client, "POST", "/voice/no-such-thing", form).status_code == 403

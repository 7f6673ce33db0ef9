"""Only Twilio gets in: signatures checked the way Twilio computes them, wherever we are deployed."""

from __future__ import annotations

import hmac

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from ivr import security
from ivr.security import SIGNATURE_HEADER, compute_signature, is_valid_signature
from tests.conftest import AUTH_TOKEN, CALLER, PUBLIC_BASE
from tests.twiml_check import check_twiml

REPORT_PATH = "/voice/self-service/report/recorded"
REPORT_QUERY = "lang=en&cat=noise"
REPORT_FORM = {
    "CallSid": "CA" + "b" * 32,
    "From": CALLER,
    "To": "+15205550100",
    "RecordingSid": "RE" + "b" * 32,
    "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/REb",
    "RecordingDuration": "12",
}


def rows(engine: sa.Engine) -> dict[str, int]:
    names = [n for n in sa.inspect(engine).get_table_names() if n != "alembic_version"]
    with engine.connect() as conn:
        return {n: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in names}


def post_report(client: FlaskClient, signed_url: str, **kwargs) -> object:
    signature = compute_signature(AUTH_TOKEN, signed_url, REPORT_FORM.items())
    return client.post(
        REPORT_PATH,
        query_string=REPORT_QUERY,
        data=REPORT_FORM,
        headers={SIGNATURE_HEADER: signature},
        **kwargs,
    )


@settings(max_examples=60, deadline=None)
@given(
    url=st.sampled_from(
        [PUBLIC_BASE + "/voice/self-service", PUBLIC_BASE + "/voice/x?lang=es&attempt=1"]
    ),
    params=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20), max_size=8),
)
def test_our_signature_is_the_one_twilio_computes(url: str, params: dict[str, str]) -> None:
    expected = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    assert compute_signature(AUTH_TOKEN, url, params.items()) == expected


def test_signature_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    url = PUBLIC_BASE + "/voice/self-service"
    form = {"CallSid": "CA1"}
    good = compute_signature(AUTH_TOKEN, url, form.items())
    from werkzeug.datastructures import MultiDict

    assert is_valid_signature(AUTH_TOKEN, url, MultiDict(form), good)
    assert not is_valid_signature(AUTH_TOKEN, url, MultiDict(form), "A" + good[1:])
    assert compared, "signatures must be compared with hmac.compare_digest"
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in compared)


def test_behind_a_proxy_the_public_url_is_what_counts(client: FlaskClient, engine) -> None:
    # The proxy forwards to http://10.0.0.7:5000 with its own Host; Twilio signed the public URL.
    internal = "http://10.0.0.7:5000"
    signature = compute_signature(
        AUTH_TOKEN, f"{PUBLIC_BASE}{REPORT_PATH}?{REPORT_QUERY}", REPORT_FORM.items()
    )
    response = client.post(
        REPORT_PATH,
        base_url=internal,
        query_string=REPORT_QUERY,
        data=REPORT_FORM,
        headers={
            SIGNATURE_HEADER: signature,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "bridgeline.example.org",
        },
    )
    assert response.status_code == 200
    check_twiml(response.data)
    assert rows(engine)["service_requests"] == 1


def test_a_signature_for_the_internal_address_is_refused(client: FlaskClient, engine) -> None:
    internal = "http://10.0.0.7:5000"
    signature = compute_signature(
        AUTH_TOKEN, f"{internal}{REPORT_PATH}?{REPORT_QUERY}", REPORT_FORM.items()
    )
    response = client.post(
        REPORT_PATH,
        base_url=internal,
        query_string=REPORT_QUERY,
        data=REPORT_FORM,
        headers={SIGNATURE_HEADER: signature},
    )
    assert response.status_code == 403
    assert rows(engine)["service_requests"] == 0


@pytest.mark.parametrize(
    ("signed_base", "accepted"),
    [
        (PUBLIC_BASE, True),
        ("https://bridgeline.example.org:443", True),  # Twilio sometimes signs the default port
        ("https://bridgeline.example.org:8443", False),
        ("http://bridgeline.example.org", False),
        ("https://bridgeline.example.org.evil.test", False),
    ],
)
def test_port_variants_of_the_public_url(
    client: FlaskClient, engine, signed_base: str, accepted: bool
) -> None:
    response = post_report(client, f"{signed_base}{REPORT_PATH}?{REPORT_QUERY}")
    assert (response.status_code == 200) is accepted
    assert rows(engine)["service_requests"] == (1 if accepted else 0)


def test_a_public_url_configured_with_its_port_accepts_twilio_signing_without_it(
    env: dict[str, str], _table_names
) -> None:
    from ivr import create_app

    app = create_app(
        {**env, "PUBLIC_BASE_URL": "https://bridgeline.example.org:443", "TESTING": True}
    )
    path = "/voice/self-service"
    signature = compute_signature(AUTH_TOKEN, PUBLIC_BASE + path, [("CallSid", "CA1")])
    response = app.test_client().post(
        path, data={"CallSid": "CA1"}, headers={SIGNATURE_HEADER: signature}
    )
    assert response.status_code == 200
    app.extensions["bridgeline"].engine.dispose()


def test_signed_get_is_checked_on_the_url_and_its_query(client: FlaskClient) -> None:
    path = "/voice/self-service/menu/main"
    signature = compute_signature(AUTH_TOKEN, f"{PUBLIC_BASE}{path}?lang=es&attempt=0", [])
    ok = client.get(path, query_string="lang=es&attempt=0", headers={SIGNATURE_HEADER: signature})
    assert ok.status_code == 200
    assert 'language="es-US"' in ok.get_data(as_text=True)
    tampered = client.get(
        path, query_string="lang=en&attempt=0", headers={SIGNATURE_HEADER: signature}
    )
    assert tampered.status_code == 403


def test_a_get_cannot_smuggle_form_fields_past_the_signature(client: FlaskClient) -> None:
    # A GET's body is not part of what Twilio signs, so it must not be read as Twilio's fields.
    path = "/voice/self-service/language"
    signature = compute_signature(AUTH_TOKEN, f"{PUBLIC_BASE}{path}", [])
    response = client.get(
        path,
        data={"Digits": "2"},
        headers={SIGNATURE_HEADER: signature, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert 'language="es-US"' not in response.get_data(as_text=True)


def test_percent_encoded_urls_are_checked_as_twilio_sent_them(client: FlaskClient) -> None:
    path = "/voice/self-service/info/caf%C3%A9/choose"
    form = {"CallSid": "CA1", "Digits": "8"}
    as_sent = compute_signature(AUTH_TOKEN, PUBLIC_BASE + path, form.items())
    decoded = compute_signature(
        AUTH_TOKEN, PUBLIC_BASE + "/voice/self-service/info/café/choose", form.items()
    )
    assert client.post(path, data=form, headers={SIGNATURE_HEADER: as_sent}).status_code == 200
    assert client.post(path, data=form, headers={SIGNATURE_HEADER: decoded}).status_code == 403


def test_field_order_and_repeated_fields_do_not_matter(client: FlaskClient) -> None:
    path = "/voice/self-service/language"
    pairs = [("Digits", "1"), ("CallSid", "CA1"), ("Digits", "1"), ("From", CALLER)]
    signature = compute_signature(AUTH_TOKEN, PUBLIC_BASE + path, reversed(pairs))
    from werkzeug.datastructures import MultiDict

    response = client.post(path, data=MultiDict(pairs), headers={SIGNATURE_HEADER: signature})
    assert response.status_code == 200


def test_a_rejected_request_touches_nothing(
    client: FlaskClient, engine, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    conn = redis.Redis.from_url(redis_url)
    before = rows(engine)
    forged = compute_signature("a-guessed-token", PUBLIC_BASE + REPORT_PATH, REPORT_FORM.items())
    for headers in ({}, {SIGNATURE_HEADER: ""}, {SIGNATURE_HEADER: forged}):
        response = client.post(
            REPORT_PATH, query_string=REPORT_QUERY, data=REPORT_FORM, headers=headers
        )
        assert response.status_code == 403
        assert b"Response" not in response.data
    assert rows(engine) == before
    assert conn.dbsize() == 0
    text = caplog.text
    assert CALLER not in text and "Recordings" not in text
    conn.close()


def test_unknown_voice_urls_need_a_signature_too(signed_post, client: FlaskClient) -> None:
    assert client.post("/voice/no-such-step", data={"CallSid": "CA1"}).status_code == 403
    response = signed_post("/voice/no-such-step")
    assert response.status_code == 200
    assert b"<Dial" in response.data


def test_health_endpoints_need_no_signature(client: FlaskClient) -> None:
    assert client.get("/healthz").status_code == 200


def test_every_voice_route_refuses_a_request_signed_with_another_token(
    app: Flask, signed_post
) -> None:
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/voice") or rule.arguments:
            continue
        response = signed_post(rule.rule, token="another-accounts-token")
        assert response.status_code == 403, rule.rule

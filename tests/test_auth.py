"""Login, sessions, CSRF and roles, as staff (and strangers) meet them in the browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from ivr import accounts, auth, create_app
from ivr.store.account_tables import login_attempts
from ivr.voice.common import require_twilio_signature
from tests.console_fixtures import (
    PASSWORD,
    LoggedIn,
    MakeStaff,
    StaffClient,
    csrf_token_of,
    logged_in_client,
    make_staff,
    sign_in,
)

FIXTURES = (make_staff, logged_in_client)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

ROLES = ("call_taker", "clinician", "supervisor")

PUBLIC_ENDPOINTS = {
    "health.healthz",
    "health.readyz",
    "metrics.metrics_page",  # Prometheus scrapes it without a session; it holds no caller data
    "auth.login",
    "auth.logout",
    "static",
}
"""Non-voice endpoints anyone may reach: probes, the metrics scrape, the login form, sign-out."""

PARTNER_API_BLUEPRINTS = {"open311"}
"""Open311: reads are public as GeoReport v2 says, filing takes a partner key, never a staff
session (tests/test_open311.py checks both)."""


def test_login_page_sets_a_secure_httponly_samesite_session_cookie(client: FlaskClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', page.get_data(as_text=True))
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("bridgeline_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_call_taker_signs_in_and_lands_on_the_console(
    client: FlaskClient, make_staff: MakeStaff
) -> None:
    staff = make_staff("call_taker")
    before = client.get("/login").headers["Set-Cookie"].split(";")[0]
    answer = sign_in(client, staff.staff_id)
    assert answer.status_code == 302 and answer.headers["Location"] == "/console"
    after = answer.headers["Set-Cookie"].split(";")[0]
    assert after != before  # a fresh session after login, not the anonymous one
    assert client.get("/console").status_code == 200


def test_each_role_lands_on_its_own_first_page(client: FlaskClient, make_staff: MakeStaff) -> None:
    clinician = make_staff("clinician", helper_type="embedded_clinician")
    answer = sign_in(client, clinician.staff_id)
    assert answer.headers["Location"] == "/console/clinician"
    supervisor = make_staff("supervisor")
    other = client.application.test_client()
    answer = sign_in(other, supervisor.staff_id)
    expected = (
        "/dashboard" if "dashboard.index" in client.application.view_functions else "/account"
    )
    assert answer.headers["Location"].startswith(expected)


def test_a_wrong_password_and_an_unknown_id_get_the_same_answer(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    staff = make_staff("call_taker")
    wrong = sign_in(client, staff.staff_id, "not the password at all")
    unknown = sign_in(client, "99999", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "Staff ID or password is wrong." in wrong.get_data(as_text=True)
    assert "Staff ID or password is wrong." in unknown.get_data(as_text=True)
    assert client.get("/console").status_code == 302
    with engine.connect() as conn:
        rows = conn.execute(sa.select(login_attempts.c.succeeded)).all()
    assert [r.succeeded for r in rows] == [False, False]


def test_login_without_the_csrf_token_is_refused(
    client: FlaskClient, make_staff: MakeStaff
) -> None:
    staff = make_staff("call_taker")
    client.get("/login")
    answer = client.post("/login", data={"staff_id": staff.staff_id, "password": PASSWORD})
    assert answer.status_code == 400
    assert client.get("/console").status_code == 302


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
    client: FlaskClient, make_staff: MakeStaff
) -> None:
    staff = make_staff("call_taker")
    bystander = make_staff("call_taker")
    for _ in range(auth.ACCOUNT_FAILURE_LIMIT):
        assert sign_in(client, staff.staff_id, "guess guess guess").status_code == 401
    locked = sign_in(client, staff.staff_id)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.get_data(as_text=True)
    # The lock is on that account: a colleague at the same address still signs in.
    assert sign_in(client, bystander.staff_id).status_code == 302


def test_a_success_resets_the_account_count(client: FlaskClient, make_staff: MakeStaff) -> None:
    staff = make_staff("call_taker")
    for _ in range(auth.ACCOUNT_FAILURE_LIMIT - 1):
        sign_in(client, staff.staff_id, "guess guess guess")
    assert sign_in(client, staff.staff_id).status_code == 302
    other = client.application.test_client()
    for _ in range(auth.ACCOUNT_FAILURE_LIMIT - 1):
        sign_in(other, staff.staff_id, "guess guess guess")
    assert sign_in(other, staff.staff_id).status_code == 302


def test_one_address_guessing_many_ids_is_locked_out(
    client: FlaskClient, make_staff: MakeStaff, engine: sa.Engine
) -> None:
    staff = make_staff("call_taker")
    for n in range(auth.ADDRESS_FAILURE_LIMIT):
        assert sign_in(client, f"{70000 + n}", "guess guess guess").status_code == 401
    assert sign_in(client, staff.staff_id).status_code == 429
    elsewhere = client.application.test_client()
    answer = elsewhere.post(
        "/login",
        data={
            "staff_id": staff.staff_id,
            "password": PASSWORD,
            "csrf_token": csrf_token_of(elsewhere),
        },
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert answer.status_code == 302


@pytest.fixture
def app_without_redis(env: dict[str, str], _table_names: list[str]) -> Iterator[Flask]:
    application = create_app({**env, "REDIS_URL": "redis://127.0.0.1:1/0", "TESTING": True})
    yield application
    application.extensions["bridgeline"].engine.dispose()


def test_login_and_its_rate_limit_work_when_redis_is_down(app_without_redis: Flask) -> None:
    engine = app_without_redis.extensions["bridgeline"].engine
    with engine.begin() as conn:
        conn.execute(login_attempts.delete())
    staff = accounts.create_staff(
        engine, staff_id="6100", name="Redis Down", roles=["call_taker"], password=PASSWORD
    )
    client = app_without_redis.test_client()
    try:
        for _ in range(auth.ACCOUNT_FAILURE_LIMIT):
            assert sign_in(client, staff.staff_id, "guess guess guess").status_code == 401
        assert sign_in(client, staff.staff_id).status_code == 429
        accounts.create_staff(
            engine, staff_id="6101", name="Also Here", roles=["call_taker"], password=PASSWORD
        )
        assert sign_in(client, "6101").status_code == 302
        assert client.get("/console").status_code == 200
    finally:
        with engine.begin() as conn:
            conn.execute(login_attempts.delete())
            conn.exec_driver_sql("DELETE FROM staff")


def test_signing_out_takes_a_post_with_the_token(logged_in_client: LoggedIn) -> None:
    user = logged_in_client("call_taker")
    assert user.get("/logout").status_code == 405
    assert user.client.post("/logout").status_code == 400  # no token: another site cannot
    assert user.get("/console").status_code == 200
    answer = user.post("/logout")
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert user.get("/console").status_code == 302


def test_a_password_change_or_disabling_ends_open_sessions(
    logged_in_client: LoggedIn, engine: sa.Engine
) -> None:
    first = logged_in_client("call_taker")
    assert first.staff is not None
    accounts.set_password(engine, first.staff.staff_id, "another long password")
    assert first.get("/console").status_code == 302
    second = logged_in_client("clinician")
    assert second.staff is not None
    accounts.set_active(engine, second.staff.staff_id, False)
    assert second.get("/console/clinician").status_code == 302
    assert second.get("/api/console/clinician/handoffs").status_code == 401


def test_a_session_older_than_a_shift_asks_for_the_password_again(
    logged_in_client: LoggedIn,
) -> None:
    user = logged_in_client("call_taker")
    with user.client.session_transaction() as sess:
        sess["since"] -= int(auth.SESSION_LIFETIME.total_seconds()) + 1
    assert user.get("/console").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example.com/x", "https://evil.example.com/", "/\\evil"])
def test_login_never_sends_you_to_another_site(
    client: FlaskClient, make_staff: MakeStaff, target: str
) -> None:
    staff = make_staff("call_taker")
    token = csrf_token_of(client)
    answer = client.post(
        "/login",
        data={
            "staff_id": staff.staff_id,
            "password": PASSWORD,
            "csrf_token": token,
            "next": target,
        },
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/console"


def test_an_anonymous_visit_comes_back_to_the_page_after_login(
    client: FlaskClient, make_staff: MakeStaff
) -> None:
    staff = make_staff("clinician", helper_type="navigator")
    first = client.get("/console/clinician")
    assert first.status_code == 302 and first.headers["Location"].startswith("/login?next=")
    token = csrf_token_of(client)
    answer = client.post(
        "/login",
        data={
            "staff_id": staff.staff_id,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/console/clinician",
        },
    )
    assert answer.headers["Location"] == "/console/clinician"


def test_json_writes_need_the_csrf_header(logged_in_client: LoggedIn) -> None:
    user = logged_in_client("call_taker")
    body = {"answers": {"weapon": True}}
    refused = user.client.post("/api/console/eligibility", json=body)
    assert refused.status_code == 400 and refused.is_json
    assert user.post("/api/console/eligibility", json=body).status_code == 200


def test_twilio_webhooks_are_not_asked_for_a_csrf_token(signed_post: Any) -> None:
    answer = signed_post("/voice/self-service")
    assert answer.status_code == 200 and answer.mimetype == "text/xml"


def test_pages_behind_the_login_carry_protective_headers(logged_in_client: LoggedIn) -> None:
    user = logged_in_client("call_taker")
    page = user.get("/console")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


# ------------------------------------------------------------ every route, every role


def _is_voice(app: Flask, rule: Rule) -> bool:
    if rule.rule.startswith("/voice/"):
        return True
    blueprint = rule.endpoint.rpartition(".")[0] if "." in rule.endpoint else None
    return bool(blueprint) and require_twilio_signature in app.before_request_funcs.get(
        blueprint, []
    )


def _sample_url(rule: Rule) -> str:
    values = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        kind = type(converter).__name__
        values[name] = 1 if kind in ("IntegerConverter", "NumberConverter") else "x1"
    url = rule.rule
    for name, value in values.items():
        url = re.sub(rf"<[^>]*\b{name}>", str(value), url)
    return url


def _web_routes(app: Flask) -> list[tuple[Rule, str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if _is_voice(app, rule) or rule.endpoint.endswith("static"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule, method, _sample_url(rule)))
    return routes


def _check_refusal(answer: Any, who: str, required: frozenset[str], rule: str, where: str) -> None:
    """Anonymous: login page or 401 JSON; a role not required: 403; a required role: let in."""
    if who == "anonymous":
        if rule.startswith("/api/"):
            assert answer.status_code == 401 and answer.is_json, where
        else:
            assert answer.status_code == 302, where
            assert answer.headers["Location"].startswith("/login"), where
    elif who in required:
        assert answer.status_code not in (401, 403), where
        assert not answer.headers.get("Location", "").startswith("/login"), where
    else:
        assert answer.status_code == 403, where
        if rule.startswith("/api/"):
            assert answer.is_json, where


def test_every_web_route_refuses_whoever_may_not_use_it(
    app: Flask, logged_in_client: LoggedIn
) -> None:
    clients: dict[str, StaffClient] = {"anonymous": logged_in_client()}
    for role in ROLES:
        clients[role] = logged_in_client(role)
    routes = _web_routes(app)
    assert any(r.rule == "/console" for r, _, _ in routes)
    checked = 0
    for rule, method, url in routes:
        view = app.view_functions[rule.endpoint]
        required: frozenset[str] | None = getattr(view, "required_roles", None)
        if getattr(view, "partner_scope", None):
            # A partner API takes a partner key, never a staff session: 401 JSON without one.
            for who, user in clients.items():
                answer = user.open(url, method, json={})
                assert answer.status_code == 401 and answer.is_json, f"{who} {method} {url}"
                checked += 1
            continue
        if rule.endpoint.split(".")[0] in PARTNER_API_BLUEPRINTS:
            continue
        if required is None:
            assert rule.endpoint in PUBLIC_ENDPOINTS, (
                f"{method} {rule.rule} ({rule.endpoint}) has no require_role and is not public"
            )
            continue
        for who, user in clients.items():
            answer = user.open(url, method, json={})
            try:
                _check_refusal(answer, who, required, rule.rule, f"{who} {method} {url}")
            finally:
                answer.close()  # a streamed answer holds its request context until closed
            checked += 1
    assert checked >= 4 * 3


def test_require_role_is_refused_without_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        auth.require_role()

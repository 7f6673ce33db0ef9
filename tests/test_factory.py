"""create_app() and the settings it reads from the environment."""

from __future__ import annotations

import pytest

from ivr import create_app
from ivr.settings import SettingsError, load_settings


def test_factory_builds_an_app_with_the_voice_routes(app) -> None:
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/voice/self-service", "/voice/fallback", "/healthz", "/readyz"} <= rules


@pytest.mark.parametrize("missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL"])
def test_a_missing_setting_stops_startup_naming_it(env: dict[str, str], missing: str) -> None:
    broken = {**env, missing: ""}
    with pytest.raises(SettingsError, match=missing):
        load_settings(broken)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUBLIC_BASE_URL", "bridgeline.example.org"),
        ("TWILIO_ACCOUNT_SID", "XX123"),
        ("DATABASE_URL", "mysql://localhost/x"),
        ("REDIS_URL", "http://localhost"),
        ("BRIDGELINE_CONFIG", "/no/such/folder"),
        ("REDIS_TIMEOUT_SECONDS", "soon"),
    ],
)
def test_a_malformed_setting_stops_startup_naming_it(
    env: dict[str, str], name: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({**env, name: value})


def test_postgres_urls_use_the_psycopg_driver(env: dict[str, str]) -> None:
    settings = load_settings({**env, "DATABASE_URL": "postgres://u@db/bridgeline"})
    assert settings.database_url == "postgresql+psycopg://u@db/bridgeline"


def test_a_broken_config_file_stops_create_app(env: dict[str, str], tmp_path) -> None:
    (tmp_path / "lines.yaml").write_text("region: US\n", encoding="utf-8")
    (tmp_path / "menus.yaml").write_text("greeting: {en: hi, es: hola}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lines.yaml.*caller_id"):
        create_app({**env, "BRIDGELINE_CONFIG": str(tmp_path)})


def test_health_endpoints(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {
        "config": "ok",
        "redis": "ok",
        "database": "ok",
    }


def test_behind_trusted_proxies_the_client_address_comes_from_x_forwarded_for(
    env, _table_names
) -> None:
    from flask import request

    app = create_app({**env, "TRUSTED_PROXIES": "1"})
    seen: list[str | None] = []

    @app.get("/probe-address")
    def probe() -> str:
        seen.append(request.remote_addr)
        return "ok"

    app.test_client().get("/probe-address", headers={"X-Forwarded-For": "203.0.113.9"})
    untrusted = create_app(env)
    untrusted.add_url_rule("/probe-address", view_func=probe)
    untrusted.test_client().get("/probe-address", headers={"X-Forwarded-For": "203.0.113.9"})
    assert seen == ["203.0.113.9", "127.0.0.1"]
    app.extensions["bridgeline"].engine.dispose()
    untrusted.extensions["bridgeline"].engine.dispose()


def test_trusted_proxies_must_be_a_small_whole_number(env) -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings({**env, "TRUSTED_PROXIES": "all"})

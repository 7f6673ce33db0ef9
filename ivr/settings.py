"""Environment -> frozen Settings. A bad or missing value fails at startup, naming the variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
"""Redis used for RQ queues when REDIS_URL is not set."""

DEFAULT_DATABASE_URL = "sqlite:///instance/bridgeline.sqlite3"
"""SQLite file (relative to the working directory) used when DATABASE_URL is not set."""

DEFAULT_CONFIG_DIR = "config"
"""Folder holding menus.yaml and lines.yaml when BRIDGELINE_CONFIG is not set."""

DEFAULT_TWILIO_API_BASE_URL = "https://api.twilio.com"
"""Where workers send Twilio REST requests when TWILIO_API_BASE_URL is not set."""

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""Hosts a plain-http TWILIO_API_BASE_URL may name (the auth token never leaves the machine)."""


class SettingsError(ValueError):
    """An environment variable is missing or malformed."""


@dataclass(frozen=True)
class Settings:
    """Everything Bridgeline reads from the environment, validated."""

    twilio_account_sid: str
    twilio_auth_token: str = field(repr=False)
    public_base_url: str
    redis_url: str = DEFAULT_REDIS_URL
    database_url: str = DEFAULT_DATABASE_URL
    config_dir: Path = Path(DEFAULT_CONFIG_DIR)
    secret_key: str = field(default="", repr=False)
    redis_timeout_seconds: float = 0.5
    queue_prefix: str = "bridgeline"
    trusted_proxies: int = 0
    twilio_api_base_url: str = DEFAULT_TWILIO_API_BASE_URL

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with some fields replaced (used by tests)."""
        return replace(self, **changes)


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set: Bridgeline needs it to start (see README.md)")
    return value


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"PUBLIC_BASE_URL must be an absolute http(s) URL such as "
            f"https://bridgeline.example.org, got {value!r}"
        )
    if parts.query or parts.fragment:
        raise SettingsError("PUBLIC_BASE_URL must not carry a query string or fragment")
    return value.rstrip("/")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be greater than zero, got {raw!r}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment; raise SettingsError naming the bad variable."""
    env = os.environ if env is None else env
    sid = _required(env, "TWILIO_ACCOUNT_SID")
    if not (sid.startswith("AC") and len(sid) == 34):
        raise SettingsError("TWILIO_ACCOUNT_SID must be 34 characters starting with 'AC'")
    token = _required(env, "TWILIO_AUTH_TOKEN")
    base = _base_url(_required(env, "PUBLIC_BASE_URL"))
    redis_url = env.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL
    if urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError("REDIS_URL must start with redis://, rediss:// or unix://")
    database_url = env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    database_url = normalise_database_url(database_url)
    config_dir = Path(env.get("BRIDGELINE_CONFIG", "").strip() or DEFAULT_CONFIG_DIR)
    if not config_dir.is_dir():
        raise SettingsError(f"BRIDGELINE_CONFIG: {str(config_dir)!r} is not a folder")
    return Settings(
        twilio_account_sid=sid,
        twilio_auth_token=token,
        public_base_url=base,
        redis_url=redis_url,
        database_url=database_url,
        config_dir=config_dir,
        secret_key=env.get("SECRET_KEY", "").strip() or token,
        redis_timeout_seconds=_float(env, "REDIS_TIMEOUT_SECONDS", 0.5),
        queue_prefix=env.get("BRIDGELINE_QUEUE_PREFIX", "").strip() or "bridgeline",
        trusted_proxies=_count(env, "TRUSTED_PROXIES"),
        twilio_api_base_url=_twilio_api_base_url(env),
    )


def _twilio_api_base_url(env: Mapping[str, str]) -> str:
    """TWILIO_API_BASE_URL: a stand-in for api.twilio.com (a local fake in tests and benchmarks).

    https anywhere, or plain http on this machine only: REST requests carry the auth token.
    """
    raw = env.get("TWILIO_API_BASE_URL", "").strip()
    if not raw:
        return DEFAULT_TWILIO_API_BASE_URL
    parts = urlsplit(raw)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS
    )
    if not parts.netloc or not secure:
        raise SettingsError(
            "TWILIO_API_BASE_URL must be an https URL, or http://127.0.0.1:PORT for a local "
            f"stand-in, got {raw!r}"
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise SettingsError("TWILIO_API_BASE_URL must be a scheme and host only, without a path")
    return raw.rstrip("/")


def _count(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip() or "0"
    if not raw.isdigit() or int(raw) > 5:
        raise SettingsError(f"{name} must be a whole number from 0 to 5, got {raw!r}")
    return int(raw)


def normalise_database_url(url: str) -> str:
    """Map the usual `postgres://` spellings onto the psycopg 3 driver SQLAlchemy needs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise SettingsError(
            "DATABASE_URL must look like sqlite:///path or postgresql://..., got a value without '://'"
        )
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        return url
    raise SettingsError(f"DATABASE_URL: unsupported database {scheme!r} (use sqlite or postgresql)")


def load_env_file(path: Path) -> None:
    """Set each NAME=value of a .env file that the environment does not already set."""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))

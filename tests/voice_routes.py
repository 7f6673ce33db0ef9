"""Every voice URL of the app, read from its URL map, so a route added later is tested too
(tests/test_fuzz_voice_routes.py, tests/test_voice_outages.py)."""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Flask

from tests.conftest import AUTH_TOKEN, PUBLIC_BASE


def voice_rules(app: Flask) -> list[tuple[str, list[str], tuple[str, ...]]]:
    """(rule, its variable names, its methods) for every URL under /voice/."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/voice"):
            methods = tuple(sorted(m for m in rule.methods or () if m in ("GET", "POST")))
            found.append((rule.rule, sorted(rule.arguments), methods))
    return sorted(found)


def _rules_at_collection() -> list[tuple[str, list[str], tuple[str, ...]]]:
    """The voice routes of an app built from the example config (no connection is made)."""
    import os
    from pathlib import Path

    from ivr import create_app

    repo = Path(__file__).resolve().parent.parent
    env = {
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "DATABASE_URL": "sqlite:///" + str(Path(os.environ.get("TMPDIR", "/tmp")) / "unused.db"),
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "BRIDGELINE_CONFIG": str(repo / "config"),
        "BRIDGELINE_SPOOL_DIR": "off",
    }
    return voice_rules(create_app(env))


RULES = _rules_at_collection()


def fill(rule: str, values: dict[str, str]) -> str:
    """The concrete, percent-encoded path for `rule` with `values` in its variables."""
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: quote(values[m.group(1)], safe=""), rule)

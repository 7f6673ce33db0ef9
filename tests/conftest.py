"""Shared fixtures: real SQL (SQLite or PostgreSQL), real Redis + RQ, signed Twilio requests.

Environment:
- BRIDGELINE_TEST_DATABASE: a PostgreSQL URL to run against (a fresh database is created
  inside it for the session and dropped after); unset means a temporary SQLite file.
- TEST_REDIS_URL: Redis for the tests (default redis://127.0.0.1:6379/15; flushed per test).
- TWIML_XSD: Twilio's TwiML schema; every TwiML answer the tests see is validated against it.
- BRIDGELINE_TEST_NOW: an ISO 8601 moment with its offset (2026-12-05T23:30:00-07:00); each
  test starts at that moment (time-machine; the clock ticks on from there), to show a test that
  passes only at some hours. Tests marked `real_clock` (they start gunicorn, RQ or the local
  Twilio as processes, which cannot see a clock moved inside pytest) keep the real clock.
"""

from __future__ import annotations

import copy
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import responses as responses_lib
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker

import ivr.config
from ivr import create_app
from ivr.config import BridgelineConfig
from ivr.queueing import Queues
from ivr.settings import load_settings
from ivr.simulator import Call, FlaskTransport
from ivr.store.db import make_engine, migrate
from tests.twiml_check import check_twiml
from workers import context as worker_context

REPO = Path(__file__).resolve().parent.parent
AUTH_TOKEN = "test-auth-token-0123456789"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC_BASE = "https://bridgeline.example.org"
CALLER = "+15205550123"


def _folder_digest(folder: Path) -> str:
    """sha256 over every file's name and bytes under `folder` (cheap next to parsing them)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


@pytest.fixture(scope="session", autouse=True)
def _reuse_loaded_config() -> Iterator[None]:
    """Each app a test builds loads config/ once per (folder, content), not once per test.

    Parsing and validating menus.yaml/lines.yaml is a large part of create_app; most tests
    build an app from the same unchanged config/. The memo is keyed by the folder's path and
    a hash of its files, so a test that writes its own (or broken) config gets its own fresh
    load and its own ConfigError (errors are never memoised). Each caller gets a deep copy
    (under 1 ms), so nothing a test or the app does to its config reaches another test.
    Product code is unchanged: only `ivr.config.load_config`, the name create_app imports, is
    wrapped in this test process (processes the tests start load config themselves).
    """
    real = ivr.config.load_config
    memo: dict[tuple[str, str], BridgelineConfig] = {}

    def load(folder: Path) -> BridgelineConfig:
        folder = Path(folder)
        key = (str(folder.resolve()), _folder_digest(folder))
        if key not in memo:
            memo[key] = real(folder)
        return copy.deepcopy(memo[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ivr.config, "load_config", load)
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `db_independent` every test that reaches no database fixture: it runs the same on
    SQLite and PostgreSQL, so scripts/test's PostgreSQL pass leaves it out (README: Tests)."""
    for item in items:
        if "database_url" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db_independent)


def _chosen_now() -> datetime | None:
    raw = os.environ.get("BRIDGELINE_TEST_NOW", "").strip()
    if not raw:
        return None
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise pytest.UsageError(f"BRIDGELINE_TEST_NOW={raw!r} needs an offset (Z or -07:00)")
    return moment


@pytest.fixture(autouse=True)
def _test_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start the test at BRIDGELINE_TEST_NOW when it is set (see the module docstring)."""
    moment = _chosen_now()
    if moment is None or request.node.get_closest_marker("real_clock"):
        yield
        return
    import time_machine

    with time_machine.travel(moment, tick=True):
        yield


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    pg = os.environ.get("BRIDGELINE_TEST_DATABASE", "").strip()
    if not pg:
        folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"bridgeline-test-{secrets.token_hex(4)}"
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder}/test.sqlite3"
        migrate(url)
        yield url
        return
    from ivr.settings import normalise_database_url

    admin_url = normalise_database_url(pg)
    name = f"bridgeline_test_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(scope="session")
def _table_names(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    names = [n for n in sa.inspect(engine).get_table_names() if n != "alembic_version"]
    engine.dispose()
    return names


@pytest.fixture
def redis_url() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    conn = redis.Redis.from_url(url)
    conn.flushdb()
    yield url
    conn.flushdb()
    conn.close()


@pytest.fixture
def env(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment the app under test starts with."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BRIDGELINE_CONFIG": str(REPO / "config"),
        "BRIDGELINE_QUEUE_PREFIX": "bltest",
    }


@pytest.fixture
def app(env: dict[str, str], _table_names: list[str]) -> Iterator[Flask]:
    application = create_app({**env, "TESTING": True})
    engine = application.extensions["bridgeline"].engine
    with engine.begin() as conn:
        for name in _table_names:
            conn.exec_driver_sql(f"DELETE FROM {name}")
    yield application
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    return app.extensions["bridgeline"].engine


@pytest.fixture
def queues(app: Flask) -> Queues:
    return app.extensions["bridgeline"].queues


@pytest.fixture
def twilio_api() -> Iterator[responses_lib.RequestsMock]:
    """Twilio's REST API, mocked: every request must be expected by the test."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


class CountingWorker(SimpleWorker):
    """RQ's SimpleWorker, counting the jobs it ran (RQ keeps its counters in Redis only)."""

    executed = 0

    def execute_job(self, job: Any, queue: Any) -> Any:
        self.executed += 1
        return super().execute_job(job, queue)


@pytest.fixture
def run_jobs(app: Flask, env: dict[str, str]) -> Iterator[Callable[[], int]]:
    """Run every queued job with a real RQ SimpleWorker in burst mode; returns jobs run."""
    settings = load_settings(env)
    ctx = worker_context.build(settings)
    worker_context.install(ctx)
    queues: Queues = app.extensions["bridgeline"].queues

    def run() -> int:
        worker = CountingWorker(queues.all(), connection=queues.connection)
        worker.work(burst=True)
        return worker.executed

    yield run
    worker_context.install(None)
    ctx.engine.dispose()


@pytest.fixture
def call(client: FlaskClient) -> Callable[..., Call]:
    """Place a simulated call; every answer is checked against Twilio's schema."""

    def place(path: str = "/voice/self-service", from_number: str = CALLER, **kwargs: Any) -> Call:
        return Call(
            FlaskTransport(client, PUBLIC_BASE),
            AUTH_TOKEN,
            PUBLIC_BASE,
            from_number=from_number,
            on_response=lambda url, body: check_twiml(body),
            **kwargs,
        ).start(path)

    return place


@pytest.fixture
def signed_post(client: FlaskClient) -> Callable[..., Any]:
    """POST to a voice URL exactly as Twilio would, signature included; TwiML answers checked."""
    from ivr.security import SIGNATURE_HEADER, compute_signature

    def post(
        path: str, data: dict[str, str] | None = None, token: str = AUTH_TOKEN, check: bool = True
    ) -> Any:
        data = {"CallSid": "CA" + "f" * 32, "From": CALLER, "To": "+15205550100", **(data or {})}
        signature = compute_signature(token, PUBLIC_BASE + path, data.items())
        response = client.post(path, data=data, headers={SIGNATURE_HEADER: signature})
        if check and response.status_code == 200 and response.mimetype == "text/xml":
            check_twiml(response.data)
        return response

    return post

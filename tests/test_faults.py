"""Faults caused for real: Redis killed mid-call and restarted empty, a worker killed mid-send.

The promise under test: what a caller was told is done is done, exactly once, however the
machinery underneath fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses as responses_lib
import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker

from ivr import create_app
from ivr.settings import load_settings
from ivr.simulator import Call, FlaskTransport
from ivr.store.tables import callbacks, outbound_sms
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE
from tests.fault_fixtures import READY_WITHIN_SECONDS, RedisServer, blackhole, own_redis
from tests.twiml_check import check_twiml
from workers import context as worker_context

pytestmark = pytest.mark.real_clock
"""Bridgeline's processes run here and read the real clock, whatever BRIDGELINE_TEST_NOW says."""

__all__ = ["own_redis"]  # a fixture, used by name

REPO = Path(__file__).resolve().parent.parent
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@pytest.fixture
def redis_env(env: dict[str, str], own_redis: RedisServer) -> dict[str, str]:
    return {**env, "REDIS_URL": own_redis.url}


@pytest.fixture
def faulty_app(app: Flask, redis_env: dict[str, str]) -> Iterator[Flask]:
    """The app (tables emptied by `app`) talking to a Redis server the test can kill."""
    application = create_app({**redis_env, "TESTING": True})
    yield application
    application.extensions["bridgeline"].engine.dispose()


@pytest.fixture
def worker(faulty_app: Flask, redis_env: dict[str, str]) -> Iterator[Callable[[], int]]:
    """Run queued jobs with a burst SimpleWorker against the killable Redis."""
    ctx = worker_context.build(load_settings(redis_env))
    worker_context.install(ctx)
    queues = faulty_app.extensions["bridgeline"].queues

    def run() -> int:
        before = sum(q.count for q in queues.all())
        SimpleWorker(queues.all(), connection=queues.connection).work(burst=True)
        return before

    yield run
    worker_context.install(None)
    ctx.engine.dispose()


def place(app: Flask, from_number: str = "+15205550123") -> Call:
    return Call(
        FlaskTransport(app.test_client(), PUBLIC_BASE),
        AUTH_TOKEN,
        PUBLIC_BASE,
        from_number=from_number,
        on_response=lambda url, body: check_twiml(body),
    ).start("/voice/self-service")


def one(engine: sa.Engine, column: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(column)).scalar_one()


def test_redis_dies_mid_call_the_call_goes_on_and_promised_work_resumes_when_it_is_back(
    faulty_app: Flask,
    own_redis: RedisServer,
    worker: Callable[[], int],
    engine: sa.Engine,
    twilio_api: responses_lib.RequestsMock,
) -> None:
    from workers.callbacks import sweep_callbacks
    from workers.sms import sweep_sms

    c = place(faulty_app)
    c.press("1")  # English
    c.press("3")  # information
    assert "hours" in c.heard_since_last().lower()

    own_redis.kill()  # Redis crashes while the caller is on the line

    c.press("1")  # office hours
    c.press("1")  # text them to me
    assert "We are sending a text message" in c.heard_since_last()
    c.press("8")  # back to the main menu: menus keep working without Redis
    assert "To report a non-emergency problem, press 1" in c.heard_since_last()
    c.press("5")  # a callback
    c.press("1")  # to this number
    c.press("1")  # consent
    assert "Your call back request is saved" in c.heard_since_last()
    assert one(engine, outbound_sms.c.status) == "pending"
    assert one(engine, callbacks.c.status) == "pending"

    own_redis.start()  # back, and empty: whatever had been queued is gone
    sent = twilio_api.post(MESSAGES_URL, json={"sid": "SM" + "3" * 32}, status=201)
    assert worker() == 0
    assert sweep_sms() == 1
    sweep_callbacks()
    queues = faulty_app.extensions["bridgeline"].queues
    waiting = sum(q.count + q.scheduled_job_registry.count for q in queues.all())
    assert waiting >= 2  # the text and the callback attempt are queued again
    SimpleWorker([queues.queue("sms")], connection=queues.connection).work(burst=True)
    assert sent.call_count == 1
    assert one(engine, outbound_sms.c.status) == "sent"
    sweep_sms()  # a second sweep sends nothing more
    SimpleWorker([queues.queue("sms")], connection=queues.connection).work(burst=True)
    assert sent.call_count == 1


WORKER_SCRIPT = """
from rq import SimpleWorker
from ivr.settings import load_settings
from workers import context
ctx = context.build(load_settings())
context.install(ctx)
SimpleWorker(ctx.queues.all(), connection=ctx.queues.connection).work(burst=True)
"""


@pytest.mark.parametrize("twilio_got_it", [True, False], ids=["text-went-out", "text-lost"])
def test_a_worker_killed_mid_send_is_reconciled_and_the_text_goes_out_once(
    faulty_app: Flask,
    redis_env: dict[str, str],
    worker: Callable[[], int],
    engine: sa.Engine,
    twilio_api: responses_lib.RequestsMock,
    twilio_got_it: bool,
) -> None:
    from workers.sms import sweep_sms

    c = place(faulty_app)
    for key in ("1", "3", "1", "1"):
        c.press(key)
    assert "We are sending a text message" in c.heard_since_last()

    # A real worker process takes the job; its request to Twilio hangs; the process is killed.
    with blackhole() as hole:
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT],
            cwd=REPO,
            env={**os.environ, **redis_env, "HTTPS_PROXY": hole.url, "NO_PROXY": ""},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            hole.wait_for_connection()  # the worker claimed the text and is inside Twilio
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=READY_WITHIN_SECONDS)
    assert one(engine, outbound_sms.c.status) == "sending"

    # Ten minutes on, the sweep finds the text stuck and asks Twilio what happened.
    with engine.begin() as conn:
        conn.execute(
            outbound_sms.update().values(created_at=datetime.now(UTC) - timedelta(minutes=11))
        )
    body = "City offices: Mon-Fri 8am-5pm. Non-emergency line: 24/7."
    already = [{"sid": "SM" + "9" * 32, "body": body, "to": "+15205550123"}]
    twilio_api.get(
        MESSAGES_URL,
        json={"messages": already if twilio_got_it else [], "next_page_uri": None},
        match=[responses_lib.matchers.query_param_matcher({
            "To": "+15205550123", "From": "+15205550100", "PageSize": "20",
            "DateSent>": one(engine, outbound_sms.c.created_at).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }, strict_match=False)],
    )  # fmt: skip
    if not twilio_got_it:
        resend = twilio_api.post(MESSAGES_URL, json={"sid": "SM" + "4" * 32}, status=201)
    sweep_sms()
    worker()
    assert one(engine, outbound_sms.c.status) == "sent"
    assert one(engine, outbound_sms.c.twilio_sid) == ("SM" + ("9" if twilio_got_it else "4") * 32)
    if not twilio_got_it:
        assert resend.call_count == 1
    posts = [call for call in twilio_api.calls if call.request.method == "POST"]
    assert len(posts) == (0 if twilio_got_it else 1)

"""Fixtures for callback stories: a clock the test moves, RQ workers and RQ's scheduler run at
that clock's time, and a mocked Twilio Calls API that answers like the real one."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
import responses as responses_lib
import sqlalchemy as sa
from flask import Flask
from rq import SimpleWorker
from rq.scheduler import RQScheduler

from ivr.queueing import Queues
from ivr.settings import load_settings
from ivr.store import callbacks as store
from ivr.store.callback_records import CallbackSource
from ivr.voice.callback_routes import EXTENSION_KEY, CallbackLine
from tests.conftest import ACCOUNT_SID
from workers import context as worker_context

PHOENIX = ZoneInfo("America/Phoenix")
"""The program's time zone in config/ (no daylight saving time)."""

RESIDENT = "+15205550123"
"""The resident who asked for a callback."""

CALLS_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
"""Twilio's create-call and list-calls endpoint for the test account."""


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in March 2030 in Phoenix (6 March 2030 is a Wednesday)."""
    return datetime(2030, 3, day, hour, minute, tzinfo=PHOENIX)


@dataclass
class Clock:
    """The time every callback route and job sees; the test moves it."""

    now: datetime = field(default_factory=lambda: local(6, 10))

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)

    def set(self, at: datetime) -> None:
        self.now = at

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


def call_sid() -> str:
    """A fresh, well-formed CallSid."""
    return "CA" + secrets.token_hex(16)


def call_json(sid: str, to: str, status: str = "queued", **extra: Any) -> dict[str, Any]:
    """The JSON Twilio returns for a Call resource."""
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": to,
        "from": "+15205550100",
        "status": status,
        "answered_by": extra.get("answered_by"),
        "date_created": extra.get("date_created", "Wed, 06 Mar 2030 17:00:00 +0000"),
        "start_time": None,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
    }


def form_of(request: Any) -> dict[str, list[str]]:
    """The form fields of a recorded REST request (repeated fields kept)."""
    return parse_qs(request.body if isinstance(request.body, str) else request.body.decode())


@dataclass
class CallbackWorld:
    """Everything a callback story drives: the app's line, the worker, RQ's scheduler, Twilio."""

    app: Flask
    line: CallbackLine
    worker_line: CallbackLine
    queues: Queues
    clock: Clock
    twilio: responses_lib.RequestsMock
    monkeypatch: pytest.MonkeyPatch
    created_sids: list[str] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)

    @property
    def engine(self) -> sa.Engine:
        return self.line.engine

    def new_callback(
        self,
        *,
        key: str | None = None,
        source: CallbackSource = CallbackSource.RESIDENT_MENU,
        phone_number: str = RESIDENT,
        language: str = "en",
        helper_type: str = "navigator",
        due_at: datetime | None = None,
        deadline: timedelta = timedelta(hours=4),
        consent: bool = True,
    ) -> store.Callback:
        """Record a callback the way the self-service line, the desk or the console does."""
        due = (due_at or self.clock.now).astimezone(UTC)
        return store.create_callback(
            self.engine,
            key=key or f"test:{secrets.token_hex(6)}",
            source=source,
            phone_number=phone_number,
            language=language,
            helper_type=helper_type,
            due_at=due,
            deadline_at=due + deadline,
            consent=consent,
            note="lives alone, asked about housing",
            now=self.clock(),
        )

    def expect_call_create(self, status: int = 201, body: Any = None) -> str:
        """Twilio accepts the next create-call request; returns the CallSid it gives."""
        sid = call_sid()
        if body is None:
            body = json.dumps(call_json(sid, RESIDENT))
        self.twilio.add(
            responses_lib.POST,
            CALLS_URL,
            body=body if isinstance(body, str | Exception) else json.dumps(body),
            status=status,
            content_type="application/json",
        )
        self.created_sids.append(sid)
        return sid

    def create_requests(self) -> list[dict[str, list[str]]]:
        """The form of every create-call request made so far."""
        return [
            form_of(c.request)
            for c in self.twilio.calls
            if c.request.method == "POST" and c.request.url == CALLS_URL
        ]

    def next_call_slot(self) -> None:
        """A second passes for Twilio's call rate (the limiter's slot key expires)."""
        from workers.call_rate import KEY_TEMPLATE

        self.queues.connection.delete(KEY_TEMPLATE.format(account=ACCOUNT_SID))

    def run_jobs(self) -> int:
        """Run every queued job with a real RQ SimpleWorker (burst); returns how many ran."""
        count = 0

        class Counting(SimpleWorker):
            def execute_job(self, job: Any, queue: Any) -> Any:
                nonlocal count
                count += 1
                return super().execute_job(job, queue)

        Counting(self.queues.all(), connection=self.queues.connection).work(burst=True)
        return count

    def scheduler_tick(self) -> None:
        """Run RQ's scheduler once as if it were the clock's time: due jobs move to queues."""
        at = int(self.clock().timestamp())
        self.monkeypatch.setattr("rq.scheduler.current_timestamp", lambda: at)
        scheduler = RQScheduler(self.queues.all(), connection=self.queues.connection)
        scheduler.acquire_locks()
        scheduler.enqueue_scheduled_jobs()
        scheduler.release_locks()

    def settle(self) -> int:
        """Tick the scheduler and drain the queues until nothing is left to run now."""
        total = 0
        for _ in range(10):
            self.scheduler_tick()
            ran = self.run_jobs()
            total += ran
            if not ran:
                break
        return total

    def sweep(self) -> dict[str, int]:
        """The clock's sweep, run in the worker context."""
        from workers.callbacks import sweep_callbacks

        return sweep_callbacks()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(
    app: Flask,
    env: dict[str, str],
    clock: Clock,
    twilio_api: responses_lib.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[CallbackWorld]:
    """The app and an installed worker context, both on the test's clock."""
    line: CallbackLine = app.extensions[EXTENSION_KEY]
    line.clock = clock
    ctx = worker_context.build(load_settings(env))
    assert ctx.callbacks is not None
    ctx.callbacks.clock = clock
    worker_context.install(ctx)
    queues: Queues = app.extensions["bridgeline"].queues
    made = CallbackWorld(
        app=app,
        line=line,
        worker_line=ctx.callbacks,
        queues=queues,
        clock=clock,
        twilio=twilio_api,
        monkeypatch=monkeypatch,
    )
    ctx.callbacks.pause = made.pauses.append  # REST backoff is recorded, never slept
    yield made
    worker_context.install(None)
    ctx.engine.dispose()


def status_form(sid: str, status: str, **extra: str) -> dict[str, str]:
    """What Twilio posts to a status callback."""
    return {"CallSid": sid, "CallStatus": status, "To": RESIDENT, "From": "+15205550100", **extra}


Post = Callable[..., Any]


def with_replaced(line: CallbackLine, **changes: Any) -> CallbackLine:
    """A copy of a line with some parts replaced (config variants)."""
    return replace(line, **changes)

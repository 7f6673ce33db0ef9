"""The callback flow that web and worker share: the line (rules, roster, store, URLs, clock)
and how a placed call's final status settles its attempt.

The routes in ivr.voice.callback_routes answer Twilio during a placed callback; the jobs in
workers.callbacks place the calls and sweep; both settle attempts here, so the same status
means the same thing whichever saw it first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.config import BridgelineConfig
from ivr.config.callbacks import CallbacksConfig, load_callbacks
from ivr.config.roster import Roster
from ivr.decisions.callback_rules import CallOutcome, outcome_of, retry_plan
from ivr.decisions.routing import Member, on_duty
from ivr.flows import handoffs
from ivr.queueing import Queues
from ivr.settings import Settings
from ivr.store import callbacks as store
from ivr.store.callback_records import Outcome
from ivr.twiml import Urls
from workers import jobs


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CallbackLine:
    """What the callback routes and jobs share: rules, roster, store, URLs, and the clock."""

    config: CallbacksConfig
    roster: Roster
    engine: sa.Engine
    queues: Queues
    urls: Urls
    caller_id: str
    call_back_number: str
    clock: Callable[[], datetime] = field(default=_utcnow)
    pause: Callable[[float], None] = field(default=time.sleep)
    """How a worker waits between REST retries (tests record the waits instead)."""

    def helper_type(self, callback: store.Callback) -> str:
        """Who takes this callback: its own helper type, else its source's."""
        return callback.helper_type or self.config.rule(callback.source.value).helper_type

    def on_duty(self, callback: store.Callback, at: datetime) -> list[Member]:
        """The helpers of the right type on duty at `at`, in roster order."""
        return on_duty(self.roster, self.helper_type(callback), at)

    def schedule_soon(self, callback_id: int) -> None:
        """Ask a worker to give the callback its next attempt (the sweep does it otherwise)."""
        self.queues.enqueue("default", jobs.SCHEDULE_CALLBACK, callback_id)


def build_line(
    settings: Settings,
    config: BridgelineConfig,
    engine: sa.Engine,
    queues: Queues,
    roster: Roster,
    clock: Callable[[], datetime] = _utcnow,
) -> CallbackLine:
    """Load callbacks.yaml (checked against lines.yaml and the roster) and wire the line."""
    rules = load_callbacks(
        settings.config_dir,
        default_timezone=config.lines.timezone,
        line_ids=tuple(config.lines.lines),
        helper_types=(*roster.helper_types, *roster.lines),
    )
    handoffs.use_callback_rules(rules)  # a caller who drops mid-handoff is called back by them
    return CallbackLine(
        config=rules,
        roster=roster,
        engine=engine,
        queues=queues,
        urls=Urls(settings.public_base_url),
        caller_id=config.numbers["caller_id"],
        call_back_number=config.numbers[rules.call_back_line],
        clock=clock,
    )


def settle_from_twilio(
    cb: CallbackLine,
    attempt: store.Attempt,
    call_sid: str,
    call_status: str,
    answered_by: str,
    now: datetime,
) -> store.Callback | None:
    """Settle an attempt from Twilio's final CallStatus (status callback or the sweep)."""
    outcome = outcome_of(call_status, answered_by or attempt.answered_by)
    mapped = {
        CallOutcome.MACHINE: Outcome.MACHINE,
        CallOutcome.NO_ANSWER: Outcome.NO_ANSWER,
        CallOutcome.BUSY: Outcome.BUSY,
        CallOutcome.FAILED: Outcome.FAILED,
        CallOutcome.CANCELED: Outcome.CANCELED,
        CallOutcome.HUMAN: Outcome.NOT_CONNECTED,
        CallOutcome.UNKNOWN: Outcome.NOT_CONNECTED,
    }[outcome]
    store.settle_attempt(
        cb.engine,
        attempt.id,
        outcome=mapped,
        now=now,
        plan=retry_plan(cb.config, now),
        call_status=call_status,
        call_sid=call_sid,
    )
    return store.get(cb.engine, attempt.callback_id)

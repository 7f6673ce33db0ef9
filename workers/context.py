"""What jobs need (settings, database, Twilio client, config), built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis
import sqlalchemy as sa
from twilio.rest import Client

from ivr import twilio_rest
from ivr.config import BridgelineConfig, Roster, load_config, load_roster
from ivr.queueing import Queues
from ivr.settings import Settings, load_settings
from ivr.store.db import make_engine

if TYPE_CHECKING:
    from ivr.flows.callbacks import CallbackLine

TWILIO_TIMEOUT_SECONDS = 10
"""A REST call to Twilio that takes longer is abandoned (and checked before any retry)."""


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    config: BridgelineConfig
    engine: sa.Engine
    twilio: Client
    queues: Queues
    roster: Roster | None = None
    callbacks: CallbackLine | None = field(default=None)


_current: WorkerContext | None = None


def build(settings: Settings) -> WorkerContext:
    """Connect everything a job needs, from validated settings."""
    from ivr.flows.callbacks import build_line

    config = load_config(settings.config_dir)
    engine = make_engine(settings.database_url)
    # No socket timeout here: the worker blocks on BLPOP for minutes by design.
    queues = Queues(redis.Redis.from_url(settings.redis_url), settings.queue_prefix)
    roster = load_roster(settings.config_dir)
    return WorkerContext(
        settings=settings,
        config=config,
        engine=engine,
        twilio=twilio_rest.make_client(settings, timeout=TWILIO_TIMEOUT_SECONDS),
        queues=queues,
        roster=roster,
        callbacks=build_line(settings, config, engine, queues, roster),
    )


def install(context: WorkerContext | None) -> None:
    """Set the context jobs use (the worker command at start, tests per test)."""
    global _current
    _current = context


def current() -> WorkerContext:
    """The installed context, built from the environment on first use."""
    global _current
    if _current is None:
        _current = build(load_settings())
    return _current

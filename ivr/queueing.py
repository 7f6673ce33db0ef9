"""Redis connection and RQ queues, named by purpose. Enqueue failures never reach a caller."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue, Retry

log = logging.getLogger(__name__)

EXTENSION_KEY = "bridgeline_queues"

QUEUE_NAMES = ("urgent", "default", "sms")
"""Queue purposes; the worker listens to them in this order."""


@dataclass(frozen=True)
class Queues:
    """The Redis connection and one RQ queue per purpose."""

    connection: redis.Redis
    prefix: str

    def queue(self, purpose: str) -> Queue:
        return Queue(f"{self.prefix}-{purpose}", connection=self.connection)

    def all(self) -> list[Queue]:
        return [self.queue(name) for name in QUEUE_NAMES]

    def enqueue(
        self,
        purpose: str,
        func: str,
        *args: Any,
        job_id: str | None = None,
        retry_intervals: Sequence[int] = (10, 30, 120, 600),
    ) -> bool:
        """Queue `func(*args)`; False (and a log line) when Redis cannot be reached.

        Callers record the work durably first, so a False here means "a sweep will pick it up",
        never "lost".
        """
        try:
            # RQ's own enqueue makes several round trips; in one pipeline it makes one (~40%
            # of its cost, measured in bench/RESULTS.md).
            with self.connection.pipeline() as pipe:
                self.queue(purpose).enqueue(
                    func,
                    *args,
                    job_id=job_id,
                    retry=Retry(max=len(retry_intervals), interval=list(retry_intervals)),
                    pipeline=pipe,
                )
                pipe.execute()
        except redis.RedisError as exc:
            log.warning(
                "enqueue failed, left for the sweep: func=%s error=%s", func, type(exc).__name__
            )
            return False
        return True

    def enqueue_in(
        self,
        seconds: int,
        purpose: str,
        func: str,
        *args: Any,
        job_id: str | None = None,
        retry_intervals: Sequence[int] = (10, 30, 120, 600),
    ) -> bool:
        """Queue `func(*args)` to run in `seconds` (RQ's scheduler, which workers run); False
        (and a log line) when Redis cannot be reached."""
        try:
            self.queue(purpose).enqueue_in(
                timedelta(seconds=seconds),
                func,
                *args,
                job_id=job_id,
                retry=Retry(max=len(retry_intervals), interval=list(retry_intervals)),
            )
        except redis.RedisError as exc:
            log.warning(
                "enqueue failed, left for the sweep: func=%s error=%s", func, type(exc).__name__
            )
            return False
        return True


def connect(url: str, timeout_seconds: float) -> redis.Redis:
    """A Redis client with short timeouts, so an outage costs a caller well under a second."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        health_check_interval=30,
    )


def init_app(app: Flask, url: str, timeout_seconds: float, prefix: str) -> None:
    app.extensions[EXTENSION_KEY] = Queues(connect(url, timeout_seconds), prefix)


def queues() -> Queues:
    return current_app.extensions[EXTENSION_KEY]


def queues_of(app: Flask) -> Queues:
    return app.extensions[EXTENSION_KEY]

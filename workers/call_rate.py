"""Twilio's outbound call rate (one call per second per account by default), kept in Redis.

Every worker shares one key per account: `SET key NX PX interval` succeeds for at most one
caller per interval. When Redis cannot be asked, no call is placed (fail safe): the caller
raises and RQ tries again later.
"""

from __future__ import annotations

import math

import redis

KEY_TEMPLATE = "bridgeline:twilio-call-slot:{account}"
"""Redis key holding the current one-call slot of an account."""


class RateLimiterUnavailable(RuntimeError):
    """Redis did not answer, so we cannot know whether a call may start: do not place it."""


def call_slot(connection: redis.Redis, account_sid: str, calls_per_second: int) -> float:
    """0.0 when a call may start now (the slot is taken), else the seconds to wait."""
    interval_ms = max(1, math.ceil(1000 / max(1, calls_per_second)))
    key = KEY_TEMPLATE.format(account=account_sid)
    try:
        if connection.set(key, "1", nx=True, px=interval_ms):
            return 0.0
        remaining = connection.pttl(key)
    except redis.RedisError as exc:
        raise RateLimiterUnavailable(type(exc).__name__) from exc
    remaining_ms = int(remaining) if isinstance(remaining, int) and remaining > 0 else interval_ms
    return remaining_ms / 1000

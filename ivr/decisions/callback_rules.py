"""When a callback may be placed: quiet hours, due and deadline times, backoff, overdue (pure).

Every function takes the time it reasons about (`now`, `at`) as an aware datetime; none reads
the clock, so tests control time by passing it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Protocol
from zoneinfo import ZoneInfo

from ivr.config.callbacks import END_OF_BUSINESS_DAY, CallbacksConfig, SourceRule, Window

MAX_DAYS_AHEAD = 14
"""How far ahead a next business day or window is looked for before giving up (config bug)."""


class CallOutcome(str, Enum):
    """How one placed call ended, from Twilio's CallStatus and AnsweredBy."""

    HUMAN = "human"
    MACHINE = "machine"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"
    UNKNOWN = "unknown"


TWILIO_FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
"""CallStatus values after which a call is over."""

TWILIO_CALL_STATUSES = TWILIO_FINAL_STATUSES | {"queued", "initiated", "ringing", "in-progress"}
"""Every CallStatus Twilio sends."""

MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)
"""AnsweredBy values meaning no person picked up."""

ANSWERED_BY_VALUES = MACHINE_ANSWERS | {"human", "unknown"}
"""Every AnsweredBy value of Twilio's answering-machine detection."""


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return at


def in_window(at: datetime, window: Window, zone: ZoneInfo) -> bool:
    """True when local time at `at` is inside the window (start inclusive, end exclusive)."""
    local = _aware(at).astimezone(zone).time()
    return window.start <= local < window.end


def next_allowed(at: datetime, window: Window, zone: ZoneInfo) -> datetime:
    """`at` itself when inside the window, else the window's next start (in UTC)."""
    if in_window(at, window, zone):
        return at.astimezone(UTC)
    local = at.astimezone(zone)
    day = local.date() if local.time() < window.start else local.date() + timedelta(days=1)
    return _local(day, window.start, zone)


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def end_of_business_day(at: datetime, config: CallbacksConfig) -> datetime:
    """Today's close of business when `at` is before it on a business day, else the next one's."""
    business = config.business_day
    zone = config.zone
    local = _aware(at).astimezone(zone)
    day = local.date()
    if local.time() >= business.end:
        day += timedelta(days=1)
    for _ in range(MAX_DAYS_AHEAD):
        if day.weekday() in business.weekdays:
            return _local(day, business.end, zone)
        day += timedelta(days=1)
    raise ValueError("no business day in the next two weeks")


def due_at(rule: SourceRule, recorded_at: datetime) -> datetime:
    """When a callback of this source is first due (before quiet hours are applied)."""
    return _aware(recorded_at).astimezone(UTC) + rule.due_after


def deadline_at(rule: SourceRule, recorded_at: datetime, config: CallbacksConfig) -> datetime:
    """The time by which a callback of this source must have reached the person."""
    if rule.deadline == END_OF_BUSINESS_DAY:
        return end_of_business_day(recorded_at, config)
    assert isinstance(rule.deadline, timedelta)
    return _aware(recorded_at).astimezone(UTC) + rule.deadline


def times_for(
    config: CallbacksConfig, source: str, recorded_at: datetime
) -> tuple[datetime, datetime]:
    """(due_at, deadline_at) of a callback of `source` recorded at `recorded_at`, per the config.

    For whoever records a callback (the desk for a dropped leg, the console for a follow-up).
    """
    rule = config.rule(source)
    return due_at(rule, recorded_at), deadline_at(rule, recorded_at, config)


def first_attempt_at(
    due: datetime | None, now: datetime, window: Window, zone: ZoneInfo
) -> datetime:
    """The earliest moment to place a callback due at `due`: not before now, not in quiet hours."""
    start = max(_aware(due), now) if due is not None else now
    return next_allowed(start, window, zone)


def retry_at(
    now: datetime, attempts_made: int, config: CallbacksConfig, window: Window
) -> datetime:
    """When to try again after `attempts_made` unanswered attempts (backoff, then quiet hours)."""
    return next_allowed(_aware(now) + config.backoff(attempts_made), window, config.zone)


def attempts_left(attempts_made: int, config: CallbacksConfig) -> bool:
    """True while another attempt is allowed."""
    return attempts_made < config.attempts.max_attempts


class HasAttempts(Protocol):
    """What a retry plan needs to know about a callback."""

    @property
    def source(self) -> str: ...

    @property
    def attempts_made(self) -> int: ...


def retry_plan(config: CallbacksConfig, now: datetime) -> Callable[[HasAttempts], datetime | None]:
    """After an unanswered attempt at `now`: when to try again, or None to give up."""

    def plan(callback: HasAttempts) -> datetime | None:
        if not attempts_left(callback.attempts_made, config):
            return None
        rule = config.rule(str(getattr(callback.source, "value", callback.source)))
        return retry_at(now, callback.attempts_made, config, config.window(rule.window))

    return plan


def is_due(due: datetime | None, now: datetime, window: Window, zone: ZoneInfo) -> bool:
    """True when a callback due at `due` may be placed at `now`."""
    return first_attempt_at(due, now, window, zone) <= _aware(now)


def is_overdue(deadline: datetime | None, now: datetime) -> bool:
    """True when an open callback has passed its deadline."""
    return deadline is not None and _aware(now) > deadline


def outcome_of(call_status: str | None, answered_by: str | None) -> CallOutcome:
    """Classify a finished or answered call from Twilio's CallStatus and AnsweredBy."""
    status = (call_status or "").strip().lower()
    answered = (answered_by or "").strip().lower()
    if answered in MACHINE_ANSWERS:
        return CallOutcome.MACHINE
    if status == "busy":
        return CallOutcome.BUSY
    if status == "no-answer":
        return CallOutcome.NO_ANSWER
    if status == "failed":
        return CallOutcome.FAILED
    if status == "canceled":
        return CallOutcome.CANCELED
    if status in ("completed", "in-progress") and answered in ("human", "unknown", ""):
        return CallOutcome.HUMAN
    return CallOutcome.UNKNOWN

"""Load config/callbacks.yaml: due and deadline rules per source, quiet hours, attempts."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ivr.config.yaml_source import Location, SourceFile, read_yaml

CALLBACKS_FILE = "callbacks.yaml"
"""Callback rules: per-source due time and deadline, quiet hours, attempts and backoff."""

END_OF_BUSINESS_DAY = "end_of_business_day"
"""A deadline meaning: by the end of the business day (today's, or the next one's)."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Day names as written in the file, Monday first (datetime.weekday() order)."""

SOURCES = (
    "resident_menu",
    "queue_overflow",
    "dropped_handoff",
    "clinician_follow_up",
    "urgent_report",
)
"""Every callback source (ivr.store.callbacks.CallbackSource) needs a rule."""

_DURATION = re.compile(r"^(\d{1,4})([mh])$")


def _clock(value: object) -> object:
    """'08:00' -> time(8, 0); YAML may also hand us 480 (sexagesimal 8:00) — refuse that."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a time written in quotes, like "08:00"')
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f'must be a time like "08:00" (got {value!r})')
    return time(int(match[1]), int(match[2]))


def _duration(value: object) -> object:
    """'15m' / '4h' -> timedelta."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"must be minutes or hours like 15m or 4h (got {value!r})")
    amount = int(match[1])
    return timedelta(minutes=amount) if match[2] == "m" else timedelta(hours=amount)


def _deadline(value: object) -> object:
    if value == END_OF_BUSINESS_DAY or isinstance(value, timedelta):
        return value
    try:
        return _duration(value)
    except ValueError:
        raise ValueError(
            f"must be a duration like 15m or 4h, or {END_OF_BUSINESS_DAY} (got {value!r})"
        ) from None


Clock = Annotated[time, BeforeValidator(_clock)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Deadline = Annotated[timedelta | Literal["end_of_business_day"], BeforeValidator(_deadline)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(_Frozen):
    """Local times between which automated callbacks may be placed (start inclusive)."""

    start: Clock
    end: Clock

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: time, info: ValidationInfo) -> time:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("must be later than start (a window may not cross midnight)")
        return value


class Windows(_Frozen):
    """The standard window (quiet hours outside it) and an optional crisis window."""

    standard: Window = Window(start=time(8), end=time(21))
    crisis: Window | None = None


class BusinessDay(_Frozen):
    """Working hours and days, for `end_of_business_day` deadlines."""

    start: Clock = time(8)
    end: Clock = time(17)
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = Field(
        default=("mon", "tue", "wed", "thu", "fri"), min_length=1
    )

    @property
    def weekdays(self) -> frozenset[int]:
        """The business days as datetime.weekday() numbers."""
        return frozenset(WEEKDAYS.index(d) for d in self.days)


class SourceRule(_Frozen):
    """How a callback from one source is scheduled."""

    helper_type: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
    due_after: Duration = timedelta(0)
    deadline: Deadline
    window: Literal["standard", "crisis"] = "standard"
    emergency_purpose: bool = False
    """A call back to someone whose emergency call dropped: the TCPA's emergency-purpose
    exemption, placed without prior consent (an opt-out by keypad is still honored)."""


class Attempts(_Frozen):
    """How often and how far apart a callback is tried."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_minutes: tuple[Annotated[int, Field(ge=1, le=24 * 60)], ...] = Field(
        default=(10, 30), min_length=1
    )
    ring_seconds: int = Field(default=25, ge=10, le=60)
    helper_ring_seconds: int = Field(default=25, ge=10, le=60)
    no_helper_retry_minutes: int = Field(default=15, ge=1, le=24 * 60)


class CallbacksConfig(_Frozen):
    """Validated config/callbacks.yaml."""

    timezone: str = "UTC"
    windows: Windows = Windows()
    business_day: BusinessDay = BusinessDay()
    sources: dict[str, SourceRule]
    attempts: Attempts = Attempts()
    calls_per_second: int = Field(default=1, ge=1, le=30)
    stale_dialing_minutes: int = Field(default=5, ge=1, le=120)
    call_back_line: str = Field(default="operator", min_length=1)

    @property
    def zone(self) -> ZoneInfo:
        """The time zone quiet hours and business days are in."""
        return ZoneInfo(self.timezone)

    def rule(self, source: str) -> SourceRule:
        """The rule of `source` (every source has one: checked at load)."""
        return self.sources[source]

    def window(self, name: str) -> Window:
        """The named window; `crisis` falls back to `standard` when not configured."""
        if name == "crisis" and self.windows.crisis is not None:
            return self.windows.crisis
        return self.windows.standard

    def backoff(self, attempts_made: int) -> timedelta:
        """Wait before the next attempt after `attempts_made` unanswered ones (last value repeats)."""
        minutes = self.attempts.backoff_minutes
        index = min(max(attempts_made, 1), len(minutes)) - 1
        return timedelta(minutes=minutes[index])


def load_callbacks(
    folder: Path,
    default_timezone: str = "UTC",
    line_ids: Collection[str] = (),
    helper_types: Collection[str] = (),
) -> CallbacksConfig:
    """Read and check `folder`/callbacks.yaml; raise ConfigError naming file, line and field."""
    source = read_yaml(folder / CALLBACKS_FILE)
    data = source.data if source.data is not None else {}
    if isinstance(data, dict):
        data = {"timezone": default_timezone, **data}
    try:
        config = CallbacksConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc: Location = tuple(part for part in first["loc"] if not _is_union_tag(part))
        raise source.error(loc, first["msg"]) from None
    _check(source, config, line_ids, helper_types)
    return config


def _is_union_tag(part: str | int) -> bool:
    return part in ("timedelta", "literal['end_of_business_day']", "function-before[_deadline()]")


def _check(
    source: SourceFile,
    config: CallbacksConfig,
    line_ids: Collection[str],
    helper_types: Collection[str],
) -> None:
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise source.error(("timezone",), f"unknown time zone {config.timezone!r}") from None
    for name in SOURCES:
        if name not in config.sources:
            raise source.error(("sources",), f"a rule for the source {name!r} is required")
    for name, rule in config.sources.items():
        if name not in SOURCES:
            raise source.error(
                ("sources", name), f"unknown source {name!r} (known: {', '.join(SOURCES)})"
            )
        if helper_types and rule.helper_type not in helper_types:
            raise source.error(
                ("sources", name, "helper_type"),
                f"unknown helper type {rule.helper_type!r} (not in roster.yaml)",
            )
    business = config.business_day
    if business.end <= business.start:
        raise source.error(("business_day", "end"), "must be later than start")
    if line_ids and config.call_back_line not in line_ids:
        raise source.error(
            ("call_back_line",), f"unknown line {config.call_back_line!r} (not in lines.yaml)"
        )

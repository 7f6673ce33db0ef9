"""Twilio REST calls that ride out 429s, 5xx answers and timeouts, and never ring anyone twice.

For workers only (webhooks never make blocking REST calls). Three entry points:

- `with_retries(fn)`: for requests that are safe to repeat (fetch, list, update a live call
  with new TwiML, end a call): retried on 429, 500, 502, 503, 504, timeouts and dropped
  connections, with exponential backoff and full jitter.
- `create_call(client, to=..., from_=..., attempt_started=..., **params)`: places one call.
  A request that may have reached Twilio (read timeout, dropped connection, 5xx) is never
  repeated blindly: Twilio's call list is checked first for a call to the same number from the
  same caller ID created since the attempt started; only if there is none is the request sent
  again. Only a 429 or a connect timeout (the request never arrived) is retried directly.
- `add_participant(client, conference_sid, label=..., ...)`: dials someone into a conference
  under a unique participant `label`; after an ambiguous failure the label is looked up first.

How to use `create_call` from a job (callbacks, handoffs):
  1. Record the attempt durably before calling, with its start time (`attempt_started`).
  2. Call `create_call(..., attempt_started=that_time, check_first=attempt_was_retried)`.
     On a later run of the same job (RQ retry, worker crash) pass `check_first=True`: a call
     the earlier run placed is found and returned instead of a second one.
  3. Store the returned Call SID. If `CallOutcomeUnknown` is raised, Twilio could not even be
     asked; let the job fail (RQ retries it later with `check_first=True`).
  Only one attempt per (to, from) may be in flight at a time: the check matches on them.

`make_client(settings)` builds the client workers use; TWILIO_API_BASE_URL (ivr/settings.py)
sends its requests to a stand-in for api.twilio.com instead (tests and benchmarks run a local
fake there, so a subprocess worker never reaches the network).

Exceptions:
    TwilioException (twilio's)   - a refusal that retrying will not fix (e.g. 400, 404)
    RetriesExhausted             - still 429/5xx/timeouts after every attempt
    CallOutcomeUnknown           - a call may or may not exist and Twilio cannot be asked
    PhoneNumberError (ivr.phones) - `to` is a number Bridgeline never dials (outside the US and
                                   Canada, premium-rate): refused before any request is sent
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from ivr.phones import dialable_number
from ivr.settings import DEFAULT_TWILIO_API_BASE_URL, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Twilio answers worth retrying: rate limited or a server-side failure."""

CLOCK_SKEW = timedelta(seconds=30)
"""Slack between our clock and Twilio's when matching a call to an attempt's start time."""


class RetriesExhausted(Exception):
    """Twilio kept answering 429/5xx or timing out; the job should fail and be retried later."""


class CallOutcomeUnknown(Exception):
    """A create request may have placed a call and Twilio cannot be asked whether it did."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(cap, base * 2**n))."""

    attempts: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 8.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        return rng() * min(self.cap_seconds, self.base_seconds * 2**attempt)


DEFAULT_BACKOFF = Backoff()


class RebasedHttpClient(TwilioHttpClient):
    """twilio's HTTP client, sending what it addresses to api.twilio.com to `base_url`."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if url.startswith(DEFAULT_TWILIO_API_BASE_URL + "/"):
            url = self.base_url + url[len(DEFAULT_TWILIO_API_BASE_URL) :]
        return super().request(method, url, *args, **kwargs)


def make_client(settings: Settings, *, timeout: float) -> Client:
    """The REST client for the account in `settings`, at its TWILIO_API_BASE_URL."""
    http_client = (
        TwilioHttpClient(timeout=timeout)
        if settings.twilio_api_base_url == DEFAULT_TWILIO_API_BASE_URL
        else RebasedHttpClient(settings.twilio_api_base_url, timeout=timeout)
    )
    return Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http_client)


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a Twilio error (a list's page error carries it in its response)."""
    if isinstance(exc, TwilioRestException):
        return exc.status
    if isinstance(exc, TwilioException) and len(exc.args) > 1:
        return getattr(exc.args[1], "status_code", None)
    return None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, TwilioException):
        return _status(exc) in RETRYABLE_STATUSES
    return isinstance(exc, requests.Timeout | requests.ConnectionError)


def _never_arrived(exc: BaseException) -> bool:
    """True when Twilio cannot have acted on the request (so repeating it is safe)."""
    if isinstance(exc, TwilioException):
        return _status(exc) == 429
    return isinstance(exc, requests.ConnectTimeout)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TwilioRestException):
        return f"twilio {exc.status} code {exc.code}"
    if isinstance(exc, TwilioException):
        return f"twilio {_status(exc)}"
    return type(exc).__name__


def with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
) -> T:
    """Run a repeatable Twilio request, retrying 429/5xx/timeouts; `what` names it in logs."""
    for attempt in range(backoff.attempts):
        try:
            return fn()
        except (TwilioException, requests.RequestException) as exc:
            if not _retryable(exc):
                raise
            if attempt == backoff.attempts - 1:
                raise RetriesExhausted(f"{what}: {_describe(exc)}") from exc
            delay = backoff.delay(attempt, rng)
            log.warning(
                "twilio %s failed, retrying: error=%s attempt=%s wait=%.2fs",
                what,
                _describe(exc),
                attempt + 1,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def find_call(
    client: Client, *, to: str, from_: str, since: datetime, backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> Any | None:  # fmt: skip
    """The newest call to `to` from `from_` created at or after `since`, if Twilio has one."""
    calls = with_retries(
        lambda: client.calls.list(to=to, from_=from_, limit=20),
        what="list calls",
        backoff=backoff,
        sleep=sleep,
    )
    cutoff = since - CLOCK_SKEW
    mine = [c for c in calls if c.date_created is None or c.date_created >= cutoff]
    return mine[0] if mine else None


def _refuse_undialable(to: str) -> None:
    """Toll-fraud guard at the last step: a phone number must pass ivr.phones' rule (SIP URIs
    and Twilio clients are not phone numbers and are not billed by destination)."""
    if not to.startswith(("sip:", "client:")):
        dialable_number(to)


def create_call(
    client: Client,
    *,
    to: str,
    from_: str,
    attempt_started: datetime,
    check_first: bool = False,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    **params: Any,
) -> Any:
    """Place one call (see the module docstring); returns twilio's CallInstance."""
    _refuse_undialable(to)
    if attempt_started.tzinfo is None:
        attempt_started = attempt_started.replace(tzinfo=UTC)
    ambiguous = check_first
    for attempt in range(backoff.attempts):
        if ambiguous:
            try:
                existing = find_call(
                    client, to=to, from_=from_, since=attempt_started, backoff=backoff, sleep=sleep
                )
            except (RetriesExhausted, TwilioException, requests.RequestException) as exc:
                raise CallOutcomeUnknown(f"cannot check for an earlier call: {exc}") from exc
            if existing is not None:
                log.info("create call: an earlier attempt had placed it, call=%s", existing.sid)
                return existing
        try:
            return client.calls.create(to=to, from_=from_, **params)
        except (TwilioException, requests.RequestException) as exc:
            if not _retryable(exc):
                raise
            ambiguous = ambiguous or not _never_arrived(exc)
            if attempt == backoff.attempts - 1:
                if ambiguous:
                    raise CallOutcomeUnknown(f"create call: {_describe(exc)}") from exc
                raise RetriesExhausted(f"create call: {_describe(exc)}") from exc
            delay = backoff.delay(attempt, rng)
            log.warning(
                "twilio create call failed: error=%s attempt=%s check_before_retry=%s wait=%.2fs",
                _describe(exc),
                attempt + 1,
                ambiguous,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def add_participant(
    client: Client,
    conference_sid: str,
    *,
    label: str,
    from_: str,
    to: str,
    check_first: bool = False,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    **params: Any,
) -> Any:
    """Dial `to` into a conference as participant `label` (unique per conference), once."""
    _refuse_undialable(to)
    participants = client.conferences(conference_sid).participants
    ambiguous = check_first
    for attempt in range(backoff.attempts):
        if ambiguous:
            try:
                return participants(label).fetch()
            except TwilioRestException as exc:
                if exc.status != 404:
                    raise CallOutcomeUnknown(f"cannot look up participant: {exc.status}") from exc
            except requests.RequestException as exc:
                raise CallOutcomeUnknown("cannot look up participant") from exc
        try:
            return participants.create(from_=from_, to=to, label=label, **params)
        except (TwilioException, requests.RequestException) as exc:
            if not _retryable(exc):
                raise
            ambiguous = ambiguous or not _never_arrived(exc)
            if attempt == backoff.attempts - 1:
                if ambiguous:
                    raise CallOutcomeUnknown(f"add participant: {_describe(exc)}") from exc
                raise RetriesExhausted(f"add participant: {_describe(exc)}") from exc
            sleep(backoff.delay(attempt, rng))
    raise AssertionError("unreachable")  # pragma: no cover

"""Place callbacks at their time, once each, and settle the ones a dead worker left behind.

- `schedule_callback(callback_id)` gives an open callback its next attempt row and hands the
  attempt to RQ's scheduler for its time (quiet hours and backoff already applied).
- `place_callback_attempt(attempt_id)` checks the rules once more at the moment it runs
  (quiet hours, consent, number, who is on duty, the account's call rate), claims the attempt
  with a conditional UPDATE (only one worker ever wins), then asks Twilio for the call.
- `dispatch_due(line, sent)` (several times a second, from workers.clock) hands each attempt
  to the urgent queue at its exact time, and a callback just recorded (a dropped caller, a
  resident's request) to `schedule_callback` at once instead of at the next minute sweep. RQ's own scheduler still holds every future attempt,
  as the fallback when no clock runs, but it keeps whole seconds and looks once a second, so
  alone it places a call up to two seconds late.
- `sweep_callbacks()` (every minute, from workers.clock) schedules what has no attempt,
  re-enqueues attempts whose job Redis lost, settles attempts stuck in "dialing" from Twilio's
  record, and flags overdue callbacks.

Exactly once: the SQL claim, not the job, is what allows a call. A retried job, a second
worker or a re-enqueued job finds the attempt claimed and does nothing. A create-call request
that times out is never repeated: the attempt stays "dialing" until the sweep finds the call
in Twilio's list (placed) or finds none (the attempt is closed as not placed and a new one is
scheduled).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import redis
import requests
from rq import Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy.exc import SQLAlchemyError
from twilio.base.exceptions import TwilioException, TwilioRestException

from ivr import twilio_rest
from ivr.decisions import callback_rules as rules
from ivr.decisions.routing import next_on_duty_change
from ivr.flows.callbacks import CallbackLine, settle_from_twilio
from ivr.phones import PhoneNumberError, callback_number
from ivr.store import callbacks as store
from ivr.store.callback_attempts import Claim
from ivr.store.callback_records import AttemptStatus, CallbackStatus, Outcome
from workers import context
from workers.call_rate import RateLimiterUnavailable, call_slot

log = logging.getLogger(__name__)

PLACE_QUEUE = "urgent"
"""Queue of the jobs that place calls (a dropped crisis caller is due now)."""

SCHEDULE_QUEUE = "default"
"""Queue of the scheduling and sweep jobs."""

PLACE_RETRY_INTERVALS = (5, 30, 120)
"""RQ retries of a placing job that raised (Redis or the database unavailable, Twilio 429)."""

STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]
"""Call progress events Twilio reports to the status callback."""

MACHINE_DETECTION = "DetectMessageEnd"
"""Synchronous AMD that waits for the greeting to end, so a voicemail gets the whole message.

Synchronous, not AsyncAmd: the answered URL is requested once the verdict is known, so one
webhook decides between the person's choice and the voicemail message with no REST update
of a live call; a person hears the prompt after a short pause.
"""

MACHINE_DETECTION_TIMEOUT = 30
"""Seconds AMD may take before Twilio answers with AnsweredBy=unknown (treated as a person)."""

LIVE_CALL_STALE = timedelta(hours=1)
"""A call on the phone this long without a final status is checked against Twilio."""

DISPATCH_POLL_SECONDS = 0.25
"""How often the clock's dispatcher looks for attempts coming due; it sleeps to the exact
time of those it has seen, so an attempt is handed to a worker within milliseconds of it."""

DISPATCH_LOOKBACK = timedelta(minutes=2)
"""Attempts still waiting this long after their time are handed out once more by a dispatcher
that (re)starts; older ones are the minute sweep's."""

DISPATCH_RETRY_SECONDS = 2.0
"""How long the dispatcher waits after the database or Redis did not answer."""


def _line() -> CallbackLine:
    line = context.current().callbacks
    if line is None:
        raise RuntimeError("the worker context has no callback line")
    return line


def job_id(attempt: store.Attempt) -> str:
    """The RQ job id of an attempt's placing job for its current time (a move gets a new id,
    so a job never re-enqueues its own id while it runs)."""
    return f"callback-attempt-{attempt.id}-{int(attempt.scheduled_for.timestamp())}"


def _enqueue_attempt(
    line: CallbackLine, attempt: store.Attempt, now: datetime, suffix: str = ""
) -> bool:
    """Hand the attempt to RQ: now when due, else to the scheduler. False if Redis failed."""
    queue = line.queues.queue(PLACE_QUEUE)
    retry = Retry(max=len(PLACE_RETRY_INTERVALS), interval=list(PLACE_RETRY_INTERVALS))
    try:
        if attempt.scheduled_for <= now:
            queue.enqueue(
                place_callback_attempt,
                attempt.id,
                job_id=job_id(attempt) + suffix,
                retry=retry,
            )
        else:
            queue.enqueue_at(
                _whole_second_after(attempt.scheduled_for),
                place_callback_attempt,
                attempt.id,
                job_id=job_id(attempt) + suffix,
                retry=retry,
            )
    except redis.RedisError as exc:
        log.warning(
            "callback attempt not enqueued, left for the sweep: attempt=%s error=%s",
            attempt.id,
            type(exc).__name__,
        )
        return False
    return True


def _whole_second_after(when: datetime) -> datetime:
    """`when` rounded up to a whole second: RQ's scheduler drops the fraction, so an attempt due
    at :12.9 handed over as is would be released at :12.0 and find itself early."""
    return datetime.fromtimestamp(math.ceil(when.timestamp()), UTC)


@dataclass
class Dispatched:
    """What the dispatcher handed out already: attempt id and callback id -> for which time."""

    attempts: dict[int, datetime] = field(default_factory=dict)
    callbacks: dict[int, datetime] = field(default_factory=dict)


def dispatch_due(line: CallbackLine, sent: Dispatched) -> float:
    """Queue the job of every callback whose time has come, once per time: the placing job of
    a scheduled attempt, or `schedule_callback` for a callback recorded with no attempt yet (a
    dropped caller's, a resident's request: otherwise the minute sweep's). Returns how long to
    sleep before looking again."""
    now = line.clock()
    wait = DISPATCH_POLL_SECONDS
    horizon = now + timedelta(seconds=DISPATCH_POLL_SECONDS)
    queue = line.queues.queue(PLACE_QUEUE)
    for callback in store.needing_attempt(line.engine, limit=200, due_by=horizon):
        due = callback.next_attempt_at or callback.due_at or now
        if sent.callbacks.get(callback.id) == due:
            continue
        if due > now:
            wait = min(wait, (due - now).total_seconds())
            continue
        try:
            queue.enqueue(schedule_callback, callback.id,
                          job_id=f"callback-{callback.id}-schedule-{int(due.timestamp())}")  # fmt: skip
        except redis.RedisError:
            continue  # the sweep schedules it
        sent.callbacks[callback.id] = due
    for attempt in store.attempts_coming_due(line.engine, now - DISPATCH_LOOKBACK, horizon):
        if sent.attempts.get(attempt.id) == attempt.scheduled_for:
            continue  # handed out already; its job decides (and may move it)
        if attempt.scheduled_for > now:
            wait = min(wait, (attempt.scheduled_for - now).total_seconds())
            continue
        # RQ's scheduler holds the same job for a whole second later: take it back first, so
        # it runs once (if RQ moved it already, the second run finds the attempt claimed).
        ScheduledJobRegistry(queue=queue).remove(job_id(attempt))
        if _enqueue_attempt(line, attempt, now):
            sent.attempts[attempt.id] = attempt.scheduled_for
            log.info("callback attempt due: attempt=%s", attempt.id)
    for handed in (sent.attempts, sent.callbacks):
        for key, when in list(handed.items()):
            if when < now - DISPATCH_LOOKBACK:
                del handed[key]
    return max(wait, 0.0)


def run_dispatcher(line: CallbackLine, stop: threading.Event) -> None:
    """The clock's dispatcher: `dispatch_due` until `stop` is set."""
    sent = Dispatched()
    while not stop.is_set():
        try:
            wait = dispatch_due(line, sent)
        except (SQLAlchemyError, redis.RedisError) as exc:
            log.warning("callback dispatcher waits: error=%s", type(exc).__name__)
            wait = DISPATCH_RETRY_SECONDS
        time.sleep(wait)


def schedule_callback(callback_id: int) -> str:
    """Give an open callback its next attempt at the right time. Safe to run twice."""
    line = _line()
    now = line.clock()
    callback = store.get(line.engine, callback_id)
    if callback is None:
        log.error("schedule_callback: no such callback callback_id=%s", callback_id)
        return "missing"
    if callback.status is not CallbackStatus.PENDING:
        return callback.status.value
    rule = line.config.rule(callback.source.value)
    window = line.config.window(rule.window)
    start = callback.next_attempt_at or callback.due_at
    when = rules.first_attempt_at(start, now, window, line.config.zone)
    attempt = store.create_attempt(line.engine, callback.id, when, now)
    if attempt is None:
        return "in_flight"
    _enqueue_attempt(line, attempt, now)
    log.info(
        "callback attempt scheduled: callback_id=%s attempt=%s number=%s",
        callback.id,
        attempt.id,
        attempt.number,
    )
    return "scheduled"


def place_callback_attempt(attempt_id: int) -> str:
    """Place one attempt's call once, if the rules allow it at this moment."""
    line = _line()
    now = line.clock()
    attempt = store.get_attempt(line.engine, attempt_id)
    if attempt is None:
        log.error("place_callback_attempt: no such attempt attempt=%s", attempt_id)
        return "missing"
    if attempt.status is not AttemptStatus.SCHEDULED:
        return attempt.status.value  # another run already took it
    callback = store.get(line.engine, attempt.callback_id)
    if callback is None or callback.status is not CallbackStatus.PENDING:
        return store.claim_attempt(line.engine, attempt.id, now).value  # skipped
    if attempt.scheduled_for > now:
        _enqueue_attempt(line, attempt, now, suffix="-early")
        return "early"
    rule = line.config.rule(callback.source.value)
    window = line.config.window(rule.window)
    if not rules.in_window(now, window, line.config.zone):
        later = rules.next_allowed(now, window, line.config.zone)
        return _wait(line, attempt, later, Outcome.QUIET_HOURS, now)
    if not callback.consent and not rule.emergency_purpose:
        return _refuse(line, attempt, Outcome.NO_CONSENT, "no recorded consent", now)
    try:
        to_number = callback_number(callback.phone_number or "")
    except PhoneNumberError as exc:
        return _refuse(line, attempt, Outcome.INVALID_NUMBER, f"number {exc.problem.value}", now)
    if store.opted_out_since(line.engine, to_number, callback.consent_at):
        return _refuse(line, attempt, Outcome.OPTED_OUT, "number opted out after consent", now)
    helper_type = line.helper_type(callback)
    if line.roster.group(helper_type) is None:
        return _refuse(
            line, attempt, Outcome.NO_ROSTER, f"no roster for helper type {helper_type}", now
        )
    if not line.on_duty(callback, now):
        change = next_on_duty_change(line.roster, helper_type, now)
        fallback = now + timedelta(minutes=line.config.attempts.no_helper_retry_minutes)
        later = rules.next_allowed(min(change or fallback, fallback), window, line.config.zone)
        return _wait(line, attempt, later, Outcome.NO_HELPER_ON_DUTY, now)
    ctx = context.current()
    try:
        wait = call_slot(
            line.queues.connection,
            ctx.settings.twilio_account_sid,
            line.config.calls_per_second,
        )
    except RateLimiterUnavailable:
        log.warning("call rate unknown (Redis), not dialing now: attempt=%s", attempt.id)
        raise
    if wait > 0:
        line.queues.queue(PLACE_QUEUE).enqueue_in(
            timedelta(seconds=wait), place_callback_attempt, attempt.id
        )
        return "rate_limited"
    claim = store.claim_attempt(line.engine, attempt.id, now)
    if claim is not Claim.WON:
        return claim.value
    return _dial(line, attempt, to_number, now)


def _wait(
    line: CallbackLine, attempt: store.Attempt, later: datetime, why: Outcome, now: datetime
) -> str:
    if store.reschedule_attempt(line.engine, attempt.id, later, why, now):
        moved = store.get_attempt(line.engine, attempt.id)
        if moved is not None:
            _enqueue_attempt(line, moved, now)
    log.info("callback attempt waits: attempt=%s reason=%s", attempt.id, why.value)
    return why.value


def _refuse(
    line: CallbackLine, attempt: store.Attempt, why: Outcome, detail: str, now: datetime
) -> str:
    """A callback that no automated call may serve: recorded and raised to a supervisor."""
    store.not_placed(line.engine, attempt.id, why, now, error=detail)
    log.warning("callback raised to a supervisor: attempt=%s reason=%s", attempt.id, why.value)
    return why.value


def _dial(line: CallbackLine, attempt: store.Attempt, to_number: str, now: datetime) -> str:
    ctx = context.current()
    urls = line.urls
    try:
        call = twilio_rest.create_call(
            ctx.twilio,
            to=to_number,
            from_=line.caller_id,
            attempt_started=now,
            sleep=line.pause,
            url=urls("/voice/callback/answered", attempt=attempt.id, lang=_lang(line, attempt)),
            method="POST",
            status_callback=urls("/voice/callback/status", attempt=attempt.id),
            status_callback_event=STATUS_EVENTS,
            status_callback_method="POST",
            machine_detection=MACHINE_DETECTION,
            machine_detection_timeout=MACHINE_DETECTION_TIMEOUT,
            timeout=line.config.attempts.ring_seconds,
        )
    except TwilioRestException as exc:
        # A refusal retrying cannot fix (bad or unreachable number, geo permission).
        return _refuse(
            line, attempt, Outcome.TWILIO_REFUSED, f"twilio {exc.status} code {exc.code}", now
        )
    except twilio_rest.RetriesExhausted as exc:
        # Only requests that never reached Twilio end here: safe to give the attempt back.
        store.release_attempt(line.engine, attempt.id, str(exc)[:255], now)
        raise
    except (twilio_rest.CallOutcomeUnknown, TwilioException):
        # Twilio may have created the call and cannot be asked now (a list page it refused
        # raises TwilioException). Never ask twice: the attempt stays "dialing" and the sweep
        # settles it from Twilio's list.
        log.warning("create call outcome unknown, left for the sweep: attempt=%s", attempt.id)
        return "unknown"
    store.mark_placed(line.engine, attempt.id, call.sid or "", now)
    log.info("callback placed: attempt=%s call_sid=%s", attempt.id, call.sid)
    return "placed"


def _lang(line: CallbackLine, attempt: store.Attempt) -> str:
    callback = store.get(line.engine, attempt.callback_id)
    return callback.language if callback and callback.language in ("en", "es") else "en"


def sweep_callbacks() -> dict[str, int]:
    """Keep every promise moving: schedule, re-enqueue, reconcile, flag overdue. Safe to repeat."""
    line = _line()
    now = line.clock()
    counts = {"scheduled": 0, "requeued": 0, "reconciled": 0, "unsettled": 0, "overdue": 0}
    for callback in store.needing_attempt(line.engine):
        if schedule_callback(callback.id) == "scheduled":
            counts["scheduled"] += 1
    for attempt in store.scheduled_attempts(line.engine):
        if not _job_alive(line, attempt) and _enqueue_attempt(line, attempt, now):
            counts["requeued"] += 1
    stale = now - timedelta(minutes=line.config.stale_dialing_minutes)
    for attempt in store.stale_attempts(line.engine, stale):
        if (
            attempt.status is not AttemptStatus.DIALING
            and attempt.claimed_at
            and (attempt.claimed_at > now - LIVE_CALL_STALE)
        ):
            continue
        try:
            if reconcile_attempt(line, attempt, now):
                counts["reconciled"] += 1
        except (TwilioException, twilio_rest.RetriesExhausted, requests.RequestException) as exc:
            # Twilio cannot tell us now; the attempt stays as it is for the next sweep, and
            # the other attempts are still settled.
            counts["unsettled"] += 1
            log.warning(
                "stuck callback attempt not settled yet: attempt=%s error=%s",
                attempt.id,
                type(exc).__name__,
            )
    overdue = store.flag_overdue(line.engine, now)
    for callback_id in overdue:
        log.warning("callback overdue: callback_id=%s", callback_id)
    counts["overdue"] = len(overdue)
    return counts


def _job_alive(line: CallbackLine, attempt: store.Attempt) -> bool:
    try:
        job = Job.fetch(job_id(attempt), connection=line.queues.connection)
    except (NoSuchJobError, redis.RedisError):
        return False
    return job.get_status(refresh=False) in ("queued", "scheduled", "started", "deferred")


def reconcile_attempt(line: CallbackLine, attempt: store.Attempt, now: datetime) -> bool:
    """Settle an attempt its worker or its status callbacks left behind, from Twilio's record."""
    ctx = context.current()
    callback = store.get(line.engine, attempt.callback_id)
    if callback is None:
        return False
    if attempt.call_sid:
        sid = attempt.call_sid
        call = twilio_rest.with_retries(
            lambda: ctx.twilio.calls(sid).fetch(), what="fetch call", sleep=line.pause
        )
        if (call.status or "") in rules.TWILIO_FINAL_STATUSES:
            settle_from_twilio(
                line, attempt, attempt.call_sid, str(call.status), call.answered_by or "", now
            )
            return True
        return False
    try:
        to_number = callback_number(callback.phone_number or "")
    except PhoneNumberError:
        store.not_placed(line.engine, attempt.id, Outcome.INVALID_NUMBER, now)
        return True
    claimed = attempt.claimed_at or attempt.scheduled_for
    found = twilio_rest.find_call(
        ctx.twilio, to=to_number, from_=line.caller_id, since=claimed, sleep=line.pause
    )
    if found is None:
        store.not_placed(
            line.engine,
            attempt.id,
            Outcome.WORKER_LOST,
            now,
            error="worker stopped before Twilio created the call",
            plan=lambda _cb: now,
        )
        log.warning("callback attempt was never dialed, trying again: attempt=%s", attempt.id)
        _reschedule_now(line, attempt.callback_id)
        return True
    call = found
    store.mark_placed(line.engine, attempt.id, call.sid or "", now)
    log.info(
        "callback attempt found in Twilio's list: attempt=%s call_sid=%s", attempt.id, call.sid
    )
    if (call.status or "") in rules.TWILIO_FINAL_STATUSES:
        placed = store.get_attempt(line.engine, attempt.id)
        if placed is not None:
            settle_from_twilio(
                line, placed, call.sid or "", str(call.status), call.answered_by or "", now
            )
    return True


def _reschedule_now(line: CallbackLine, callback_id: int) -> None:
    callback = store.get(line.engine, callback_id)
    if callback is not None and callback.status is CallbackStatus.PENDING:
        schedule_callback(callback_id)

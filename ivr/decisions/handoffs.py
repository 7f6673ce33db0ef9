"""A handoff's states and the state machine that derives them from its events (pure).

Every fact about a handoff is an event (requested, dialing, ringing, accepted, joined, ...) from
a source (desk, console, Twilio, worker); `derive` folds them, in causal order, into the
status, reason and times the handoff row caches. No Flask, SQL, Redis or Twilio here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

from ivr.decisions.consults import ConsultCheck
from ivr.decisions.routing import ReasonCode

log = logging.getLogger(__name__)


DIAL_QUEUE = "urgent"
"""Queue of the jobs a waiting caller depends on (dialing, announcing, returning)."""

CALLER_CALL_OVER = frozenset({"completed", "canceled", "failed", "busy", "no-answer"})
"""Twilio CallStatus values of a caller's call that has ended."""


CALL_TAKER_LABEL = "call-taker"
"""Conference participant label of the intake call-taker."""

CALLER_LABEL = "caller"
"""Conference participant label of the caller's leg (at the desk: the PSAP's bridged line)."""


class HandoffStatus(str, Enum):
    """Where a handoff stands; derived from its events by `derive`."""

    REQUESTED = "requested"
    DIALING = "dialing"
    RINGING = "ringing"
    SCREENING = "screening"  # the helper answered and hears the whisper
    FALLING_BACK = "falling_back"  # this helper did not take it; the next is being dialed
    ACCEPTED = "accepted"
    CONNECTED = "connected"
    COMPLETED = "completed"
    RETURNED = "returned"  # nobody in the chain took it: back to the call-taker
    CALLER_DROPPED = "caller_dropped"
    NOT_STARTED = "not_started"
    CANCELLED = "cancelled"  # the call-taker stopped it while the helper was still being called


TERMINAL = frozenset(
    {
        HandoffStatus.COMPLETED,
        HandoffStatus.RETURNED,
        HandoffStatus.CALLER_DROPPED,
        HandoffStatus.NOT_STARTED,
        HandoffStatus.CANCELLED,
    }
)
"""Statuses nothing moves a handoff out of."""

REACHED = frozenset({HandoffStatus.ACCEPTED, HandoffStatus.CONNECTED, HandoffStatus.COMPLETED})
"""Statuses in which a helper has the call (no reason code needed)."""

PENDING = frozenset(
    {
        HandoffStatus.REQUESTED,
        HandoffStatus.DIALING,
        HandoffStatus.RINGING,
        HandoffStatus.SCREENING,
        HandoffStatus.FALLING_BACK,
    }
)
"""Statuses in which no helper has accepted yet and the chain is still being worked."""


class HandoffEvent(str, Enum):
    """Things that happen to a handoff; the history is a list of these."""

    REQUESTED = "requested"
    NOT_STARTED = "not_started"
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    CANCELED = "canceled"
    NO_RESPONSE = "no_response"
    DIAL_REFUSED = "dial_refused"
    HELPER_JOINED = "helper_joined"
    HELPER_LEFT = "helper_left"
    CALL_TAKER_LEFT = "call_taker_left"
    CALLER_LEFT = "caller_left"
    CONFERENCE_ENDED = "conference_ended"
    RETURNED = "returned"
    CALLBACK_RECORDED = "callback_recorded"
    ANNOUNCED = "announced"
    OUTCOME_RECORDED = "outcome_recorded"
    CANCELLED_BY_CALL_TAKER = "cancelled_by_call_taker"


ATTEMPT_FAILURES: dict[HandoffEvent, ReasonCode] = {
    HandoffEvent.DECLINED: ReasonCode.DECLINED,
    HandoffEvent.NO_ANSWER: ReasonCode.NO_ANSWER,
    HandoffEvent.BUSY: ReasonCode.BUSY,
    HandoffEvent.FAILED: ReasonCode.FAILED,
    HandoffEvent.CANCELED: ReasonCode.CANCELLED,
    HandoffEvent.NO_RESPONSE: ReasonCode.NO_RESPONSE_TO_WHISPER,
    HandoffEvent.DIAL_REFUSED: ReasonCode.DIAL_REFUSED,
}
"""Events that end one attempt without a helper, and the reason each records."""

_RANK = {e: i for i, e in enumerate(HandoffEvent)}


class EventSource(str, Enum):
    """Who told us: our own code, Twilio's callbacks, or a staff member."""

    BRIDGELINE = "bridgeline"
    TWILIO = "twilio"
    STAFF = "staff"


class LiveCallStatus(str, Enum):
    """A call held in a Bridgeline conference."""

    WAITING = "waiting"
    WITH_CALL_TAKER = "with_call_taker"
    ENDED = "ended"


class Origin(str, Enum):
    """How the call reached Bridgeline."""

    DESK = "desk"
    INTAKE = "intake"


class Outcome(str, Enum):
    """What the helper records after the handoff (the figures programs report)."""

    RESOLVED_BY_PHONE = "resolved_by_phone"
    RESOLVED_ON_SCENE = "resolved_on_scene"
    POLICE_BACKUP = "police_backup_required"
    MEDICAL_BACKUP = "medical_backup_required"
    TRANSPORT = "transport"
    INVOLUNTARY_HOLD = "involuntary_hold"
    REFERRED = "referred"
    CALLBACK_SCHEDULED = "callback_scheduled"


class HandoffError(ValueError):
    """A handoff request that cannot be carried out (unknown call, bad outcome...)."""


class OutcomeAlreadyRecorded(HandoffError):
    """A second save of a handoff's outcome that did not say it is an edit."""


class ConsultConflict(HandoffError):
    """One consult at a time: the call already has a helper being called (or one connected
    and the request did not confirm a second). `existing` is that handoff."""

    def __init__(self, check: ConsultCheck, existing: Handoff) -> None:
        super().__init__(check.message or "a helper is already being called on this call")
        self.verdict = check.verdict
        self.existing = existing


@dataclass(frozen=True)
class EventRecord:
    """One row of a handoff's history."""

    id: int
    handoff_id: int
    event: HandoffEvent
    source: EventSource
    occurred_at: datetime
    attempt: int | None = None
    member_id: str | None = None
    call_sid: str | None = None
    sequence: int | None = None
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class Derived:
    """What the events say about a handoff."""

    status: HandoffStatus
    reason_code: str | None
    attempt: int
    member_id: str | None
    helper_call_sid: str | None
    accepted_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    last_failure: str | None


@dataclass(frozen=True)
class Handoff:
    """A handoff record."""

    id: int
    live_call_id: int
    origin: Origin
    call_taker_staff_id: str | None
    helper_type: str
    answers: dict[str, bool]
    chain: tuple[str, ...]
    reason: str | None
    callback_number: str | None
    status: HandoffStatus
    reason_code: str | None
    attempt: int
    member_id: str | None
    helper_call_sid: str | None
    outcome: str | None
    outcome_note: str | None
    follow_up_at: datetime | None
    outcome_by: str | None
    callback_id: int | None
    created_at: datetime
    updated_at: datetime
    accepted_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    jurisdiction: str | None = None


@dataclass(frozen=True)
class LiveCall:
    """A call waiting or talking in a Bridgeline conference."""

    id: int
    conference_name: str
    conference_sid: str | None
    origin: Origin
    call_sid: str
    callback_number: str | None
    call_taker_staff_id: str | None
    call_taker_call_sid: str | None
    call_taker_attempt: int
    status: LiveCallStatus
    created_at: datetime
    ended_at: datetime | None
    handoffs: tuple[Handoff, ...] = field(default=())
    jurisdiction: str | None = None
    language: str = "en"


# --------------------------------------------------------------------------- the state machine


_AFTER_ATTEMPTS = 1 << 30
"""Sort group of events that belong to no attempt and end or follow the call (caller left)."""


def _order(event: EventRecord) -> tuple[datetime, int, int, int, datetime, int]:
    # Twilio's Timestamp has whole seconds, ours microseconds: a helper who joins 0.3 s after
    # pressing 1 is stamped before the press. Within one second the order the events must
    # have happened in decides: the request, each attempt's steps in causal order, then what
    # belongs to no attempt (the caller leaving, the conference ending, the return).
    at = _utc(event.occurred_at)
    if event.event in (HandoffEvent.REQUESTED, HandoffEvent.NOT_STARTED):
        group = 0
    elif event.attempt is not None:
        group = event.attempt
    else:
        group = _AFTER_ATTEMPTS
    second = at.replace(microsecond=0)
    return (second, group, _RANK[event.event], event.sequence or 0, at, event.id)


def derive(events: Iterable[EventRecord]) -> Derived:
    """Fold a handoff's events, in Twilio time order, into its status: the one state machine."""
    status = HandoffStatus.REQUESTED
    reason: str | None = None
    attempt = 0
    member: str | None = None
    helper_call: str | None = None
    accepted_at = connected_at = ended_at = None
    last_failure: str | None = None
    for e in sorted(events, key=_order):
        current = e.attempt is not None and e.attempt == attempt
        if status in TERMINAL:
            if e.event is HandoffEvent.HELPER_LEFT and status is HandoffStatus.COMPLETED:
                ended_at = ended_at or e.occurred_at
            continue
        if e.event is HandoffEvent.NOT_STARTED:
            status, reason, ended_at = HandoffStatus.NOT_STARTED, e.reason, e.occurred_at
        elif e.event is HandoffEvent.DIALING and e.attempt is not None:
            if e.attempt > attempt and status not in REACHED:
                attempt, member, helper_call = e.attempt, e.member_id, None
                status = HandoffStatus.DIALING
            if e.attempt == attempt and e.call_sid:
                helper_call = e.call_sid
        elif e.event is HandoffEvent.RINGING and current:
            if status is HandoffStatus.DIALING:
                status = HandoffStatus.RINGING
            helper_call = helper_call or e.call_sid
        elif e.event is HandoffEvent.ANSWERED and current:
            if status in (HandoffStatus.DIALING, HandoffStatus.RINGING):
                status = HandoffStatus.SCREENING
            helper_call = helper_call or e.call_sid
        elif e.event is HandoffEvent.ACCEPTED and current:
            if status in PENDING and status is not HandoffStatus.FALLING_BACK:
                status, accepted_at = HandoffStatus.ACCEPTED, e.occurred_at
        elif e.event in ATTEMPT_FAILURES and current:
            if status in PENDING and status is not HandoffStatus.FALLING_BACK:
                status = HandoffStatus.FALLING_BACK
                last_failure = ATTEMPT_FAILURES[e.event].value
        elif e.event is HandoffEvent.HELPER_JOINED and current:
            if status in PENDING or status is HandoffStatus.ACCEPTED:
                status, connected_at = HandoffStatus.CONNECTED, e.occurred_at
                accepted_at = accepted_at or e.occurred_at
        elif e.event is HandoffEvent.HELPER_LEFT and current:
            if status is HandoffStatus.CONNECTED:
                status, ended_at = HandoffStatus.COMPLETED, e.occurred_at
            elif status is HandoffStatus.ACCEPTED:
                status, last_failure = HandoffStatus.FALLING_BACK, ReasonCode.FAILED.value
            elif status in PENDING and status is not HandoffStatus.FALLING_BACK:
                # The helper's leg ended with no keypress: hung up on the whisper, or voicemail.
                answered = status is HandoffStatus.SCREENING
                status = HandoffStatus.FALLING_BACK
                last_failure = (
                    ReasonCode.NO_RESPONSE_TO_WHISPER if answered else ReasonCode.NO_ANSWER
                ).value
        elif e.event in (HandoffEvent.CALLER_LEFT, HandoffEvent.CONFERENCE_ENDED):
            if status is HandoffStatus.CONNECTED:
                status, ended_at = HandoffStatus.COMPLETED, e.occurred_at
            else:
                status, ended_at = HandoffStatus.CALLER_DROPPED, e.occurred_at
                reason = ReasonCode.CALLER_HUNG_UP.value
        elif e.event is HandoffEvent.CANCELLED_BY_CALL_TAKER:
            # Recorded only while the helper is still being called (cancel_handoff checks that
            # under the row lock); a Twilio "accepted" dated a moment earlier does not undo it.
            if status in PENDING or status is HandoffStatus.ACCEPTED:
                status, ended_at = HandoffStatus.CANCELLED, e.occurred_at
                reason = ReasonCode.CANCELLED.value
        elif e.event is HandoffEvent.RETURNED:
            if status in PENDING:
                status, ended_at = HandoffStatus.RETURNED, e.occurred_at
                reason = e.reason or ReasonCode.CHAIN_EXHAUSTED.value
    return Derived(
        status=status,
        reason_code=reason,
        attempt=attempt,
        member_id=member,
        helper_call_sid=helper_call,
        accepted_at=accepted_at,
        connected_at=connected_at,
        ended_at=ended_at,
        last_failure=last_failure,
    )


# --------------------------------------------------------------------------- rows


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _opt_utc(value: datetime | None) -> datetime | None:
    return _utc(value) if value is not None else None


def conference_name_for(call_sid: str) -> str:
    """The conference a call is held in (one per caller leg)."""
    return f"bl-{call_sid}"[:80]


def twilio_time(raw: str | None, default: datetime) -> datetime:
    """Twilio's Timestamp field (RFC 2822, or ISO 8601) as an aware UTC datetime."""
    if raw:
        try:
            return _utc(parsedate_to_datetime(raw))
        except (TypeError, ValueError, IndexError):
            pass
        try:
            return _utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
        except ValueError:
            pass
    return _utc(default)

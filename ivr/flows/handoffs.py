"""Warm handoffs: the durable record, its append-only event history and the one state machine.

A handoff is recorded before anyone is dialed. Everything that happens to it afterwards is an
event: our own steps (requested, dialing, returned), the helper's keypress at the whisper, and
Twilio's call, participant and conference status callbacks, which arrive late, twice and out
of order. Events are deduplicated on insert (CallSid + event + SequenceNumber/Timestamp, and
Twilio's I-Twilio-Idempotency-Token), and the status is re-derived from all of them, ordered by
Twilio's timestamps, by `derive` — the only place a status changes.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ivr.decisions.consults import ConsultCheck, ConsultVerdict, check_new_consult
from ivr.decisions.routing import ReasonCode, eligibility, fallback_chain
from ivr.store import audit
from ivr.store import callbacks as callback_store
from ivr.store.db import insert_skipping_duplicates
from ivr.store.handoff_tables import handoff_events as events_table
from ivr.store.handoff_tables import handoffs, live_calls

if TYPE_CHECKING:
    from ivr.config.callbacks import CallbacksConfig
    from ivr.config.decision_tree import DecisionTree
    from ivr.config.roster import Roster
    from ivr.decisions.routing import Member
    from ivr.queueing import Queues

log = logging.getLogger(__name__)

DIAL_QUEUE = "urgent"
"""Queue of the jobs a waiting caller depends on (dialing, announcing, returning)."""

DROPPED_CALLBACK_SOURCE = "dropped_handoff"
"""callbacks.yaml source whose rule times the callback of a caller who dropped mid-handoff."""

UNCONFIGURED_DROPPED_DEADLINE = timedelta(minutes=15)
"""Deadline of that callback only where no callbacks.yaml was loaded (a bare unit test)."""

CALLER_CALL_OVER = frozenset({"completed", "canceled", "failed", "busy", "no-answer"})
"""Twilio CallStatus values of a caller's call that has ended."""

_callback_rules: CallbacksConfig | None = None


def use_callback_rules(config: CallbacksConfig) -> None:
    """The callbacks.yaml that times the callbacks handoffs record (set where it is loaded)."""
    global _callback_rules
    _callback_rules = config


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


def _handoff(row: Any) -> Handoff:
    return Handoff(
        id=row.id,
        live_call_id=row.live_call_id,
        origin=Origin(row.origin),
        call_taker_staff_id=row.call_taker_staff_id,
        helper_type=row.helper_type,
        answers=json.loads(row.answers),
        chain=tuple(json.loads(row.chain)),
        reason=row.reason,
        callback_number=row.callback_number,
        status=HandoffStatus(row.status),
        reason_code=row.reason_code,
        attempt=row.attempt,
        member_id=row.member_id,
        helper_call_sid=row.helper_call_sid,
        outcome=row.outcome,
        outcome_note=row.outcome_note,
        follow_up_at=_opt_utc(row.follow_up_at),
        outcome_by=row.outcome_by,
        callback_id=row.callback_id,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        accepted_at=_opt_utc(row.accepted_at),
        connected_at=_opt_utc(row.connected_at),
        ended_at=_opt_utc(row.ended_at),
        jurisdiction=row.jurisdiction,
    )


def _event(row: Any) -> EventRecord:
    return EventRecord(
        id=row.id,
        handoff_id=row.handoff_id,
        event=HandoffEvent(row.event),
        source=EventSource(row.source),
        occurred_at=_utc(row.occurred_at),
        attempt=row.attempt,
        member_id=row.member_id,
        call_sid=row.call_sid,
        sequence=row.sequence,
        reason=row.reason,
        detail=row.detail,
    )


def _live_call(row: Any, items: tuple[Handoff, ...] = ()) -> LiveCall:
    return LiveCall(
        id=row.id,
        conference_name=row.conference_name,
        conference_sid=row.conference_sid,
        origin=Origin(row.origin),
        call_sid=row.call_sid,
        callback_number=row.callback_number,
        call_taker_staff_id=row.call_taker_staff_id,
        call_taker_call_sid=row.call_taker_call_sid,
        call_taker_attempt=row.call_taker_attempt,
        status=LiveCallStatus(row.status),
        created_at=_utc(row.created_at),
        ended_at=_opt_utc(row.ended_at),
        handoffs=items,
        jurisdiction=row.jurisdiction,
        language=row.language or "en",
    )


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


# --------------------------------------------------------------------------- live calls


def open_live_call(
    engine: sa.Engine,
    *,
    call_sid: str,
    origin: Origin,
    callback_number: str | None,
    call_taker_staff_id: str | None,
    now: datetime,
    round_: int = 1,
    jurisdiction: str | None = None,
    language: str = "en",
) -> LiveCall:
    """Record a call held in a conference (idempotent on CallSid); later values fill gaps.

    A desk call that comes back for another round after its conference ended (nobody took the
    first handoff) is reopened in a new conference, `bl-<CallSid>-<round>`, so late callbacks
    from the old conference cannot touch it.
    """
    values = {
        "conference_name": conference_name_for(call_sid),
        "origin": origin.value,
        "call_sid": call_sid,
        "callback_number": callback_number,
        "call_taker_staff_id": call_taker_staff_id,
        "status": LiveCallStatus.WAITING.value,
        "call_taker_attempt": 0,
        "jurisdiction": jurisdiction,
        "language": language,
        "created_at": now,
        "updated_at": now,
    }
    try:
        with engine.begin() as conn:
            conn.execute(live_calls.insert().values(**values))
    except sa.exc.IntegrityError:
        updates: dict[str, Any] = {}
        if callback_number:
            updates["callback_number"] = callback_number
        if call_taker_staff_id:
            updates["call_taker_staff_id"] = call_taker_staff_id
        if language != "en":
            updates["language"] = language
        existing = live_call_by_sid(engine, call_sid)
        if jurisdiction and existing is not None and existing.jurisdiction is None:
            updates["jurisdiction"] = jurisdiction
        if existing is not None and existing.status is LiveCallStatus.ENDED and round_ > 1:
            updates.update(
                status=LiveCallStatus.WAITING.value,
                ended_at=None,
                conference_sid=None,
                conference_name=f"{conference_name_for(call_sid)}-{round_}"[:80],
            )
        if updates:
            with engine.begin() as conn:
                conn.execute(
                    live_calls.update()
                    .where(live_calls.c.call_sid == call_sid)
                    .values(updated_at=now, **updates)
                )
    found = live_call_by_sid(engine, call_sid)
    assert found is not None
    return found


def live_call_by_sid(engine: sa.Engine, call_sid: str) -> LiveCall | None:
    """The live call held for a caller leg."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(live_calls).where(live_calls.c.call_sid == call_sid)).first()
    return _live_call(row) if row else None


def get_live_call(engine: sa.Engine, live_call_id: int) -> LiveCall | None:
    """A live call by id, with its handoffs (newest first)."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(live_calls).where(live_calls.c.id == live_call_id)).first()
        if row is None:
            return None
        rows = conn.execute(
            sa.select(handoffs)
            .where(handoffs.c.live_call_id == live_call_id)
            .order_by(handoffs.c.id.desc())
        ).all()
    return _live_call(row, tuple(_handoff(r) for r in rows))


_LIVE_CALL_BY_ID = sa.select(live_calls).where(live_calls.c.id == sa.bindparam("live_call_id"))
"""Built once: the conference status callback reads its live call on every request."""


def get_live_call_only(engine: sa.Engine, live_call_id: int) -> LiveCall | None:
    """A live call by id without its handoffs (one round trip, for the conference callbacks)."""
    with engine.connect() as conn:
        row = conn.execute(_LIVE_CALL_BY_ID, {"live_call_id": live_call_id}).first()
    return _live_call(row) if row is not None else None


def list_live_calls(engine: sa.Engine) -> list[LiveCall]:
    """Calls still held in a conference, oldest first, each with its handoffs (newest first)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(live_calls)
            .where(live_calls.c.status != LiveCallStatus.ENDED.value)
            .order_by(live_calls.c.created_at, live_calls.c.id)
        ).all()
        ids = [r.id for r in rows]
        by_call: dict[int, list[Handoff]] = {i: [] for i in ids}
        if ids:
            for h in conn.execute(
                sa.select(handoffs)
                .where(handoffs.c.live_call_id.in_(ids))
                .order_by(handoffs.c.id.desc())
            ).all():
                by_call[h.live_call_id].append(_handoff(h))
    return [_live_call(r, tuple(by_call[r.id])) for r in rows]


def update_live_call(engine: sa.Engine, live_call_id: int, now: datetime, **values: Any) -> None:
    """Set conference SID, call-taker leg or status of a live call."""
    allowed = {"conference_sid", "call_taker_call_sid", "call_taker_staff_id", "status", "ended_at"}
    values = {k: v for k, v in values.items() if k in allowed}
    with engine.begin() as conn:
        conn.execute(
            live_calls.update()
            .where(live_calls.c.id == live_call_id)
            # A late callback (a join applied after the conference ended) never reopens a call.
            .where(live_calls.c.status != LiveCallStatus.ENDED.value)
            .values(updated_at=now, **values)
        )


def claim_call_taker_attempt(
    engine: sa.Engine, live_call_id: int, attempt: int, now: datetime
) -> bool:
    """Move a waiting intake call to call-taker attempt `attempt`; False if it already moved on."""
    with engine.begin() as conn:
        result = conn.execute(
            live_calls.update()
            .where(live_calls.c.id == live_call_id)
            .where(live_calls.c.call_taker_attempt == attempt - 1)
            .where(live_calls.c.status == LiveCallStatus.WAITING.value)
            .values(call_taker_attempt=attempt, updated_at=now)
        )
    return result.rowcount == 1


def end_live_call(engine: sa.Engine, live_call_id: int, now: datetime) -> None:
    """Mark a live call ended (its conference is over)."""
    with engine.begin() as conn:
        conn.execute(
            live_calls.update()
            .where(live_calls.c.id == live_call_id)
            .where(live_calls.c.status != LiveCallStatus.ENDED.value)
            .values(status=LiveCallStatus.ENDED.value, ended_at=now, updated_at=now)
        )


def end_live_call_if_idle(engine: sa.Engine, call_sid: str, now: datetime) -> None:
    """End a live call none of whose handoffs is still going (e.g. a refused desk transfer)."""
    live = live_call_by_sid(engine, call_sid)
    if live is not None and not active_handoffs(engine, live.id):
        end_live_call(engine, live.id, now)


# --------------------------------------------------------------------------- handoffs


def _app_objects() -> tuple[Roster, DecisionTree]:
    from ivr.services import services

    app_services = services()
    return app_services.roster, app_services.tree


def start_handoff(
    engine: sa.Engine,
    queues: Queues,
    *,
    call_sid: str,
    call_taker_staff_id: str | None,
    helper_type: str,
    answers: Mapping[str, bool],
    reason: str | None,
    callback_number: str | None = None,
    roster: Roster | None = None,
    tree: DecisionTree | None = None,
    now: datetime | None = None,
    key: str | None = None,
    confirm_second: bool = False,
) -> Handoff:
    """Record a handoff of the live call `call_sid` to `helper_type`, then enqueue the first dial.

    Not eligible by the tree, or no one on duty: the handoff is still recorded, with a reason
    code and status not_started, and nobody is dialed. One consult at a time (ivr.decisions.consults):
    decided under a lock on the live call's row, so a double click or a second tab on another
    web process gets the handoff already under way, or ConsultConflict, and dials nothing.
    """
    if roster is None or tree is None:
        app_roster, app_tree = _app_objects()
        roster, tree = roster or app_roster, tree or app_tree
    now = _utc(now or datetime.now(UTC))
    live = live_call_by_sid(engine, call_sid)
    if live is None:
        raise HandoffError("no live call with that CallSid")
    if live.status is LiveCallStatus.ENDED:
        raise HandoffError("the call has ended")
    clean = {q.id: bool(answers[q.id]) for q in tree.questions if q.id in answers}
    result = eligibility(tree, clean)
    refusal: str | None = None
    chain: list[Member] = []
    if not result.decided:
        refusal = ReasonCode.NOT_ELIGIBLE_TYPE.value
    elif helper_type not in result.allowed:
        refusal = (result.reason or ReasonCode.NOT_ELIGIBLE_TYPE).value
    elif helper_type not in roster.helper_types:
        refusal = ReasonCode.NOT_ELIGIBLE_TYPE.value
    else:
        chain = fallback_chain(roster, helper_type, now)
        if not chain:
            refusal = ReasonCode.NO_ONE_ON_DUTY.value
    # Without a key (a console button press) every request is a new handoff.
    idem = (key or f"{call_sid}:{helper_type}:{secrets.token_hex(8)}")[:128]
    number = callback_number or live.callback_number
    created = False
    try:
        with engine.begin() as conn:
            if conn.execute(_LOCK_LIVE_CALL, {"live_call_id": live.id}).first() is None:
                raise HandoffError("the call has ended")
            existing = conn.execute(
                sa.select(handoffs.c.id).where(handoffs.c.idempotency_key == idem)
            ).first()
            if existing is None:
                _check_one_consult(conn, live.id, helper_type, confirm_second, roster)
                handoff_id = _insert_handoff(
                    conn, idem, live, call_taker_staff_id, helper_type, clean, chain, reason,
                    number, refusal, now,
                )  # fmt: skip
                created = True
            else:
                handoff_id = existing.id
    except sa.exc.IntegrityError:
        # The same step retried at once (by Twilio, on another process) recorded it first.
        with engine.connect() as conn:
            handoff_id = conn.execute(
                sa.select(handoffs.c.id).where(handoffs.c.idempotency_key == idem)
            ).scalar_one()
        created = False
    handoff = get_handoff(engine, handoff_id)
    assert handoff is not None
    if created:
        _tag_reason(engine, handoff_id, reason)
    if created and handoff.status is HandoffStatus.REQUESTED:
        # Only the copy that recorded it: a retry must not queue a second dial job (the sweep
        # queues it if this enqueue is lost).
        enqueue_dial(queues, handoff_id, 1)
    log.info(
        "handoff recorded: handoff_id=%s type=%s status=%s reason=%s",
        handoff_id,
        helper_type,
        handoff.status.value,
        handoff.reason_code,
    )
    return handoff


_LOCK_LIVE_CALL = (
    live_calls.update()
    .where(live_calls.c.id == sa.bindparam("live_call_id"))
    .where(live_calls.c.status != LiveCallStatus.ENDED.value)
    .values(updated_at=live_calls.c.updated_at)
    .returning(live_calls.c.id)
)
"""A write that changes nothing: takes the live call's row lock (PostgreSQL) or the database
write lock (SQLite) before its handoffs are read, so two starts on one call queue, not race."""


def _check_one_consult(
    conn: sa.Connection, live_call_id: int, helper_type: str, confirm_second: bool, roster: Roster
) -> None:
    """Raise ConsultConflict unless a handoff to `helper_type` may start (ivr.decisions.consults)."""
    rows = conn.execute(sa.select(handoffs).where(handoffs.c.live_call_id == live_call_id)).all()
    current = [_handoff(r) for r in rows]

    def member_name(member_id: str | None) -> str | None:
        member = roster.member(member_id) if member_id else None
        return member.name if member else None

    check = check_new_consult(
        current,
        helper_type,
        confirm_second=confirm_second,
        label=roster.label,
        member_name=member_name,
    )
    if check.verdict is not ConsultVerdict.START:
        existing = next(h for h in current if check.existing and h.id == check.existing.id)
        raise ConsultConflict(check, existing)


def _tag_reason(engine: sa.Engine, handoff_id: int, reason: str | None) -> None:
    """QA tags (behavioral_health, substance_use, ...) from the reason the call-taker gave;
    only the tags are stored. Needs the app's config, so nothing happens outside a request."""
    from flask import current_app, has_app_context

    from ivr.store.qa_tags import add_tags

    if not reason or not has_app_context():
        return
    bridgeline = current_app.extensions.get("bridgeline")
    if bridgeline is None:
        return
    tags = bridgeline.self_service.understanding.tagger.tags(reason)
    if not tags:
        return
    try:
        add_tags(engine, "handoff", str(handoff_id), tags, source="reason")
    except sa.exc.SQLAlchemyError as exc:
        log.warning("qa tags not recorded: handoff_id=%s error=%s", handoff_id, type(exc).__name__)


def _insert_handoff(
    conn: sa.Connection,
    idem: str,
    live: LiveCall,
    call_taker_staff_id: str | None,
    helper_type: str,
    clean: Mapping[str, bool],
    chain: list[Member],
    reason: str | None,
    number: str | None,
    refusal: str | None,
    now: datetime,
) -> int:
    """The handoff row, its 'requested' event (and 'not_started' with the refusal), derived."""
    handoff_id = conn.execute(
        handoffs.insert()
        .values(
            idempotency_key=idem,
            live_call_id=live.id,
            origin=live.origin.value,
            call_taker_staff_id=call_taker_staff_id,
            helper_type=helper_type[:64],
            answers=json.dumps(clean, sort_keys=True),
            chain=json.dumps([m.member_id for m in chain]),
            reason=(reason or None) and reason[:200],
            callback_number=number,
            jurisdiction=live.jurisdiction,
            status=HandoffStatus.REQUESTED.value,
            attempt=0,
            created_at=now,
            updated_at=now,
        )
        .returning(handoffs.c.id)
    ).scalar_one()
    _insert_event(
        conn,
        handoff_id,
        HandoffEvent.REQUESTED,
        EventSource.STAFF if origin_is_console(live) else EventSource.BRIDGELINE,
        f"h{handoff_id}:requested",
        now,
        detail=helper_type[:64],
    )
    if refusal is not None:
        _insert_event(
            conn,
            handoff_id,
            HandoffEvent.NOT_STARTED,
            EventSource.BRIDGELINE,
            f"h{handoff_id}:not_started",
            now,
            reason=refusal,
        )
    _rederive(conn, handoff_id, now)
    return handoff_id


def origin_is_console(live: LiveCall) -> bool:
    """Console handoffs are started by a signed-in call-taker; desk ones by the keypad flow."""
    return live.origin is Origin.INTAKE


def enqueue_dial(queues: Queues, handoff_id: int, attempt: int) -> bool:
    """Queue the job that dials attempt `attempt` of a handoff (one job id per attempt)."""
    return queues.enqueue(
        DIAL_QUEUE,
        "workers.handoffs.dial_helper",
        handoff_id,
        attempt,
        job_id=f"handoff-{handoff_id}-dial-{attempt}",
        retry_intervals=(2, 5, 15),
    )


def get_handoff(engine: sa.Engine, handoff_id: int) -> Handoff | None:
    """One handoff record."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(handoffs).where(handoffs.c.id == handoff_id)).first()
    return _handoff(row) if row else None


def handoff_events(engine: sa.Engine, handoff_id: int) -> list[EventRecord]:
    """A handoff's history in the order it happened (Twilio's timestamps)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(events_table).where(events_table.c.handoff_id == handoff_id)
        ).all()
    return sorted((_event(r) for r in rows), key=_order)


def handoffs_for_helper(
    engine: sa.Engine, staff_or_member_id: str, roster: Roster | None = None
) -> list[Handoff]:
    """Handoffs that reached (or rang) a helper, by roster member id or staff ID; newest first."""
    ids = {staff_or_member_id}
    if roster is None:
        try:
            roster = _app_objects()[0]
        except RuntimeError:
            roster = None
    if roster is not None:
        for group in roster.helper_types.values():
            for rostered in group.members:
                if rostered.member.staff_id == staff_or_member_id:
                    ids.add(rostered.member.member_id)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(handoffs)
            .where(handoffs.c.member_id.in_(sorted(ids)))
            .order_by(handoffs.c.created_at.desc(), handoffs.c.id.desc())
        ).all()
    return [_handoff(r) for r in rows]


def handoffs_for_call(engine: sa.Engine, live_call_id: int) -> list[Handoff]:
    """Every handoff of one live call, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(handoffs)
            .where(handoffs.c.live_call_id == live_call_id)
            .order_by(handoffs.c.id)
        ).all()
    return [_handoff(r) for r in rows]


# --------------------------------------------------------------------------- recording events


_NEW_EVENT = {
    dialect: insert_skipping_duplicates(dialect, events_table).returning(events_table.c.id)
    for dialect in ("sqlite", "postgresql")
}
"""Append an event unless its dedupe key or Twilio token is already there (either unique
index): one statement, built once, and a retry racing the original cannot raise."""

_EVENTS_OF = sa.select(events_table).where(events_table.c.handoff_id == sa.bindparam("h_id"))

_LOCK_HANDOFF = (
    handoffs.update()
    .where(handoffs.c.id == sa.bindparam("h_id"))
    .values(updated_at=sa.bindparam("h_now"))
    .returning(handoffs.c.status)
)
"""Touch the handoff row and read its status: takes the row lock (PostgreSQL) or the write
lock (SQLite) first, so two callbacks at once cannot derive from stale histories."""

_SET_DERIVED = handoffs.update().where(handoffs.c.id == sa.bindparam("h_id"))
"""Executed with the derived columns as parameters (built once, cached by SQLAlchemy)."""


def _insert_event(
    conn: sa.Connection,
    handoff_id: int,
    event: HandoffEvent,
    source: EventSource,
    dedupe_key: str,
    occurred_at: datetime,
    *,
    token: str | None = None,
    attempt: int | None = None,
    member_id: str | None = None,
    call_sid: str | None = None,
    sequence: int | None = None,
    reason: str | None = None,
    detail: str | None = None,
    received_at: datetime | None = None,
) -> bool:
    """Append one event unless its key (or Twilio token) was seen; True when it was new."""
    inserted = conn.execute(
        _NEW_EVENT[conn.dialect.name],
        {
            "handoff_id": handoff_id,
            "dedupe_key": dedupe_key[:200],
            "idempotency_token": token[:128] if token else None,
            "event": event.value,
            "source": source.value,
            "attempt": attempt,
            "member_id": member_id,
            "call_sid": call_sid,
            "sequence": sequence,
            "occurred_at": _utc(occurred_at),
            "received_at": _utc(received_at or occurred_at),
            "reason": reason,
            "detail": (detail or None) and detail[:200],
        },
    ).first()
    return inserted is not None


def _derive_in(conn: sa.Connection, handoff_id: int) -> Derived:
    return derive(_event(r) for r in conn.execute(_EVENTS_OF, {"h_id": handoff_id}))


def _rederive(conn: sa.Connection, handoff_id: int, now: datetime) -> Derived:
    d = _derive_in(conn, handoff_id)
    conn.execute(
        _SET_DERIVED,
        {
            "h_id": handoff_id,
            "status": d.status.value,
            "reason_code": d.reason_code,
            "attempt": d.attempt,
            "member_id": d.member_id,
            "helper_call_sid": d.helper_call_sid,
            "accepted_at": d.accepted_at,
            "connected_at": d.connected_at,
            "ended_at": d.ended_at,
            "updated_at": now,
        },
    )
    return d


@dataclass(frozen=True)
class Recorded:
    """What recording one event changed."""

    new: bool
    before: HandoffStatus
    after: Derived


def record_event(
    engine: sa.Engine,
    handoff_id: int,
    event: HandoffEvent,
    *,
    source: EventSource,
    dedupe_key: str,
    occurred_at: datetime,
    now: datetime | None = None,
    token: str | None = None,
    attempt: int | None = None,
    member_id: str | None = None,
    call_sid: str | None = None,
    sequence: int | None = None,
    reason: str | None = None,
    detail: str | None = None,
) -> Recorded | None:
    """Append an event (deduplicated) and re-derive the status in the same transaction."""
    now = _utc(now or datetime.now(UTC))
    with engine.begin() as conn:
        row = conn.execute(_LOCK_HANDOFF, {"h_id": handoff_id, "h_now": now}).first()
        if row is None:
            return None
        before = HandoffStatus(row.status)
        new = _insert_event(
            conn,
            handoff_id,
            event,
            source,
            dedupe_key,
            occurred_at,
            token=token,
            attempt=attempt,
            member_id=member_id,
            call_sid=call_sid,
            sequence=sequence,
            reason=reason,
            detail=detail,
            received_at=now,
        )
        # A duplicate: the status as it stands, read in the same transaction.
        after = _rederive(conn, handoff_id, now) if new else _derive_in(conn, handoff_id)
    return Recorded(new=new, before=before, after=after)


def apply_event(
    engine: sa.Engine,
    queues: Queues,
    handoff_id: int,
    event: HandoffEvent,
    **kwargs: Any,
) -> Recorded | None:
    """Record an event, then start what its transition calls for (record first, then act)."""
    now = _utc(kwargs.get("now") or datetime.now(UTC))
    recorded = record_event(engine, handoff_id, event, **kwargs)
    if recorded is None or not recorded.new:
        return recorded
    react(engine, queues, handoff_id, recorded.before, recorded.after, now)
    return recorded


def react(
    engine: sa.Engine,
    queues: Queues,
    handoff_id: int,
    before: HandoffStatus,
    after: Derived,
    now: datetime,
) -> None:
    """Follow-up work for a status change: next helper, announce, callback, return."""
    if after.status is before:
        return
    if after.status is HandoffStatus.FALLING_BACK:
        enqueue_dial(queues, handoff_id, after.attempt + 1)
    elif after.status is HandoffStatus.CONNECTED:
        queues.enqueue(
            DIAL_QUEUE,
            "workers.handoffs.announce_connected",
            handoff_id,
            job_id=f"handoff-{handoff_id}-announce",
            retry_intervals=(2, 5, 15),
        )
    elif after.status is HandoffStatus.RETURNED:
        queues.enqueue(
            DIAL_QUEUE,
            "workers.handoffs.return_to_call_taker",
            handoff_id,
            job_id=f"handoff-{handoff_id}-return",
            retry_intervals=(2, 5, 15),
        )
    elif after.status is HandoffStatus.CALLER_DROPPED:
        record_dropped_callback(engine, handoff_id, now)
        if before in PENDING | {HandoffStatus.ACCEPTED, HandoffStatus.CONNECTED}:
            # Whether or not its CallSid is known yet: the job finds the attempt's legs. A
            # "connected" helper whose caller had hung up before they joined is alone: ended too.
            queues.enqueue(
                DIAL_QUEUE,
                "workers.handoffs.hang_up_helper",
                handoff_id,
                job_id=f"handoff-{handoff_id}-hangup",
                retry_intervals=(2, 5, 15),
            )


def record_dropped_callback(engine: sa.Engine, handoff_id: int, now: datetime) -> int | None:
    """The caller dropped before a helper had them: record a callback at once (idempotent)."""
    handoff = get_handoff(engine, handoff_id)
    if handoff is None:
        return None
    if handoff.callback_id is not None:
        return handoff.callback_id
    live = get_live_call_only(engine, handoff.live_call_id)
    if _callback_rules is not None:
        from ivr.decisions.callback_rules import times_for

        due, deadline = times_for(_callback_rules, DROPPED_CALLBACK_SOURCE, now)
    else:
        due, deadline = now, now + UNCONFIGURED_DROPPED_DEADLINE
    saved = callback_store.create_callback(
        engine,
        key=f"handoff:{handoff_id}:dropped",
        source=callback_store.CallbackSource.DROPPED_HANDOFF,
        phone_number=handoff.callback_number or "",
        language=live.language if live is not None else "en",  # the caller's, not the desk's
        helper_type=handoff.helper_type,
        due_at=due,
        deadline_at=deadline,
        consent=False,
        note=f"caller dropped during handoff {handoff_id}",
        jurisdiction=handoff.jurisdiction,
    )
    with engine.begin() as conn:
        conn.execute(
            handoffs.update().where(handoffs.c.id == handoff_id).values(callback_id=saved.id)
        )
        _insert_event(
            conn,
            handoff_id,
            HandoffEvent.CALLBACK_RECORDED,
            EventSource.BRIDGELINE,
            f"h{handoff_id}:callback",
            now,
            reason=ReasonCode.CALLER_HUNG_UP.value,
            detail=f"callback {saved.id}",
        )
    log.info(
        "dropped handoff: callback recorded handoff_id=%s callback_id=%s", handoff_id, saved.id
    )
    return saved.id


def record_caller_left(
    engine: sa.Engine,
    queues: Queues,
    live: LiveCall,
    *,
    at: datetime,
    now: datetime,
    dedupe_key: str,
    source: EventSource = EventSource.TWILIO,
    token: str | None = None,
) -> int:
    """The caller's own call ended, whoever told us (its status callback, or Twilio asked by a
    worker): every handoff still under way records it (a dropped handoff: a callback, the
    helper's call stopped) and the live call ends. Returns how many handoffs it touched.

    Needed because a caller who hangs up before their leg joins the conference (while the desk
    announces the helper) produces no conference event at all.
    """
    touched = 0
    for h in active_handoffs(engine, live.id):
        apply_event(
            engine,
            queues,
            h.id,
            HandoffEvent.CALLER_LEFT,
            source=source,
            dedupe_key=f"{dedupe_key}:h{h.id}",
            token=f"{token[:110]}:h{h.id}" if token else None,
            occurred_at=at,
            now=now,
            call_sid=live.call_sid,
        )
        touched += 1
    if live.status is not LiveCallStatus.ENDED:
        end_live_call(engine, live.id, at)
    return touched


def active_handoffs(engine: sa.Engine, live_call_id: int) -> list[Handoff]:
    """Handoffs of a call that are not over yet."""
    return [h for h in handoffs_for_call(engine, live_call_id) if h.status not in TERMINAL]


# --------------------------------------------------------------------------- staff actions


def record_outcome(
    engine: sa.Engine,
    handoff_id: int,
    outcome: Outcome | str,
    note: str | None,
    follow_up_at: datetime | None,
    by_staff_id: str,
    now: datetime | None = None,
    edit: bool = False,
) -> Handoff:
    """The helper's outcome and follow-up date; a follow-up also records a callback.

    Once an outcome is recorded, saving again must say it is an edit (`edit=True`): the change
    is written to the audit trail (codes only) in the same transaction, never silently."""
    now = _utc(now or datetime.now(UTC))
    try:
        value = Outcome(outcome)
    except ValueError:
        raise HandoffError(f"unknown outcome {outcome!r}") from None
    handoff = get_handoff(engine, handoff_id)
    if handoff is None:
        raise HandoffError("no such handoff")
    follow = _opt_utc(follow_up_at)
    with engine.begin() as conn:
        locked = conn.execute(_LOCK_HANDOFF, {"h_id": handoff_id, "h_now": now}).first()
        before = conn.execute(
            sa.select(handoffs.c.outcome, handoffs.c.outcome_note, handoffs.c.follow_up_at).where(
                handoffs.c.id == handoff_id
            )
        ).first()
        if locked is None or before is None:
            raise HandoffError("no such handoff")
        if before.outcome is not None and not edit:
            raise OutcomeAlreadyRecorded("an outcome is already recorded: change it as an edit")
        if before.outcome is not None:
            audit.append(
                conn,
                by_staff_id,
                "handoff.outcome_edited",
                f"handoff:{handoff_id}",
                {
                    "from": before.outcome,
                    "to": value.value,
                    "note_changed": (before.outcome_note or None)
                    != ((note or None) and note[:4000]),
                    "follow_up_changed": _opt_utc(before.follow_up_at) != follow,
                },
            )
        conn.execute(
            handoffs.update()
            .where(handoffs.c.id == handoff_id)
            .values(
                outcome=value.value,
                outcome_note=(note or None) and note[:4000],
                follow_up_at=follow,
                outcome_by=by_staff_id[:32],
                outcome_at=now,
                updated_at=now,
            )
        )
        _insert_event(
            conn,
            handoff_id,
            HandoffEvent.OUTCOME_RECORDED,
            EventSource.STAFF,
            f"h{handoff_id}:outcome:{now.isoformat()}",
            now,
            detail=value.value,
            member_id=by_staff_id[:64],
        )
    if follow is not None and handoff.callback_number:
        callback_store.create_callback(
            engine,
            key=f"handoff:{handoff_id}:follow-up:{follow.date().isoformat()}",
            source=callback_store.CallbackSource.CLINICIAN_FOLLOW_UP,
            phone_number=handoff.callback_number,
            language="en",
            helper_type=handoff.helper_type,
            due_at=follow,
            deadline_at=follow + timedelta(hours=24),
            consent=False,
            note=f"follow-up of handoff {handoff_id}",
            jurisdiction=handoff.jurisdiction,
        )
    found = get_handoff(engine, handoff_id)
    assert found is not None
    return found


def leave_call(
    engine: sa.Engine,
    queues: Queues,
    live_call_id: int,
    by_staff_id: str,
    now: datetime | None = None,
) -> bool:
    """The call-taker's "leave call": allowed once a helper is connected; False otherwise."""
    now = _utc(now or datetime.now(UTC))
    live = get_live_call(engine, live_call_id)
    if live is None or live.status is LiveCallStatus.ENDED:
        return False
    connected = [h for h in live.handoffs if h.status is HandoffStatus.CONNECTED]
    if not connected:
        return False
    queues.enqueue(
        DIAL_QUEUE,
        "workers.handoffs.remove_call_taker",
        live_call_id,
        job_id=f"live-{live_call_id}-leave",
        retry_intervals=(2, 5, 15),
    )
    log.info("call-taker leaving: live_call_id=%s staff=%s", live_call_id, by_staff_id)
    return True


CANCELLABLE = PENDING
"""Statuses in which the call-taker may cancel: the helper is still being dialed, rung or
whispered to (once they pressed 1 they are joining the caller)."""


def cancel_handoff(
    engine: sa.Engine,
    queues: Queues,
    handoff_id: int,
    by_staff_id: str,
    now: datetime | None = None,
) -> Handoff:
    """The call-taker cancels a helper still being called: recorded first (reason `cancelled`,
    status cancelled at once), then a worker ends the helper's leg through the REST API."""
    now = _utc(now or datetime.now(UTC))
    with engine.begin() as conn:
        row = conn.execute(_LOCK_HANDOFF, {"h_id": handoff_id, "h_now": now}).first()
        if row is None:
            raise HandoffError("no such handoff")
        status = HandoffStatus(row.status)
        if status is HandoffStatus.CANCELLED:
            found = get_handoff(engine, handoff_id)  # a second press of Cancel: nothing more
            assert found is not None
            return found
        if status not in CANCELLABLE:
            raise HandoffError(_NOT_CANCELLABLE.get(status, "it is over"))
        _insert_event(
            conn,
            handoff_id,
            HandoffEvent.CANCELLED_BY_CALL_TAKER,
            EventSource.STAFF,
            f"h{handoff_id}:cancelled",
            now,
            member_id=by_staff_id[:64],
            reason=ReasonCode.CANCELLED.value,
        )
        _rederive(conn, handoff_id, now)
    queues.enqueue(
        DIAL_QUEUE,
        "workers.handoffs.cancel_helper",
        handoff_id,
        job_id=f"handoff-{handoff_id}-cancel",
        retry_intervals=(2, 5, 15),
    )
    log.info("handoff cancelled by the call-taker: handoff_id=%s", handoff_id)
    found = get_handoff(engine, handoff_id)
    assert found is not None
    return found


_NOT_CANCELLABLE = {
    HandoffStatus.ACCEPTED: "the helper has already accepted and is joining the caller",
    HandoffStatus.CONNECTED: "the helper is already connected to the caller",
}
"""Why a cancel was refused, in plain words (anything else: it is over)."""

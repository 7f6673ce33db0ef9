"""Warm handoffs, the flow: start one (eligibility, one consult at a time, the fallback chain,
recorded before anyone is dialed), react to each recorded event (dial the next helper, tell the
desk, end the call), and call back a caller who dropped mid-handoff.

The states and the one state machine (`derive`) are pure, in ivr.decisions.handoffs; the rows,
the append-only event history and its deduplication are in ivr.store.handoffs; what staff do
from the console is in ivr.flows.handoff_staff. Names from those are re-exported here for the
modules that reach them through this one.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ivr.decisions.consults import ConsultVerdict, check_new_consult
from ivr.decisions.routing import ReasonCode, eligibility, fallback_chain
from ivr.store import callbacks as callback_store
from ivr.store.handoff_tables import handoffs, live_calls

if TYPE_CHECKING:
    from flask import Flask

    from ivr.config.callbacks import CallbacksConfig
    from ivr.config.decision_tree import DecisionTree
    from ivr.config.roster import Roster
    from ivr.decisions.routing import Member
    from ivr.queueing import Queues

from ivr.decisions.handoffs import ATTEMPT_FAILURES as ATTEMPT_FAILURES
from ivr.decisions.handoffs import CALLER_CALL_OVER as CALLER_CALL_OVER
from ivr.decisions.handoffs import DIAL_QUEUE as DIAL_QUEUE
from ivr.decisions.handoffs import PENDING as PENDING
from ivr.decisions.handoffs import TERMINAL as TERMINAL
from ivr.decisions.handoffs import ConsultConflict, Derived, _utc
from ivr.decisions.handoffs import EventRecord as EventRecord
from ivr.decisions.handoffs import EventSource as EventSource
from ivr.decisions.handoffs import Handoff as Handoff
from ivr.decisions.handoffs import HandoffError as HandoffError
from ivr.decisions.handoffs import HandoffEvent as HandoffEvent
from ivr.decisions.handoffs import HandoffStatus as HandoffStatus
from ivr.decisions.handoffs import LiveCall as LiveCall
from ivr.decisions.handoffs import LiveCallStatus as LiveCallStatus
from ivr.decisions.handoffs import Origin as Origin
from ivr.decisions.handoffs import conference_name_for as conference_name_for
from ivr.decisions.handoffs import derive as derive
from ivr.decisions.handoffs import twilio_time as twilio_time
from ivr.flows.handoff_staff import CANCELLABLE as CANCELLABLE
from ivr.flows.handoff_staff import cancel_handoff as cancel_handoff
from ivr.flows.handoff_staff import leave_call as leave_call
from ivr.flows.handoff_staff import record_outcome as record_outcome
from ivr.store.handoffs import Recorded as Recorded
from ivr.store.handoffs import _handoff, _insert_event, _rederive, record_next_attempt
from ivr.store.handoffs import active_handoffs as active_handoffs
from ivr.store.handoffs import claim_call_taker_attempt as claim_call_taker_attempt
from ivr.store.handoffs import end_live_call as end_live_call
from ivr.store.handoffs import end_live_call_if_idle as end_live_call_if_idle
from ivr.store.handoffs import get_handoff as get_handoff
from ivr.store.handoffs import get_live_call as get_live_call
from ivr.store.handoffs import get_live_call_only as get_live_call_only
from ivr.store.handoffs import handoff_events as handoff_events
from ivr.store.handoffs import handoffs_for_call as handoffs_for_call
from ivr.store.handoffs import list_live_calls as list_live_calls
from ivr.store.handoffs import live_call_by_sid as live_call_by_sid
from ivr.store.handoffs import open_live_call as open_live_call
from ivr.store.handoffs import record_event as record_event
from ivr.store.handoffs import update_live_call as update_live_call
from workers import jobs

log = logging.getLogger(__name__)

DROPPED_CALLBACK_SOURCE = "dropped_handoff"
"""callbacks.yaml source whose rule times the callback of a caller who dropped mid-handoff."""

UNCONFIGURED_DROPPED_DEADLINE = timedelta(minutes=15)
"""Deadline of that callback only where no callbacks.yaml was loaded (a bare unit test)."""

_callback_rules: CallbacksConfig | None = None


def use_callback_rules(config: CallbacksConfig) -> None:
    """The callbacks.yaml that times the callbacks handoffs record (set where it is loaded)."""
    global _callback_rules
    _callback_rules = config


# --------------------------------------------------------------------------- handoffs


APP_DEFAULTS_KEY = "bridgeline_handoff_defaults"
"""app.extensions key of the AppDefaults that create_app gives this flow (see init_app)."""


@dataclass(frozen=True)
class AppDefaults:
    """What a handoff started inside a request uses when the caller passes nothing: the app's
    roster and decision tree, and how to read QA tags from a call-taker's reason."""

    roster: Roster
    tree: DecisionTree
    reason_tags: Callable[[str], list[str]]


def init_app(app: Flask, defaults: AppDefaults) -> None:
    """Give the flow the app's roster, tree and reason tagger (create_app does this once)."""
    app.extensions[APP_DEFAULTS_KEY] = defaults


def _app_defaults() -> AppDefaults | None:
    from flask import current_app, has_app_context

    if not has_app_context():
        return None
    found = current_app.extensions.get(APP_DEFAULTS_KEY)
    return found if isinstance(found, AppDefaults) else None


def _app_objects() -> tuple[Roster, DecisionTree]:
    defaults = _app_defaults()
    if defaults is None:
        raise RuntimeError("no roster or decision tree given, and no app to take them from")
    return defaults.roster, defaults.tree


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
    if created and refusal is None:
        # Recorded as requested: the helper's phone is what the caller waits for, so the dial
        # is queued before anything else (read-back, QA tags). Only the copy that recorded it:
        # a retry must not queue a second dial job (the sweep queues it if this one is lost).
        enqueue_dial(queues, handoff_id, 1)
    handoff = get_handoff(engine, handoff_id)
    assert handoff is not None
    if created:
        _tag_reason(engine, handoff_id, reason)
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
    from ivr.store.qa_tags import add_tags

    defaults = _app_defaults()
    if not reason or defaults is None:
        return
    tags = defaults.reason_tags(reason)
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
        jobs.DIAL_HELPER,
        handoff_id,
        attempt,
        job_id=f"handoff-{handoff_id}-dial-{attempt}",
        retry_intervals=jobs.CALL_STEP_RETRY,
    )


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


def begin_attempt(
    engine: sa.Engine,
    queues: Queues,
    handoff_id: int,
    attempt: int,
    *,
    member_id: str | None,
    detail: str | None = None,
    occurred_at: datetime,
    now: datetime,
) -> Recorded | None:
    """ "Dial attempt `attempt`" as a guarded transition (ivr.store.handoffs.record_next_attempt),
    then what it calls for. None: the handoff moved on (the caller left, it was cancelled, or
    another run has it) and nobody may be dialed for it."""
    recorded = record_next_attempt(
        engine,
        handoff_id,
        attempt,
        source=EventSource.BRIDGELINE,
        occurred_at=occurred_at,
        now=now,
        member_id=member_id,
        detail=detail,
    )
    if recorded is not None and recorded.new:
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
            jobs.ANNOUNCE_CONNECTED,
            handoff_id,
            job_id=f"handoff-{handoff_id}-announce",
            retry_intervals=jobs.CALL_STEP_RETRY,
        )
    elif after.status is HandoffStatus.RETURNED:
        queues.enqueue(
            DIAL_QUEUE,
            jobs.RETURN_TO_CALL_TAKER,
            handoff_id,
            job_id=f"handoff-{handoff_id}-return",
            retry_intervals=jobs.CALL_STEP_RETRY,
        )
    elif after.status is HandoffStatus.CALLER_DROPPED:
        record_dropped_callback(engine, handoff_id, now)
        if before in PENDING | {HandoffStatus.ACCEPTED, HandoffStatus.CONNECTED}:
            # Whether or not its CallSid is known yet: the job finds the attempt's legs. A
            # "connected" helper whose caller had hung up before they joined is alone: ended too.
            queues.enqueue(
                DIAL_QUEUE,
                jobs.HANG_UP_HELPER,
                handoff_id,
                job_id=f"handoff-{handoff_id}-hangup",
                retry_intervals=jobs.CALL_STEP_RETRY,
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
        now=now,  # dated when the caller dropped, not when a late callback was applied
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

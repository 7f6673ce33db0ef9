"""What staff do to a handoff from the console: record the outcome, leave the call, cancel a
helper still being called. Each is recorded first, then acted on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ivr.decisions.routing import ReasonCode
from ivr.store import audit
from ivr.store import callbacks as callback_store
from ivr.store.handoff_tables import handoffs

if TYPE_CHECKING:
    from ivr.queueing import Queues

from ivr.decisions.handoffs import (
    DIAL_QUEUE,
    PENDING,
    EventSource,
    Handoff,
    HandoffError,
    HandoffEvent,
    HandoffStatus,
    LiveCallStatus,
    Outcome,
    OutcomeAlreadyRecorded,
    _opt_utc,
    _utc,
)
from ivr.store.handoffs import _LOCK_HANDOFF, _insert_event, _rederive, get_handoff, get_live_call
from workers import jobs

log = logging.getLogger(__name__)

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
        jobs.REMOVE_CALL_TAKER,
        live_call_id,
        job_id=f"live-{live_call_id}-leave",
        retry_intervals=jobs.CALL_STEP_RETRY,
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
        jobs.CANCEL_HELPER,
        handoff_id,
        job_id=f"handoff-{handoff_id}-cancel",
        retry_intervals=jobs.CALL_STEP_RETRY,
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

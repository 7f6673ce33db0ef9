"""RQ jobs of warm handoffs: dial the helper, announce, return to the call-taker, sweep.

Every job takes ids, re-reads the record, and is safe to run twice: an attempt is dialed only
when the handoff's own history says it is next, and a create-call whose result is unknown
(a timeout) is never repeated blindly — the sweep settles it after the ring timeout.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

import redis
from twilio.base.exceptions import TwilioRestException

from ivr import twilio_rest
from ivr.decisions.handoffs import (
    CALL_TAKER_LABEL,
    CALLER_LABEL,
    EventSource,
    HandoffEvent,
    HandoffStatus,
    LiveCallStatus,
    Origin,
)
from ivr.decisions.routing import Member, ReasonCode, on_duty, ring_timeout
from ivr.flows import conference_inbox, handoffs
from ivr.flows.desk import CONFERENCE_EVENTS, HANDOFF, INTAKE, TransferDesk
from workers import context
from workers import handoff_legs as legs
from workers.handoff_legs import (
    HELPER_CALL_EVENTS,
    PARTICIPANT_CALL_EVENTS,
    PERMANENT_STATUS,
    _caller_call_ended,
    _conference_ref,
    _config,
    _end_helper_leg,
    _helper_legs,
    _return_desk_leg,
    _roster,
    _urls,
)

log = logging.getLogger(__name__)


STUCK_AFTER = timedelta(seconds=60)
"""Beyond the ring timeout, how long a dial may go without news before the sweep settles it."""

DIAL_LOCK_SECONDS = 300
"""How long a dial run may hold its attempt before another run may take it: longer than RQ
lets a job run (180 s) and than create_call's retries can take, so a live run always still
holds it; a killed worker's lock expires; a finished run releases it."""

REQUESTED_GRACE = timedelta(seconds=30)
"""A handoff still 'requested' (or falling back) this long lost its job: the sweep queues it."""


def dial_helper(handoff_id: int, attempt: int) -> str:
    """Dial attempt `attempt` of the handoff's chain (the Calls API, whisper first); past the end, return."""
    ctx = context.current()
    now = legs._now()
    handoff = handoffs.get_handoff(ctx.engine, handoff_id)
    if handoff is None:
        log.error("dial_helper: no such handoff handoff_id=%s", handoff_id)
        return "missing"
    # A rerun of this same attempt (RQ retry after an error) goes on, to check and place the call.
    rerun = (
        handoff.status is HandoffStatus.DIALING
        and handoff.attempt == attempt
        and not handoff.helper_call_sid
    )
    if not rerun:
        if handoff.status not in (HandoffStatus.REQUESTED, HandoffStatus.FALLING_BACK):
            return f"skipped:{handoff.status.value}"
        if handoff.attempt != attempt - 1:
            return "skipped:out-of-turn"
        if attempt > 1:
            held = _before_the_next_helper(ctx, handoff, now)
            if held is not None:
                return held
    if attempt > len(handoff.chain):
        last = handoffs.derive(handoffs.handoff_events(ctx.engine, handoff_id)).last_failure
        handoffs.apply_event(
            ctx.engine,
            ctx.queues,
            handoff_id,
            HandoffEvent.RETURNED,
            source=EventSource.BRIDGELINE,
            dedupe_key=f"h{handoff_id}:returned",
            occurred_at=now,
            now=now,
            reason=last or ReasonCode.CHAIN_EXHAUSTED.value,
            detail=f"chain of {len(handoff.chain)} exhausted",
        )
        log.info("dial_helper: chain exhausted handoff_id=%s", handoff_id)
        return "returned"
    roster = _roster()
    member = roster.member(handoff.chain[attempt - 1])
    common = {
        "source": EventSource.BRIDGELINE,
        "occurred_at": now,
        "now": now,
        "attempt": attempt,
    }
    if member is None:
        # The roster changed since the chain was frozen: skip this step, with its reason.
        if _take_attempt(ctx, handoff, attempt, handoff.chain[attempt - 1], None, now) is None:
            return _moved_on(ctx, handoff, now)
        handoffs.apply_event(
            ctx.engine,
            ctx.queues,
            handoff_id,
            HandoffEvent.DIAL_REFUSED,
            dedupe_key=f"h{handoff_id}:a{attempt}:dial_refused",
            reason=ReasonCode.DIAL_REFUSED.value,
            detail="no longer in the roster",
            **common,
        )
        return "refused"
    # Record first: the attempt and its start time exist before Twilio is asked to ring anyone,
    # and only if, in the same transaction, the handoff still waits for this attempt and the
    # caller is still there (checked above, but the caller's leg may end on a web process or
    # another worker in between: whichever records second sees the other).
    recorded = _take_attempt(ctx, handoff, attempt, member.member_id, member.kind, now)
    if recorded is None:
        return _moved_on(ctx, handoff, now)
    # One run at a time per attempt: a second copy of this job (a retried webhook queued it
    # again, or RQ retried it) running on another worker must not dial while this one does.
    lock = ctx.queues.connection.lock(
        f"{ctx.queues.prefix}:dial:h{handoff_id}:a{attempt}", timeout=DIAL_LOCK_SECONDS
    )
    if not lock.acquire(blocking=False):
        return "skipped:dialing-elsewhere"
    try:
        return _place_helper_call(ctx, handoff, attempt, member, recorded, now, common)
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()


def _take_attempt(
    ctx: context.WorkerContext,
    handoff: handoffs.Handoff,
    attempt: int,
    member_id: str,
    detail: str | None,
    now: datetime,
) -> handoffs.Recorded | None:
    """The guarded "dialing attempt n" transition (None: the handoff moved on meanwhile)."""
    return handoffs.begin_attempt(
        ctx.engine,
        ctx.queues,
        handoff.id,
        attempt,
        member_id=member_id,
        detail=detail,
        occurred_at=now,
        now=now,
    )


def _moved_on(ctx: context.WorkerContext, handoff: handoffs.Handoff, now: datetime) -> str:
    """Why the guarded transition refused; a caller whose call ended is recorded as gone."""
    after = handoffs.get_handoff(ctx.engine, handoff.id)
    if after is None:
        return "missing"
    live = handoffs.get_live_call_only(ctx.engine, handoff.live_call_id)
    if after.status not in handoffs.TERMINAL and live is not None:
        if live.status is LiveCallStatus.ENDED:
            _record_caller_gone(ctx, live, now)
            log.info("dial_helper: the caller is gone, no next helper handoff_id=%s", handoff.id)
            return "skipped:caller-gone"
    return f"skipped:{after.status.value}"


def _record_caller_gone(ctx: context.WorkerContext, live: handoffs.LiveCall, now: datetime) -> None:
    handoffs.record_caller_left(
        ctx.engine,
        ctx.queues,
        live,
        at=live.ended_at or now,
        now=now,
        dedupe_key=f"{live.call_sid}:call-ended",
        source=EventSource.BRIDGELINE,
    )


def _before_the_next_helper(
    ctx: context.WorkerContext, handoff: handoffs.Handoff, now: datetime
) -> str | None:
    """Before a fallback dials the next helper: the callbacks of this call still waiting in
    the inbox are applied first (one may say the helper did join and the call is over), and
    a caller who is gone is never followed by a new dial (a dropped handoff: a callback, the
    helper's leg stopped). None: go on and dial; else why not."""
    if conference_inbox.pending(ctx.engine, handoff.live_call_id):
        live_id, sleep, clock = handoff.live_call_id, legs._sleep, legs._now
        apply_conference_inbox(conference_inbox.wait_to_settle(ctx.engine, live_id, sleep, clock))
        after = handoffs.get_handoff(ctx.engine, handoff.id)
        if after is None:
            return "missing"
        if after.status is not HandoffStatus.FALLING_BACK or after.attempt != handoff.attempt:
            return f"skipped:{after.status.value}"
    live = handoffs.get_live_call_only(ctx.engine, handoff.live_call_id)
    if live is not None and live.status is LiveCallStatus.ENDED:
        _record_caller_gone(ctx, live, now)
        log.info("dial_helper: the caller is gone, no next helper handoff_id=%s", handoff.id)
        return "skipped:caller-gone"
    return None


def _place_helper_call(
    ctx: context.WorkerContext,
    handoff: handoffs.Handoff,
    attempt: int,
    member: Member,
    recorded: handoffs.Recorded,
    now: datetime,
    common: dict[str, Any],
) -> str:
    """Place the helper's call for `attempt` unless a run before this one already did."""
    handoff_id = handoff.id
    roster = _roster()
    events = handoffs.handoff_events(ctx.engine, handoff_id)
    mine = [e for e in events if e.event is HandoffEvent.DIALING and e.attempt == attempt]
    derived = handoffs.derive(events)
    if any(e.call_sid for e in mine) or derived.attempt != attempt:
        return "skipped:already-dialing"
    if derived.status is not HandoffStatus.DIALING:
        return f"skipped:{derived.status.value}"  # e.g. the caller left just now: ring nobody
    # A second run of this job (RQ retry, a worker that died) asks Twilio before dialing again.
    started = now if recorded.new else min(e.occurred_at for e in mine)
    urls = _urls()
    try:
        call = twilio_rest.create_call(
            ctx.twilio,
            to=member.address,
            from_=ctx.config.numbers["caller_id"],
            attempt_started=started,
            check_first=not recorded.new,
            sleep=legs._sleep,
            url=urls(f"{HANDOFF}/whisper", h=handoff_id, at=attempt),
            method="POST",
            timeout=ring_timeout(roster, member),
            status_callback=urls(
                f"{HANDOFF}/helper-status", h=handoff_id, at=attempt, live=handoff.live_call_id
            ),
            status_callback_method="POST",
            status_callback_event=HELPER_CALL_EVENTS,
        )
    except TwilioRestException as exc:
        if exc.status not in PERMANENT_STATUS:
            raise
        handoffs.apply_event(
            ctx.engine,
            ctx.queues,
            handoff_id,
            HandoffEvent.DIAL_REFUSED,
            dedupe_key=f"h{handoff_id}:a{attempt}:dial_refused",
            member_id=member.member_id,
            reason=ReasonCode.DIAL_REFUSED.value,
            detail=f"twilio {exc.status} code {exc.code}",
            **common,
        )
        log.warning(
            "dial_helper: refused handoff_id=%s attempt=%s status=%s code=%s",
            handoff_id,
            attempt,
            exc.status,
            exc.code,
        )
        return "refused"
    # RetriesExhausted / CallOutcomeUnknown propagate: RQ retries this job, which then checks
    # Twilio for the call before placing it; if retries run out, the sweep settles the attempt.
    handoffs.record_event(
        ctx.engine,
        handoff_id,
        HandoffEvent.DIALING,
        source=EventSource.BRIDGELINE,
        dedupe_key=f"h{handoff_id}:a{attempt}:placed",
        occurred_at=now,
        now=now,
        attempt=attempt,
        member_id=member.member_id,
        call_sid=call.sid,
        detail="call placed",
    )
    log.info("dial_helper: dialing handoff_id=%s attempt=%s", handoff_id, attempt)
    after = handoffs.get_handoff(ctx.engine, handoff_id)
    if after is not None and after.status is HandoffStatus.CANCELLED:
        # Cancelled while Twilio was placing the call: the cancel job found no leg to end.
        _end_helper_leg(ctx, call.sid)
        return "cancelled"
    if after is not None and after.status is HandoffStatus.CALLER_DROPPED:
        _end_helper_leg(ctx, call.sid)  # the caller left while Twilio was placing the call
        return "caller-dropped"
    return "dialing"


def announce_connected(handoff_id: int) -> str:
    """Tell the call-taker's leg the helper is connected and they may hang up."""
    ctx = context.current()
    handoff = handoffs.get_handoff(ctx.engine, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.CONNECTED:
        return "skipped"
    live = handoffs.get_live_call(ctx.engine, handoff.live_call_id)
    if live is None or live.status is LiveCallStatus.ENDED:
        return "skipped"
    label = CALLER_LABEL if live.origin is Origin.DESK else CALL_TAKER_LABEL
    participant = ctx.twilio.conferences(_conference_ref(live)).participants(label)
    twilio_rest.with_retries(
        lambda: participant.update(
            announce_url=_urls()(f"{HANDOFF}/announce", kind="connected"),
            announce_method="POST",
        ),
        what="announce connected",
        sleep=legs._sleep,
    )
    now = legs._now()
    handoffs.record_event(
        ctx.engine,
        handoff_id,
        HandoffEvent.ANNOUNCED,
        source=EventSource.BRIDGELINE,
        dedupe_key=f"h{handoff_id}:announced",
        occurred_at=now,
        now=now,
        detail=f"connected, to {label}",
    )
    return "announced"


def return_to_call_taker(handoff_id: int) -> str:
    """Nobody took the call: the desk leg hears what happened and gets the offer again."""
    ctx = context.current()
    handoff = handoffs.get_handoff(ctx.engine, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.RETURNED:
        return "skipped"
    live = handoffs.get_live_call(ctx.engine, handoff.live_call_id)
    if live is None or live.status is LiveCallStatus.ENDED:
        return "skipped"
    urls = _urls()
    if live.origin is Origin.DESK:
        _return_desk_leg(ctx, handoff, live)
    else:
        taker = ctx.twilio.conferences(_conference_ref(live)).participants(CALL_TAKER_LABEL)
        twilio_rest.with_retries(
            lambda: taker.update(
                announce_url=urls(f"{HANDOFF}/announce", kind="returned"), announce_method="POST"
            ),
            what="announce returned",
            sleep=legs._sleep,
        )
    return "returned"


def hang_up_helper(handoff_id: int) -> str:
    """The caller dropped: stop the helper's phone ringing (or the whisper, or the conference).

    Every leg placed for the current attempt is ended, not only the one the derived status
    names: a drop recorded before the dial job stored the CallSid must not leave a phone ringing.
    """
    ctx = context.current()
    handoff = handoffs.get_handoff(ctx.engine, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.CALLER_DROPPED:
        return "skipped"
    legs = _helper_legs(ctx, handoff)
    if handoff.helper_call_sid and handoff.helper_call_sid not in legs:
        legs.append(handoff.helper_call_sid)
    if not legs:
        return "skipped"
    ended = [sid for sid in legs if _end_helper_leg(ctx, sid)]
    return "hung-up" if ended else "already-ended"


def check_caller_on_line(handoff_id: int) -> str:
    """Once the desk's announcement is over: is the caller still on their call?

    A caller who hangs up before their leg joins the conference (while the desk announces the
    helper) produces no conference event. Twilio is asked for the caller's call; if it is over,
    the drop is recorded, dated when Twilio says the call ended (so a helper who joined after
    that was alone): a dropped-handoff callback, and the helper's call stopped. A caller still
    on the line is followed by the conference's own events from then on.
    """
    ctx = context.current()
    handoff = handoffs.get_handoff(ctx.engine, handoff_id)
    if handoff is None or handoff.status in handoffs.TERMINAL:
        return "skipped"
    live = handoffs.get_live_call(ctx.engine, handoff.live_call_id)
    if live is None or live.status is LiveCallStatus.ENDED:
        return "skipped"
    ended_at = _caller_call_ended(ctx, live.call_sid)
    if ended_at is None:
        return "on-the-line"
    now = legs._now()
    handoffs.record_caller_left(
        ctx.engine,
        ctx.queues,
        live,
        at=min(ended_at, now),
        now=now,
        dedupe_key=f"{live.call_sid}:call-ended",
        source=EventSource.BRIDGELINE,
    )
    log.warning(
        "handoff: caller hung up before joining the conference handoff_id=%s live_call_id=%s",
        handoff_id,
        live.id,
    )
    return "caller-dropped"


def cancel_helper(handoff_id: int) -> str:
    """The call-taker cancelled: end the helper's leg; a desk call-taker gets the offer again.

    A leg the dial job places after this ran is ended by the dial job itself (it re-reads the
    status once the call is placed).
    """
    ctx = context.current()
    handoff = handoffs.get_handoff(ctx.engine, handoff_id)
    if handoff is None or handoff.status is not HandoffStatus.CANCELLED:
        return "skipped"
    ended = [sid for sid in _helper_legs(ctx, handoff) if _end_helper_leg(ctx, sid)]
    live = handoffs.get_live_call(ctx.engine, handoff.live_call_id)
    if live is not None and live.origin is Origin.DESK and live.status is not LiveCallStatus.ENDED:
        _return_desk_leg(ctx, handoff, live)
    log.info("cancel_helper: handoff_id=%s legs_ended=%s", handoff_id, len(ended))
    return f"cancelled:{len(ended)}"


def end_if_caller_alone(live_call_id: int) -> str:
    """A helper left the conference: if only the caller is still in it, end the call.

    Otherwise a caller whose helper said goodbye would sit alone on hold music. A call-taker
    still on the line, or another handoff under way, keeps the conference going.
    """
    ctx = context.current()
    live = handoffs.get_live_call(ctx.engine, live_call_id)
    if live is None or live.status is LiveCallStatus.ENDED or not live.conference_sid:
        return "skipped"
    if handoffs.active_handoffs(ctx.engine, live_call_id):
        return "handoff-under-way"  # another helper is on, or being dialed
    conference = ctx.twilio.conferences(live.conference_sid)
    try:
        participants = twilio_rest.with_retries(
            lambda: conference.participants.list(limit=20), what="list participants", sleep=legs._sleep
        )
        if any((p.label or "") != CALLER_LABEL for p in participants):
            return "not-alone"
        twilio_rest.with_retries(
            lambda: conference.update(status="completed"), what="end conference", sleep=legs._sleep
        )
    except TwilioRestException as exc:
        if exc.status == 404:
            return "already-ended"
        raise
    log.info(
        "handoff: caller was alone after the helper left; conference ended live=%s", live_call_id
    )
    return "ended"


def remove_call_taker(live_call_id: int) -> str:
    """The console's 'leave call': take the call-taker out; the conference goes on."""
    ctx = context.current()
    live = handoffs.get_live_call(ctx.engine, live_call_id)
    if live is None or live.status is LiveCallStatus.ENDED:
        return "skipped"
    try:
        taker = ctx.twilio.conferences(_conference_ref(live)).participants(CALL_TAKER_LABEL)
        twilio_rest.with_retries(taker.delete, what="remove call-taker", sleep=legs._sleep)
    except TwilioRestException as exc:
        if exc.status == 404:
            return "already-left"
        raise
    return "removed"


def dial_call_taker(live_call_id: int, attempt: int) -> str:
    """Intake: add the next on-duty call-taker to the caller's conference; then the fallback line."""
    ctx = context.current()
    now = legs._now()
    roster = _roster()
    live = handoffs.get_live_call(ctx.engine, live_call_id)
    if live is None or live.status is not LiveCallStatus.WAITING:
        return "skipped"
    claimed = handoffs.claim_call_taker_attempt(ctx.engine, live_call_id, attempt, now)
    if not claimed and live.call_taker_attempt != attempt:
        return "skipped"
    # Not claimed but this is the current attempt: a rerun, so Twilio is asked before dialing.
    takers = on_duty(roster, "call_taker", now)
    urls = _urls()
    if attempt <= len(takers):
        address = takers[attempt - 1].address
        timeout = ring_timeout(roster, takers[attempt - 1])
    elif attempt == len(takers) + 1 and roster.call_taker_fallback:
        address = roster.call_taker_fallback
        timeout = roster.call_takers.ring_timeout_seconds if roster.call_takers else 20
    else:
        # Nobody answered: take the caller out of the conference to an apology and a person.
        caller_leg = ctx.twilio.calls(live.call_sid)
        twilio_rest.with_retries(
            lambda: caller_leg.update(url=urls(f"{INTAKE}/unanswered"), method="POST"),
            what="intake unanswered",
            sleep=legs._sleep,
        )
        log.warning("intake: no call-taker answered live_call_id=%s", live_call_id)
        return "unanswered"
    twilio_rest.add_participant(
        ctx.twilio,
        live.conference_name,
        label=CALL_TAKER_LABEL,
        from_=ctx.config.numbers["caller_id"],
        to=address,
        check_first=not claimed,
        sleep=legs._sleep,
        timeout=timeout,
        status_callback=urls(f"{INTAKE}/call-taker-status", live=live_call_id, at=attempt),
        status_callback_method="POST",
        status_callback_event=PARTICIPANT_CALL_EVENTS,
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep="false",
        conference_status_callback=urls(f"{HANDOFF}/conference-status", live=live_call_id),
        conference_status_callback_method="POST",
        conference_status_callback_event=CONFERENCE_EVENTS,
    )
    return "dialing"


def _desk() -> TransferDesk:
    """The transfer desk as the web processes build it, for applying their callbacks here."""
    ctx = context.current()
    roster, tree = _config(str(ctx.settings.config_dir))
    return TransferDesk(
        roster=roster,
        tree=tree,
        base_url=ctx.settings.public_base_url,
        engine=ctx.engine,
        queues=ctx.queues,
        hold_music_url=ctx.config.menus.settings.hold_music_url,
        clock=lambda: legs._now(),
    )


def apply_conference_inbox(settled: datetime | None = None) -> int:
    """Apply the conference and helper-call status callbacks the web processes took in and
    that have settled, oldest first (in order per call). `settled`: rows inboxed by then
    count as settled (default: conference_inbox.SETTLE_SECONDS ago)."""
    ctx = context.current()
    applied = conference_inbox.apply_pending(
        ctx.engine, _desk().inbox_callback, lambda: legs._now(), settled=settled
    )
    if applied:
        log.info("conference callbacks applied: count=%s", applied)
    return applied


def sweep_handoffs() -> int:
    """Queue lost dial jobs and settle dials Twilio never reported on. Returns how many."""
    ctx = context.current()
    roster = _roster()
    now = legs._now()
    settled = 0
    if conference_inbox.pending(ctx.engine):
        # Callbacks taken in while Redis was down (their apply job was never queued).
        settled += apply_conference_inbox()
    for live in handoffs.list_live_calls(ctx.engine):
        for handoff in live.handoffs:
            quiet = now - handoff.updated_at
            if handoff.status in (HandoffStatus.REQUESTED, HandoffStatus.FALLING_BACK):
                if quiet >= REQUESTED_GRACE:
                    handoffs.enqueue_dial(ctx.queues, handoff.id, handoff.attempt + 1)
                    settled += 1
            elif handoff.status in (HandoffStatus.DIALING, HandoffStatus.RINGING):
                member = roster.member(handoff.member_id or "")
                limit = timedelta(seconds=ring_timeout(roster, member) if member else 20)
                if quiet >= limit + STUCK_AFTER:
                    handoffs.apply_event(
                        ctx.engine,
                        ctx.queues,
                        handoff.id,
                        HandoffEvent.NO_ANSWER,
                        source=EventSource.BRIDGELINE,
                        dedupe_key=f"h{handoff.id}:a{handoff.attempt}:sweep-no-answer",
                        occurred_at=now,
                        now=now,
                        attempt=handoff.attempt,
                        reason=ReasonCode.NO_ANSWER.value,
                        detail="no status from Twilio within the ring timeout",
                    )
                    settled += 1
    return settled

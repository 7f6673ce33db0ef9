"""Conference events -> handoff events: the helper's, the caller's and the call-taker's status
callbacks and the conference's participant events, applied by the web or by a worker alike."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from ivr.decisions.handoffs import (
    CALL_TAKER_LABEL,
    CALLER_LABEL,
    EventSource,
    HandoffEvent,
    HandoffStatus,
    LiveCallStatus,
    Origin,
)
from ivr.flows import handoffs
from ivr.flows.desk_state import HELPER_CALL_EVENTS, _int, _per_handoff, parse_helper_label
from ivr.flows.helper_leg import HelperLeg
from workers import jobs

log = logging.getLogger(__name__)


class ConferenceEvents(HelperLeg):
    """Applying conference and leg status callbacks, on top of every desk part."""

    def helper_status(
        self,
        handoff_id: int,
        attempt: int,
        form: Mapping[str, str],
        token: str | None,
        received_at: datetime | None = None,
    ) -> None:
        """The helper leg's call progress (initiated, ringing, answered, completed and its kind).

        Taken in through the call's inbox with its conference callbacks (`inbox_callback`), so
        it is applied after them: `received_at` is when the webhook took it in.
        """
        status = (form.get("CallStatus") or "").lower()
        event = HELPER_CALL_EVENTS.get(status)
        if event is None:
            return
        call_sid = (form.get("CallSid") or "")[:64]
        now = self.clock()
        seq = _int(form.get("SequenceNumber"))
        stamp = form.get("Timestamp") or ""
        handoffs.apply_event(
            self.engine,
            self.queues,
            handoff_id,
            event,
            source=EventSource.TWILIO,
            dedupe_key=f"{call_sid}:{status}:{seq if seq is not None else stamp}",
            token=token,
            occurred_at=handoffs.twilio_time(stamp, received_at or now),
            now=now,
            attempt=attempt,
            call_sid=call_sid or None,
            sequence=seq,
            reason=handoffs.ATTEMPT_FAILURES[event].value
            if event in handoffs.ATTEMPT_FAILURES
            else None,
        )

    def helper_call_of(self, handoff_id: int, live_call_id: int) -> int:
        """The live call whose inbox a helper call's status callback goes through: the one in
        the callback's URL, else (a call dialed before the URL carried it) the handoff's."""
        if live_call_id > 0:
            return live_call_id
        handoff = handoffs.get_handoff(self.engine, handoff_id) if handoff_id > 0 else None
        return handoff.live_call_id if handoff is not None else 0

    def inbox_callback(
        self,
        live_id: int,
        form: Mapping[str, str],
        token: str | None,
        received_at: datetime | None = None,
    ) -> None:
        """Apply one callback taken in by the call's inbox (ivr.conference_inbox), in the
        order it arrived: a helper call's status, or a conference's."""
        handoff_id, attempt = _int(form.get("Handoff")), _int(form.get("Attempt"))
        if handoff_id is not None and attempt is not None:
            self.helper_status(handoff_id, attempt, form, token, received_at)
        else:
            self.conference_event(live_id, form, token, received_at)

    def caller_call_status(self, call_sid: str, form: Mapping[str, str], token: str | None) -> None:
        """The status callback of a desk or intake leg itself (the number's "call status
        changes" URL): when that call is over, every handoff still under way records that the
        caller left, even if the leg never reached the conference (hung up mid-announcement)."""
        status = (form.get("CallStatus") or "").lower()
        if not call_sid or status not in handoffs.CALLER_CALL_OVER:
            return
        live = handoffs.live_call_by_sid(self.engine, call_sid[:64])
        if live is None:
            return
        now = self.clock()
        touched = handoffs.record_caller_left(
            self.engine,
            self.queues,
            live,
            at=handoffs.twilio_time(form.get("Timestamp"), now),
            now=now,
            dedupe_key=f"{call_sid[:64]}:call-ended",
            token=token,
        )
        if touched:
            log.info("caller's call ended live_call_id=%s handoffs=%s", live.id, touched)

    def call_taker_status(
        self, live_id: int, attempt: int, form: Mapping[str, str], token: str | None
    ) -> None:
        """An intake call-taker leg that did not answer: dial the next one (or the fallback line)."""
        status = (form.get("CallStatus") or "").lower()
        if status not in ("busy", "no-answer", "failed", "canceled"):
            return
        live = handoffs.get_live_call(self.engine, live_id)
        if live is None or live.status is not LiveCallStatus.WAITING:
            return
        if live.call_taker_attempt != attempt:
            return  # a late or repeated callback about an earlier attempt
        log.info("intake: call-taker attempt %s %s live_call_id=%s", attempt, status, live_id)
        self.queues.enqueue(
            handoffs.DIAL_QUEUE,
            jobs.DIAL_CALL_TAKER,
            live_id,
            attempt + 1,
            job_id=f"live-{live_id}-call-taker-{attempt + 1}",
            retry_intervals=jobs.CALL_STEP_RETRY,
        )

    def _call_taker_again(self, live: handoffs.LiveCall) -> None:
        """The call-taker left before any helper had the caller: the next one is dialed in."""
        handoffs.update_live_call(
            self.engine,
            live.id,
            self.clock(),
            status=LiveCallStatus.WAITING.value,
            call_taker_call_sid=None,
        )
        attempt = live.call_taker_attempt + 1
        log.warning("intake: call-taker left an unhelped caller live_call_id=%s", live.id)
        self.queues.enqueue(
            handoffs.DIAL_QUEUE,
            jobs.DIAL_CALL_TAKER,
            live.id,
            attempt,
            job_id=f"live-{live.id}-call-taker-{attempt}",
            retry_intervals=jobs.CALL_STEP_RETRY,
        )

    def conference_event(
        self,
        live_id: int,
        form: Mapping[str, str],
        token: str | None,
        received_at: datetime | None = None,
    ) -> None:
        """Conference start/end and participant join/leave, applied to the call's handoffs.

        `received_at`: when the webhook took the callback in (ivr.flows.conference_inbox), if earlier.
        """
        kind = (form.get("StatusCallbackEvent") or "").lower()
        live = handoffs.get_live_call_only(self.engine, live_id)
        if live is None:
            return
        name = form.get("FriendlyName")
        if name and name != live.conference_name:
            return  # an earlier conference of a desk call that has moved on to a new round
        now = self.clock()  # what the records' updated_at say (the rollups and sweeps read it)
        received = received_at or now
        conference_sid = (form.get("ConferenceSid") or "")[:64]
        if conference_sid and live.conference_sid != conference_sid:
            handoffs.update_live_call(self.engine, live_id, now, conference_sid=conference_sid)
        label = (form.get("ParticipantLabel") or "")[:64]
        call_sid = (form.get("CallSid") or "")[:64]
        seq = _int(form.get("SequenceNumber"))
        stamp = form.get("Timestamp") or ""
        at = handoffs.twilio_time(stamp, received)
        key = f"{conference_sid}:{call_sid}:{kind}:{seq if seq is not None else stamp}"
        common = {
            "source": EventSource.TWILIO,
            "token": token,
            "occurred_at": at,
            "now": now,
            "call_sid": call_sid or None,
            "sequence": seq,
        }
        target = parse_helper_label(label)
        if target is not None and kind in ("participant-join", "participant-leave"):
            handoff_id, attempt = target
            event = (
                HandoffEvent.HELPER_JOINED
                if kind == "participant-join"
                else HandoffEvent.HELPER_LEFT
            )
            recorded = handoffs.apply_event(
                self.engine,
                self.queues,
                handoff_id,
                event,
                dedupe_key=key,
                attempt=attempt,
                **common,
            )
            if event is HandoffEvent.HELPER_LEFT and recorded is not None and recorded.new:
                # Never leave the caller alone on hold music once their helper hung up.
                self.queues.enqueue(
                    "urgent",
                    jobs.END_IF_CALLER_ALONE,
                    live_id,
                    job_id=f"alone-{live_id}-{(call_sid or 'x')[:40]}",
                )
            return
        if label == CALL_TAKER_LABEL:
            if kind == "participant-join":
                handoffs.update_live_call(
                    self.engine,
                    live_id,
                    now,
                    status=LiveCallStatus.WITH_CALL_TAKER.value,
                    call_taker_call_sid=call_sid or None,
                )
            elif kind == "participant-leave":
                active = handoffs.active_handoffs(self.engine, live_id)
                for h in active:
                    handoffs.apply_event(
                        self.engine,
                        self.queues,
                        h.id,
                        HandoffEvent.CALL_TAKER_LEFT,
                        dedupe_key=f"{key}:h{h.id}",
                        **{**common, "token": _per_handoff(token, h.id)},
                    )
                helped = any(
                    h.status in (HandoffStatus.ACCEPTED, HandoffStatus.CONNECTED)
                    for h in handoffs.active_handoffs(self.engine, live_id)
                )
                if (
                    not helped
                    and live.status is LiveCallStatus.WITH_CALL_TAKER
                    and (not call_sid or call_sid == live.call_taker_call_sid)
                ):
                    self._call_taker_again(live)
            return
        if (label == CALLER_LABEL and kind == "participant-leave") or kind == "conference-end":
            event = (
                HandoffEvent.CALLER_LEFT
                if kind == "participant-leave"
                else HandoffEvent.CONFERENCE_ENDED
            )
            for h in handoffs.active_handoffs(self.engine, live_id):
                handoffs.apply_event(
                    self.engine,
                    self.queues,
                    h.id,
                    event,
                    dedupe_key=f"{key}:h{h.id}",
                    **{**common, "token": _per_handoff(token, h.id)},
                )
            if kind == "conference-end" or live.origin is Origin.DESK or label == CALLER_LABEL:
                handoffs.end_live_call(self.engine, live_id, at)

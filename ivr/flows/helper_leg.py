"""The helper's leg: the whisper (who is calling and why), press 1 to accept or decline, and the
announcement the conference hears when the helper joins."""

from __future__ import annotations

import logging

from twilio.twiml.voice_response import VoiceResponse

from ivr.decisions.handoffs import (
    EventSource,
    HandoffEvent,
    HandoffStatus,
)
from ivr.decisions.phrases import spoken_digits, spoken_phone
from ivr.flows import handoffs
from ivr.flows.desk_state import HANDOFF, WHISPER_TIMEOUT_SECONDS, helper_label, with_article
from ivr.flows.intake import IntakeLine
from ivr.phones import national_digits
from ivr.twiml import gather, say, to_xml

log = logging.getLogger(__name__)


class HelperLeg(IntakeLine):
    """The helper's whisper and answer, on top of the desk and intake line."""

    def whisper(self, handoff_id: int, attempt: int, tries: int = 0) -> str:
        """What the helper hears on answering: who, why, the risk answers; 1 accept, 2 decline."""
        handoff = handoffs.get_handoff(self.engine, handoff_id)
        if (
            handoff is None
            or handoff.attempt != attempt
            or handoff.status not in handoffs.PENDING
            or handoff.status is HandoffStatus.FALLING_BACK
        ):
            return self.end_call("Thank you. This call is no longer waiting for you. Goodbye.")
        response = VoiceResponse()
        g = gather(
            response,
            self.url(f"{HANDOFF}/whisper/answer", h=handoff_id, at=attempt, t=tries),
            "en",
            timeout=WHISPER_TIMEOUT_SECONDS,
            num_digits=1,
            speech=False,
        )
        say(g, self.whisper_text(handoff), "en")
        return to_xml(response)

    def whisper_text(self, handoff: handoffs.Handoff) -> str:
        """The summary a helper hears before accepting (never logged)."""
        label = self.roster.label(handoff.helper_type)
        risks = []
        for question in self.tree.questions:
            if question.id in handoff.answers:
                yes = handoff.answers[question.id]
                risks.append(f"{question.id.replace('_', ' ')}: {'yes' if yes else 'no'}")
        callback = (
            f"Callback number {spoken_phone(national_digits(handoff.callback_number))}."
            if handoff.callback_number
            else "No callback number was given."
        )
        taker = (
            f"call-taker {spoken_digits(handoff.call_taker_staff_id)}"
            if handoff.call_taker_staff_id
            else "a call-taker"
        )
        return " ".join(
            [
                f"Bridgeline warm handoff for {with_article(label)}, from {taker}.",
                f"Reason: {handoff.reason or 'not given'}.",
                f"Risk answers: {', '.join(risks) or 'none recorded'}.",
                callback,
                "To accept and join the caller, press 1. To decline, press 2.",
            ]
        )

    def whisper_answer(
        self, handoff_id: int, attempt: int, call_sid: str, digits: str | None, tries: int
    ) -> str:
        """1: accepted, join the conference; 2: declined; nothing: asked once more, then no response."""
        key = (digits or "").strip()[:1]
        now = self.clock()
        if key not in ("1", "2") and tries + 1 < 2:
            handoff = handoffs.get_handoff(self.engine, handoff_id)
            if (
                handoff is not None
                and handoff.status in handoffs.PENDING
                and handoff.attempt == attempt
            ):
                return self.whisper(handoff_id, attempt, tries + 1)
        event = {
            "1": HandoffEvent.ACCEPTED,
            "2": HandoffEvent.DECLINED,
        }.get(key, HandoffEvent.NO_RESPONSE)
        handoff = handoffs.get_handoff(self.engine, handoff_id)
        if handoff is None:
            return self.end_call("Thank you. Goodbye.")
        handoffs.apply_event(
            self.engine,
            self.queues,
            handoff_id,
            event,
            source=EventSource.STAFF,
            dedupe_key=f"h{handoff_id}:a{attempt}:{event.value}",
            occurred_at=now,
            now=now,
            attempt=attempt,
            member_id=handoff.member_id if handoff.attempt == attempt else None,
            call_sid=call_sid[:64] or None,
            reason=handoffs.ATTEMPT_FAILURES[event].value
            if event in handoffs.ATTEMPT_FAILURES
            else None,
        )
        if event is HandoffEvent.DECLINED:
            return self.end_call("Thank you. We will try someone else. Goodbye.")
        if event is HandoffEvent.NO_RESPONSE:
            return self.end_call("No answer was given. We will try someone else. Goodbye.")
        after = handoffs.get_handoff(self.engine, handoff_id)
        if (
            after is None
            or after.attempt != attempt
            or after.status
            not in (
                HandoffStatus.ACCEPTED,
                HandoffStatus.CONNECTED,
            )
        ):
            return self.end_call("Sorry, the caller is no longer waiting. Goodbye.")
        live = handoffs.get_live_call(self.engine, after.live_call_id)
        assert live is not None
        response = VoiceResponse()
        say(response, "Connecting you to the caller.", "en")
        self._conference(
            response,
            live.id,
            live.conference_name,
            label=helper_label(handoff_id, attempt),
            end_on_exit=False,
        )
        response.hangup()
        return to_xml(response)

    def announcement(self, kind: str) -> str:
        """Announced into the conference to the call-taker's leg."""
        text = {
            "connected": "The helper is connected. Call-taker, you may hang up now.",
            "returned": "No helper could take this call. The caller is still with you.",
        }.get(kind, "Please stay on the line.")
        response = VoiceResponse()
        say(response, text, "en")
        return to_xml(response)

"""The intake line: a call-taker number that puts the caller in a conference and rings the
call-takers on duty (the same desk, without the transfer from a PSAP)."""

from __future__ import annotations

import logging

from twilio.twiml.voice_response import VoiceResponse

from ivr.decisions.handoffs import (
    CALLER_LABEL,
    LiveCallStatus,
    Origin,
)
from ivr.flows import handoffs
from ivr.flows.desk_sign_in import DeskSignIn
from ivr.flows.desk_state import _usable
from ivr.twiml import say, to_xml
from workers import jobs

log = logging.getLogger(__name__)


class IntakeLine(DeskSignIn):
    """The intake line, on top of the desk."""

    def intake(self, call_sid: str, from_number: str, jurisdiction: str | None = None) -> str:
        """A caller to the intake number waits in a conference while a call-taker is dialed."""
        number = _usable(from_number)
        now = self.clock()
        live = handoffs.open_live_call(
            self.engine,
            call_sid=call_sid[:64],
            origin=Origin.INTAKE,
            callback_number=number,
            call_taker_staff_id=None,
            now=now,
            jurisdiction=jurisdiction,
        )
        if live.status is LiveCallStatus.WAITING:
            self.queues.enqueue(
                handoffs.DIAL_QUEUE,
                jobs.DIAL_CALL_TAKER,
                live.id,
                1,
                job_id=f"live-{live.id}-call-taker-1",
                retry_intervals=jobs.CALL_STEP_RETRY,
            )
        response = VoiceResponse()
        say(
            response,
            "Thank you for calling. Please stay on the line; someone will be with you shortly. "
            "If this is a life-threatening emergency, hang up and dial 9 1 1.",
            "en",
        )
        self._conference(
            response, live.id, live.conference_name, label=CALLER_LABEL, end_on_exit=True
        )
        response.hangup()
        return to_xml(response)

    def intake_unanswered(self, operator: str | None) -> str:
        """No call-taker and no fallback line answered: the caller is told and sent to a person."""
        response = VoiceResponse()
        say(response, "We are sorry, no one could take your call here.", "en")
        if operator:
            say(response, "Connecting you to an operator.", "en")
            response.dial(timeout=30).number(operator)
        say(response, "If this is an emergency, hang up and dial 9 1 1.", "en")
        response.hangup()
        return to_xml(response)

"""The 311 agent line: staff sign in by keypad and take residents waiting in the agent queue.

Residents who ask for a person on the self-service line wait in the Twilio queue named in
menus.yaml (`settings.agent_queue`). An agent calls this line, signs in with the same staff ID,
PIN and lockouts as the transfer desk, and is connected to the longest-waiting resident; after
each call they press 1 for the next one.
"""

from __future__ import annotations

from twilio.twiml.voice_response import VoiceResponse

from ivr.flows.desk import TransferDesk
from ivr.twiml import Urls, gather, say, to_xml

AGENT = "/voice/agent-line"
"""Path of the agent line's entry point (the Voice URL of the agents' number)."""

WAIT_FOR_CALLER_SECONDS = 120
"""How long an agent waits on an empty queue before being asked again."""


class AgentLine:
    """Builds the answer to each step of an agent's call."""

    def __init__(self, desk: TransferDesk, base_url: str, queue_name: str) -> None:
        self.desk = desk
        self.url = Urls(base_url)
        self.queue_name = queue_name

    def entry(self, call_sid: str, from_number: str) -> str:
        """Greeting and staff ID (a locked calling number is refused)."""
        return self.desk.entry(call_sid, from_number, base=AGENT, greeting="City agent line.")

    def staff_id_entered(self, call_sid: str, digits: str | None, attempt: int) -> str:
        return self.desk.staff_id_entered(call_sid, digits, attempt, base=AGENT)

    def pin_entered(
        self, call_sid: str, from_number: str, staff_id: str, digits: str | None
    ) -> str:
        """Check the PIN (desk rules), then connect the agent to the next resident."""
        signed_in = self.desk.sign_in(call_sid, from_number, staff_id, digits, base=AGENT)
        if isinstance(signed_in, str):
            return signed_in
        return self.take_next(signed_in.staff_id, preface=f"Signed in, {signed_in.name}.")

    def take_next(self, staff_id: str, preface: str | None = None) -> str:
        """Dial the agent queue: the longest-waiting resident, or wait for the next one."""
        response = VoiceResponse()
        if preface:
            say(response, preface, "en")
        say(response, "Connecting you to the next resident.", "en")
        dial = response.dial(
            action=self.url(f"{AGENT}/next", s=staff_id),
            method="POST",
            timeout=WAIT_FOR_CALLER_SECONDS,
        )
        dial.queue(self.queue_name, url=self.url(f"{AGENT}/connecting"), method="POST")
        return to_xml(response)

    def connecting(self) -> str:
        """Played to the resident just before the agent picks up (their language is not known
        on the agent's side of the queue, so both are said)."""
        response = VoiceResponse()
        say(response, "Thank you for waiting. A city agent is joining you now.", "en")
        say(response, "Gracias por esperar. Un agente de la ciudad le atenderá ahora.", "es")
        return to_xml(response)

    def after_call(self, staff_id: str, dial_status: str | None) -> str:
        """After a resident (or an empty queue): 1 for the next one, or hang up to sign out."""
        response = VoiceResponse()
        g = gather(
            response,
            self.url(f"{AGENT}/again", s=staff_id),
            "en",
            timeout=10,
            num_digits=1,
            speech=False,
        )
        if dial_status in ("no-answer", "busy", "failed", "canceled"):
            say(g, "No resident is waiting right now.", "en")
        say(g, "To take the next resident, press 1. To sign out, hang up.", "en")
        return to_xml(response)

    def again(self, staff_id: str, digits: str | None) -> str:
        """1: the next resident; anything else: signed out."""
        if (digits or "").startswith("1"):
            return self.take_next(staff_id)
        return self.desk.end_call("Signed out. Goodbye.")

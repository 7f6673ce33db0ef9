"""The telephone exchange of the local Twilio: calls, conferences, queues and the phones.

One lock guards all of it. A call's TwiML is played by ivr.simulator.Call (the same
interpreter the simulator uses); this module does what a TwiML document alone cannot: ring a
phone and wait for it to be answered, join conferences and run them, bridge a <Dial>,
move a call to new TwiML when the REST API says so, and send Twilio's status callbacks and
conference events. Work the REST API asks for (a redirect, an announcement, removing a
participant) is done on a worker thread after the answer, as Twilio does it asynchronously.

Phones: each number (or SIP/client address) has a behaviour, set through the control API:
"manual" (it rings until someone answers it through the control API, or the Timeout ends),
"human" or "machine" (answers by itself after `after` seconds), "busy", "failed",
"no-answer".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from xml.etree import ElementTree

import requests

from ivr.local_twilio.calls import (
    DEFAULT_DIAL_TIMEOUT,
    DEFAULT_GATHER_TIMEOUT,
    QUEUE_WAIT_SECONDS,
    Conference,
    JoinSpec,
    Leg,
    Participant,
    RestError,
    _now,
    sid,
)
from ivr.local_twilio.switch_core import SwitchCore
from ivr.simulator import Call, CallError

log = logging.getLogger(__name__)


class Switch(SwitchCore):
    """Every call, conference, queue, phone and text of one account."""

    def drive(self, leg: Leg, step: Callable[[Call], Any]) -> None:
        """Do `step` on the call's TwiML, then whatever the call is now waiting at."""
        if leg.call is None:
            raise RestError(400, 21220, "Call is not in-progress.")
        leg.generation += 1
        try:
            step(leg.call)
        except CallError as exc:
            self.report(f"call {leg.sid}: {exc}")
            self._application_error(leg)
        except requests.RequestException as exc:
            self.report(f"call {leg.sid}: Bridgeline did not answer ({type(exc).__name__})")
            self._application_error(leg)
        self._after(leg)

    def _after(self, leg: Leg) -> None:
        call = leg.call
        if call is None or not leg.active:
            return
        if leg.queue is not None and call._queue is None:
            self._unqueue(leg)
        if call.ended:
            parent = self.calls.get(leg.parent_sid or "")
            if (
                parent is not None
                and leg.bridged is None
                and not call.hung_up
                and not leg.app_error
                and parent.dial_child == leg.sid
            ):
                # The whisper (the noun's url) played to its end: now the two are connected.
                call.ended = False
                if call.transcript and call.transcript[-1] == "[call ends]":
                    call.transcript.pop()
                self._bridge(leg)
                return
            self.finish(leg, "completed")
            return
        verb = call.waiting
        if verb is None:
            return
        if verb is not leg.dialing:
            leg.dialing = None
        if verb.tag == "Dial":
            if leg.dialing is None:
                leg.dialing = verb
                self._dial(leg, verb)
        elif verb.tag in ("Gather", "Record"):
            raw = verb.get("timeout", str(DEFAULT_GATHER_TIMEOUT))
            seconds = int(raw) if raw.isdigit() else DEFAULT_GATHER_TIMEOUT
            self._timer(leg, seconds, lambda: self.drive(leg, Call.silence))
        elif verb.tag == "Enqueue":
            self._enqueue(leg, verb)

    def place(self, leg: Leg) -> None:
        """A new outgoing leg: initiated now, ringing a moment later."""
        self.calls[leg.sid] = leg
        self._status(leg, "initiated")
        leg.notes.append(f"[phone {leg.to} rings: a call from {leg.from_}]")
        self._timer(leg, self.ring_seconds, lambda: self._ringing(leg))

    def _ringing(self, leg: Leg) -> None:
        if leg.status != "queued":
            return
        self._status(leg, "ringing")
        phone = self.phones.get(leg.to, self.default_phone)
        leg.generation += 1
        if phone.mode in ("busy", "failed"):
            self._timer(leg, phone.after, lambda: self.finish(leg, phone.mode))
        elif phone.mode in ("human", "machine"):
            self._timer(leg, phone.after, lambda: self.answer(leg, phone.mode))
        self._timer(leg, leg.timeout, lambda: self.finish(leg, "no-answer"))

    def answer(self, leg: Leg, who: str = "human") -> None:
        """The phone is picked up by a person or a machine."""
        if leg.status not in ("queued", "ringing"):
            raise RestError(409, 0, f"the call is {leg.status}, not ringing")
        leg.generation += 1
        leg.answered = _now()
        leg.machine = who == "machine"
        if leg.machine_detection:
            if who == "human":
                leg.answered_by = "human"
            elif leg.machine_detection == "DetectMessageEnd":
                leg.answered_by = "machine_end_beep"
            else:
                leg.answered_by = "machine_start"
        leg.notes.append(f"[answered by a {'machine' if leg.machine else 'person'}]")
        self._status(leg, "in-progress")
        leg.call = self._new_call(leg)
        if leg.join is not None:
            spec = leg.join
            conference = self.conferences[spec.conference_sid]
            participant = conference.connecting.pop(leg.sid, None) or Participant(
                leg.sid, spec.label
            )
            participant.start_on_enter = spec.start_on_enter
            participant.end_on_exit = spec.end_on_exit
            participant.muted = spec.muted
            participant.beep = spec.beep
            participant.status = "connected"
            self._join(leg, conference, participant, spec.wait_url, spec.wait_method)
            return
        if leg.parent_sid is not None:
            if leg.child_url:
                self.drive(leg, lambda call: call.redirect(leg.child_url or ""))
            else:
                self._bridge(leg)
            return
        if leg.twiml is not None:
            body = leg.twiml.encode()
            self.drive(leg, lambda call: call.play_twiml(body))
        else:
            self.drive(leg, lambda call: call.redirect(leg.url or ""))

    def finish(self, leg: Leg, status: str) -> None:
        """The leg ends with `status` (completed, busy, failed, no-answer, canceled)."""
        if not leg.active:
            return
        if status == "completed" and leg.status in ("queued", "ringing"):
            status = "canceled"
        leg.generation += 1
        leg.ended = _now()
        was = leg.status
        leg.status = status
        if leg.call is not None:
            leg.call.ended = True
            leg.call.waiting = None
        ending = (
            "[call ends]" if was == "in-progress" else f"[call ends: {status.replace('-', ' ')}]"
        )
        if leg.heard()[-1:] != [ending]:
            leg.note(ending)
        if leg.conference_sid is not None:
            self._leave(leg, continue_twiml=False)
        for conference in self.conferences.values():
            conference.connecting.pop(leg.sid, None)
        if leg.queue is not None:
            self._unqueue(leg)
        if leg.dial_child is not None:
            child = self.calls.get(leg.dial_child)
            leg.dial_child = None
            if child is not None:
                self.finish(child, "completed")
        if leg.bridged is not None:
            other = self.calls.get(leg.bridged)
            leg.bridged = None
            if other is not None:
                other.bridged = None
                if other.parent_sid == leg.sid:
                    self.finish(other, "completed")
                elif leg.parent_sid == other.sid:
                    self._dial_ended(other, "completed", leg)
                else:  # a queue bridge: the waiting caller's <Enqueue> ends
                    self._queue_bridge_ended(other)
        elif leg.parent_sid is not None:
            parent = self.calls.get(leg.parent_sid)
            if parent is not None and parent.dial_child == leg.sid:
                parent.dial_child = None
                dial_status = status if status != "canceled" else "no-answer"
                self._dial_ended(parent, dial_status, leg)
        self._status(leg, status)

    def _dial(self, leg: Leg, verb: ElementTree.Element) -> None:
        nouns = list(verb)
        if not nouns and (verb.text or "").strip():
            nouns = [ElementTree.Element("Number")]
            nouns[0].text = verb.text
        conference = next((n for n in nouns if n.tag == "Conference"), None)
        if conference is not None:
            self._join_noun(leg, conference)
            return
        queue = next((n for n in nouns if n.tag == "Queue"), None)
        if queue is not None:
            self._dial_queue(leg, (queue.text or "").strip())
            return
        noun = nouns[0] if nouns else None
        if noun is None or noun.tag not in ("Number", "Sip", "Client"):
            self.report(f"call {leg.sid}: <Dial> with nothing the local Twilio can dial")
            return
        address = (noun.text or "").strip()
        if noun.tag == "Client" and not address.startswith("client:"):
            address = "client:" + address
        raw_timeout = verb.get("timeout", str(DEFAULT_DIAL_TIMEOUT))
        child = Leg(
            sid=sid("CA"),
            to=address,
            from_=verb.get("callerId") or leg.to,
            direction="outbound-dial",
            parent_sid=leg.sid,
            child_url=noun.get("url"),
            timeout=int(raw_timeout) if raw_timeout.isdigit() else DEFAULT_DIAL_TIMEOUT,
            status_callback=noun.get("statusCallback"),
            status_callback_method=noun.get("statusCallbackMethod", "POST"),
            events=frozenset((noun.get("statusCallbackEvent") or "completed").split()),
        )
        leg.dial_child = child.sid
        leg.note(f"[dialing {address}]")
        self.place(child)

    def _bridge(self, child: Leg) -> None:
        parent = self.calls.get(child.parent_sid or "")
        if parent is None or not parent.active:
            self.finish(child, "completed")
            return
        parent.bridged, child.bridged = child.sid, parent.sid
        parent.dial_child = None
        parent.note(f"[connected to {child.to}]")
        child.note(f"[connected to {parent.from_ if parent.direction == 'inbound' else parent.to}]")

    def _dial_ended(self, parent: Leg, status: str, child: Leg) -> None:
        """The dialed party is gone: the parent's <Dial> action (or its next verb) follows."""
        if not parent.active or parent.call is None or parent.call.waiting_for != "Dial":
            return
        duration = child.duration() if status == "completed" else 0
        parent.dialing = None
        self.later(
            lambda: self.drive(
                parent, lambda call: call.answer_dial(status, duration, dial_call_sid=child.sid)
            )
        )

    def _enqueue(self, leg: Leg, verb: ElementTree.Element) -> None:
        name = (verb.text or "").strip()
        if leg.queue != name:
            if leg.queue is not None:
                self._unqueue(leg)
            leg.queue = name
            self.queues.setdefault(name, []).append(leg.sid)
        self._timer(leg, QUEUE_WAIT_SECONDS, lambda: self._keep_waiting(leg))
        dialers = self.queue_dialers.get(name) or []
        if dialers and leg.sid == self.queues[name][0]:
            dialer = self.calls[dialers.pop(0)]
            self._queue_bridge(dialer, leg)

    def _keep_waiting(self, leg: Leg) -> None:
        if leg.call is not None and leg.call.waiting_for == "Enqueue" and leg.queue:
            self.drive(leg, Call.keep_waiting)

    def _queue_bridge_ended(self, caller: Leg) -> None:
        if caller.parent_sid is None and caller.call is not None and caller.call._queue is not None:
            self.later(lambda: self.drive(caller, lambda call: call._leave_queue("bridged")))
        elif caller.call is not None and caller.call.waiting_for == "Dial":
            self.later(lambda: self.drive(caller, lambda call: call.answer_dial("completed")))

    def _leave(self, leg: Leg, *, continue_twiml: bool) -> None:
        conference = self.conferences.get(leg.conference_sid or "")
        leg.conference_sid = None
        if conference is None:
            return
        participant = conference.participants.pop(leg.sid, None)
        if participant is None:
            return
        leg.note(f"[leaves conference {conference.name}]")
        self._event(conference, "participant-leave", participant)
        if conference.status != "completed":
            if participant.end_on_exit and conference.status == "in-progress":
                self._end(conference, "participant-with-end-conference-on-exit-left", leg.sid)
            elif not conference.participants:
                self._end(conference, "last-participant-left", leg.sid)
        if continue_twiml:
            self._after_conference(leg)

    def _after_conference(self, leg: Leg) -> None:
        """Out of the conference but still on the line: the <Dial> ends, the TwiML goes on."""
        if leg.active and leg.call is not None and leg.call.waiting_for == "Dial":
            leg.dialing = None
            self.later(lambda: self.drive(leg, lambda call: call.answer_dial("completed")))
        elif leg.active and leg.join is not None and leg.call is not None:
            # A Participants API leg has no TwiML of its own: it hangs up.
            self.later(lambda: self.finish(leg, "completed"))

    def _end(self, conference: Conference, reason: str, ending_sid: str | None) -> None:
        if conference.status == "completed":
            return
        conference.status = "completed"
        conference.reason_ended = reason
        conference.call_sid_ending = ending_sid
        for call_sid, participant in list(conference.participants.items()):
            del conference.participants[call_sid]
            leg = self.calls[call_sid]
            leg.conference_sid = None
            leg.note(f"[the conference {conference.name} ends]")
            self._event(conference, "participant-leave", participant)
            self._after_conference(leg)
        for call_sid in list(conference.connecting):
            self.later(partial(self.finish, self.calls[call_sid], "canceled"))
        extra = {"ReasonConferenceEnded": reason}
        if ending_sid:
            extra["CallSidEndingConference"] = ending_sid
        self._event(conference, "conference-end", None, extra)

    def add_participant(
        self, conference: Conference, form: dict[str, str], leg: Leg
    ) -> Participant:
        label = form.get("Label") or None
        if label and self.participant(conference, label) is not None:
            raise RestError(400, 21220, f"A participant labelled {label!r} is already in the call")
        leg.join = JoinSpec(
            conference_sid=conference.sid,
            label=label,
            start_on_enter=form.get("StartConferenceOnEnter", "true").lower() == "true",
            end_on_exit=form.get("EndConferenceOnExit", "false").lower() == "true",
            beep=form.get("Beep", "true"),
            muted=form.get("Muted", "false").lower() == "true",
            wait_url=form.get("WaitUrl") or None,
            wait_method=form.get("WaitMethod", "POST"),
        )
        if conference.callback is None and form.get("ConferenceStatusCallback"):
            conference.callback = form["ConferenceStatusCallback"]
            conference.callback_method = form.get("ConferenceStatusCallbackMethod", "POST")
            conference.events = frozenset(form.get("ConferenceStatusCallbackEvent", "").split())
        participant = Participant(leg.sid, label, status="queued")
        conference.connecting[leg.sid] = participant
        self.place(leg)
        return participant

    def remove(self, leg: Leg) -> None:
        """Take a participant out of its conference (after the REST answer)."""
        self.later(lambda: self._leave(leg, continue_twiml=True) if leg.conference_sid else None)

    def end_conference(self, conference: Conference) -> None:
        self.later(lambda: self._end(conference, "conference-ended-via-api", None))

    def redirect(self, leg: Leg, url: str | None, twiml: str | None) -> None:
        """New TwiML for a call in progress: out of its conference or bridge, then the document."""
        if leg.status != "in-progress" or leg.call is None:
            raise RestError(400, 21220, "Call is not in-progress. Cannot redirect.")

        def run() -> None:
            if not leg.active:
                return
            if leg.conference_sid is not None:
                self._leave(leg, continue_twiml=False)
            if leg.bridged is not None:
                other = self.calls.get(leg.bridged)
                leg.bridged = None
                if other is not None:
                    other.bridged = None
                    if other.parent_sid == leg.sid:
                        self.finish(other, "completed")
                    elif leg.parent_sid == other.sid:
                        self._dial_ended(other, "completed", leg)
            if leg.dial_child is not None:
                child = self.calls.get(leg.dial_child)
                leg.dial_child = None
                if child is not None:
                    self.finish(child, "canceled")
            self._unqueue(leg)
            leg.dialing = None
            if twiml is not None:
                body = twiml.encode()
                self.drive(leg, lambda call: call.play_twiml(body))
            else:
                self.drive(leg, lambda call: call.redirect(url or ""))

        self.later(run)

    def hang_up(self, leg: Leg, status: str) -> None:
        """REST Status=completed or canceled."""
        if status == "canceled" and leg.status == "in-progress":
            return  # Twilio cancels only calls not yet answered
        self.later(lambda: self.finish(leg, "completed"))

    def inbound(self, to: str, from_: str, url: str) -> Leg:
        """Someone dials one of the account's numbers whose Voice URL is `url`."""
        leg = Leg(sid=sid("CA"), to=to, from_=from_, direction="inbound", url=url)
        leg.status = "in-progress"
        leg.answered = _now()
        self.calls[leg.sid] = leg
        leg.call = self._new_call(leg)

        def first(call: Call) -> None:
            call._fetch(url, {"CallStatus": "ringing"})
            call._run()

        self.drive(leg, first)
        return leg

    def act(self, leg: Leg, action: str, form: dict[str, str]) -> None:
        """What the person on `leg` does: press, speak, silence, record, wait, answer, ...

        Raises RestError (409) when the call is not where that can be done.
        """
        if action == "hangup":
            self.finish(leg, "completed")
            return
        if action == "answer":
            who = form.get("as", "human")
            if who not in ("human", "machine"):
                raise RestError(400, 0, "as must be human or machine")
            self.answer(leg, who)
            return
        if action in ("busy", "failed", "reject"):
            if leg.status not in ("queued", "ringing"):
                raise RestError(409, 0, f"the call is {leg.status}, not ringing")
            self.finish(leg, "busy" if action == "reject" else action)
            return
        if leg.call is None or not leg.active:
            raise RestError(409, 0, f"the call is {leg.status}")
        steps: dict[str, Callable[[Call], Any]] = {
            "press": lambda call: call.press(form.get("digits", "")),
            "speak": lambda call: call.speak(form.get("words", "")),
            "silence": Call.silence,
            "record": lambda call: call.record(int(form.get("seconds", "12"))),
            "wait": Call.keep_waiting,
        }
        step = steps.get(action)
        if step is None:
            raise RestError(404, 0, f"no such action: {action}")
        expected = {
            "press": ("Gather",),
            "speak": ("Gather",),
            "silence": ("Gather", "Record", "Enqueue"),
            "record": ("Record",),
            "wait": ("Enqueue",),
        }[action]
        if leg.call.waiting_for not in expected:
            raise RestError(
                409,
                0,
                f"the call is at {leg.call.waiting_for or 'nothing'}, not {'/'.join(expected)}",
            )
        self.drive(leg, step)

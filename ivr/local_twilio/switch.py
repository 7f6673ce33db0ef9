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

import heapq
import itertools
import logging
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import partial
from typing import Any
from xml.etree import ElementTree

import requests

from ivr.local_twilio.callbacks import IDEMPOTENCY_HEADER, Webhooks
from ivr.local_twilio.twiml_schema import TwimlRefused, check
from ivr.simulator import Call, CallError

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"

DEFAULT_GATHER_TIMEOUT = 5
"""Seconds a <Gather> or <Record> waits for input when its timeout is not given (Twilio's)."""

DEFAULT_DIAL_TIMEOUT = 30
"""Seconds a <Dial> rings when its timeout is not given (Twilio's)."""

DEFAULT_CALL_TIMEOUT = 60
"""Seconds an API call rings when Timeout is not given (Twilio's)."""

QUEUE_WAIT_SECONDS = 60
"""How often a caller waiting in a queue gets the waitUrl again."""

ACTIVE = frozenset({"queued", "initiated", "ringing", "in-progress"})
FINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})

PHONE_MODES = frozenset({"manual", "human", "machine", "busy", "failed", "no-answer"})
"""How a phone behaves when it rings (see the module docstring)."""

REST_LOG_SIZE = 50_000
"""REST requests kept for the control API (the oldest are forgotten)."""

APPLICATION_ERROR = "[Twilio: We are sorry, an application error has occurred. Goodbye.]"


def sid(prefix: str) -> str:
    """A Twilio-shaped SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime) -> str:
    """Twilio's date format (RFC 2822, UTC as +0000)."""
    return format_datetime(moment.astimezone(UTC))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Phone:
    """What a phone does when it rings."""

    mode: str = "manual"
    after: float = 0.2
    """Seconds it rings before it answers, is busy or fails."""


@dataclass
class JoinSpec:
    """A participant added through the Participants API: where it goes once it answers."""

    conference_sid: str
    label: str | None
    start_on_enter: bool
    end_on_exit: bool
    beep: str
    muted: bool
    wait_url: str | None
    wait_method: str


@dataclass
class Leg:
    """One call leg, as Twilio's Call resource sees it, and its person's view."""

    sid: str
    to: str
    from_: str
    direction: str
    status: str = "queued"
    url: str | None = None
    twiml: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    events: frozenset[str] = frozenset({"completed"})
    timeout: int = DEFAULT_CALL_TIMEOUT
    machine_detection: str | None = None
    answered_by: str | None = None
    machine: bool = False
    parent_sid: str | None = None
    child_url: str | None = None
    """For a <Dial> child: the url attribute of its noun (played to it before the bridge)."""
    join: JoinSpec | None = None
    call: Call | None = None
    notes: list[str] = field(default_factory=list)
    """What happened before the call had TwiML (ringing), in the person's words."""
    seq: int = 0
    created: datetime = field(default_factory=_now)
    answered: datetime | None = None
    ended: datetime | None = None
    conference_sid: str | None = None
    bridged: str | None = None
    dial_child: str | None = None
    dialing: ElementTree.Element | None = None
    generation: int = 0
    """Bumped whenever the call moves on, so a timer set for an earlier step does nothing."""
    queue: str | None = None
    app_error: bool = False
    """Bridgeline answered something Twilio could not play; the call was ended for it."""

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def heard(self) -> list[str]:
        return self.notes + (self.call.transcript if self.call is not None else [])

    def note(self, text: str) -> None:
        if self.call is not None:
            self.call.transcript.append(text)
        else:
            self.notes.append(text)

    def duration(self) -> int:
        if self.answered is None:
            return 0
        return int(((self.ended or _now()) - self.answered).total_seconds())


@dataclass
class Participant:
    call_sid: str
    label: str | None
    start_on_enter: bool = True
    end_on_exit: bool = False
    muted: bool = False
    hold: bool = False
    beep: str = "true"
    status: str = "connected"
    created: datetime = field(default_factory=_now)


@dataclass
class Conference:
    sid: str
    name: str
    status: str = "init"
    participants: dict[str, Participant] = field(default_factory=dict)
    """Connected participants by CallSid, in the order they joined."""
    connecting: dict[str, Participant] = field(default_factory=dict)
    """Participants API legs still ringing, by CallSid."""
    callback: str | None = None
    callback_method: str = "POST"
    events: frozenset[str] = frozenset()
    seq: int = 0
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    reason_ended: str | None = None
    call_sid_ending: str | None = None
    log: list[str] = field(default_factory=list)
    """Every event, in order (what the control API shows)."""


@dataclass
class Message:
    sid: str
    to: str
    from_: str
    body: str
    status: str = "queued"
    created: datetime = field(default_factory=_now)


class RestError(Exception):
    """A REST request Twilio would refuse: HTTP status, Twilio error code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class WebhookTransport:
    """ivr.simulator's transport for TwiML fetches: Bridgeline's URLs served on this machine."""

    def __init__(self, webhooks: Webhooks) -> None:
        self.webhooks = webhooks
        self.session = requests.Session()

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        headers = {**headers, IDEMPOTENCY_HEADER: uuid.uuid4().hex}
        answer = self.session.post(
            self.webhooks.target(url), data=params, headers=headers, timeout=15
        )
        return answer.status_code, answer.content


class Timers:
    """One thread that runs actions at their time (ring timeouts, prompt timeouts, queue
    music), instead of a sleeping thread per timer."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], object]]] = []
        self._count = itertools.count()
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="twilio-timers", daemon=True)
        self._thread.start()

    def at(self, when: float, action: Callable[[], object]) -> None:
        """Run `action` at time.monotonic() `when` (on this object's thread: keep it short)."""
        with self._ready:
            heapq.heappush(self._heap, (when, next(self._count), action))
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._ready.wait(timeout)
                _, _, action = heapq.heappop(self._heap)
            try:
                action()
            except Exception:
                log.exception("local twilio: a timer failed")


class Switch:
    """Every call, conference, queue, phone and text of one account."""

    def __init__(
        self,
        account_sid: str,
        webhooks: Webhooks,
        *,
        default_phone: Phone | None = None,
        ring_seconds: float = 0.05,
    ) -> None:
        self.account_sid = account_sid
        self.webhooks = webhooks
        self.default_phone = default_phone or Phone()
        self.ring_seconds = ring_seconds
        self.lock = threading.RLock()
        self.calls: dict[str, Leg] = {}
        self.conferences: dict[str, Conference] = {}
        self.queues: dict[str, list[str]] = {}
        self.queue_dialers: dict[str, list[str]] = {}
        self.phones: dict[str, Phone] = {}
        self.messages: list[Message] = []
        self.problems: list[str] = []
        self.rest_log: deque[tuple[float, str, str, dict[str, str]]] = deque(maxlen=REST_LOG_SIZE)
        """(time.time(), method, path below the account, form) of every REST request."""
        self.transport = WebhookTransport(webhooks)
        self.clock = Timers()
        self.closed = False
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="twilio-call")

    # ------------------------------------------------------------------ plumbing

    def report(self, problem: str) -> None:
        """Say loudly that Bridgeline did something Twilio would refuse."""
        log.error("TWILIO WOULD REFUSE THIS: %s", problem)
        with self.lock:
            self.problems.append(problem)

    def later(self, action: Callable[[], None]) -> None:
        """Run `action` under the lock on a worker thread (Twilio acts after it answers)."""

        def run() -> None:
            try:
                with self.lock:
                    action()
            except Exception:
                log.exception("local twilio: a call step failed")

        self._submit(run)

    def _timer(self, leg: Leg, seconds: float, action: Callable[[], None]) -> None:
        """Run `action` after `seconds` unless the call has moved on by then."""
        generation = leg.generation

        def fire() -> None:
            with self.lock:
                if leg.generation == generation and leg.active:
                    action()

        self.clock.at(time.monotonic() + max(0.0, seconds), lambda: self._submit(fire))

    def _submit(self, action: Callable[[], None]) -> None:
        if not self.closed:
            self.executor.submit(action)

    def close(self) -> None:
        """Stop taking work (timers that fire later do nothing)."""
        self.closed = True
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _check_twiml(self, url: str, body: bytes) -> None:
        try:
            check(body)
        except TwimlRefused as exc:
            raise CallError(f"{url.split('?')[0]} answered TwiML Twilio refuses: {exc}") from None

    def _new_call(self, leg: Leg) -> Call:
        extra = {"AnsweredBy": leg.answered_by} if leg.answered_by else {}
        if leg.parent_sid:
            extra["ParentCallSid"] = leg.parent_sid
        call = Call(
            self.transport,
            "",
            self.webhooks.public_base,
            from_number=leg.from_,
            to_number=leg.to,
            call_sid=leg.sid,
            on_response=self._check_twiml,
            account_sid=self.account_sid,
            direction=leg.direction,
            extra_params=extra,
            sign=self.webhooks.sign,
            party="",
            dial_notes=False,
        )
        call.transcript.extend(leg.notes)
        leg.notes = []
        return call

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

    def _application_error(self, leg: Leg) -> None:
        """What a caller hears when Twilio cannot play Bridgeline's answer; then it hangs up."""
        leg.app_error = True
        if leg.call is not None:
            leg.call.transcript.append(APPLICATION_ERROR)
            leg.call.hang_up()

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

    # ------------------------------------------------------------------ call progress

    def _status(self, leg: Leg, status: str) -> None:
        """Move the leg to `status` and send its status callback if it asked for the event."""
        event = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}.get(
            status, "completed"
        )
        if status != "initiated":
            leg.status = status
        if not leg.status_callback or event not in leg.events:
            return
        params = {
            "CallSid": leg.sid,
            "AccountSid": self.account_sid,
            "From": leg.from_,
            "To": leg.to,
            "Caller": leg.from_,
            "Called": leg.to,
            "CallStatus": status,
            "Direction": leg.direction,
            "ApiVersion": API_VERSION,
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(leg.seq),
            "Timestamp": rfc2822(_now()),
        }
        leg.seq += 1
        if leg.parent_sid:
            params["ParentCallSid"] = leg.parent_sid
        if leg.answered_by:
            params["AnsweredBy"] = leg.answered_by
        if event == "completed":
            params["CallDuration"] = str(leg.duration())
        self.webhooks.send_later(leg.status_callback, params, leg.status_callback_method)

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

    # ------------------------------------------------------------------ <Dial>

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

    # ------------------------------------------------------------------ queues

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

    def _unqueue(self, leg: Leg) -> None:
        if leg.queue is not None:
            waiting = self.queues.get(leg.queue, [])
            if leg.sid in waiting:
                waiting.remove(leg.sid)
            leg.queue = None

    def _dial_queue(self, leg: Leg, name: str) -> None:
        waiting = self.queues.get(name) or []
        if waiting:
            self._queue_bridge(leg, self.calls[waiting[0]])
        else:
            self.queue_dialers.setdefault(name, []).append(leg.sid)
            leg.note(f"[waiting for a caller in queue {name}]")

    def _queue_bridge(self, dialer: Leg, caller: Leg) -> None:
        self._unqueue(caller)
        caller.generation += 1
        dialer.bridged, caller.bridged = caller.sid, dialer.sid
        dialer.note(f"[connected to a caller from queue, {caller.from_}]")
        caller.note("[an agent answers]")

    def _queue_bridge_ended(self, caller: Leg) -> None:
        if caller.parent_sid is None and caller.call is not None and caller.call._queue is not None:
            self.later(lambda: self.drive(caller, lambda call: call._leave_queue("bridged")))
        elif caller.call is not None and caller.call.waiting_for == "Dial":
            self.later(lambda: self.drive(caller, lambda call: call.answer_dial("completed")))

    # ------------------------------------------------------------------ conferences

    def conference(self, ref: str, *, create: bool = False) -> Conference | None:
        """A conference by SID, or the live one by friendly name (created if asked)."""
        found = self.conferences.get(ref)
        if found is not None:
            return found
        for candidate in self.conferences.values():
            if candidate.name == ref and candidate.status != "completed":
                return candidate
        if not create:
            return None
        made = Conference(sid=sid("CF"), name=ref)
        self.conferences[made.sid] = made
        return made

    def _join_noun(self, leg: Leg, noun: ElementTree.Element) -> None:
        name = (noun.text or "").strip()
        conference = self.conference(name, create=True)
        assert conference is not None
        if conference.callback is None and noun.get("statusCallback"):
            conference.callback = noun.get("statusCallback")
            conference.callback_method = noun.get("statusCallbackMethod", "POST")
            conference.events = frozenset((noun.get("statusCallbackEvent") or "").split())
        participant = Participant(
            leg.sid,
            noun.get("participantLabel"),
            start_on_enter=noun.get("startConferenceOnEnter", "true") == "true",
            end_on_exit=noun.get("endConferenceOnExit", "false") == "true",
            muted=noun.get("muted", "false") == "true",
            beep=noun.get("beep", "true"),
        )
        self._join(leg, conference, participant, noun.get("waitUrl"), noun.get("waitMethod"))

    def _join(
        self,
        leg: Leg,
        conference: Conference,
        participant: Participant,
        wait_url: str | None,
        wait_method: str | None,
    ) -> None:
        conference.participants[leg.sid] = participant
        leg.conference_sid = conference.sid
        as_label = f" as {participant.label}" if participant.label else ""
        leg.note(f"[joins conference {conference.name}{as_label}]")
        self._event(conference, "participant-join", participant)
        if conference.status == "init":
            if participant.start_on_enter:
                conference.status = "in-progress"
                self._event(conference, "conference-start")
                if len(conference.participants) == 1:
                    # Twilio plays the waitUrl only before a conference starts.
                    leg.note("[alone in the started conference: silence until someone joins]")
                for other in conference.participants.values():
                    if other is not participant:
                        self.calls[other.call_sid].note("[the conference starts]")
            else:
                self._hold_music(leg, wait_url, wait_method)

    def _hold_music(self, leg: Leg, wait_url: str | None, wait_method: str | None) -> None:
        """Play the waitUrl while the conference has not started (TwiML fetched, audio named)."""
        if wait_url is None or not self.webhooks.is_ours(wait_url):
            leg.note("[hold music]")
            return
        method = wait_method or "POST"
        try:
            status, body = self.webhooks.request(wait_url, self._call_params(leg), method)
        except requests.RequestException as exc:
            self.report(f"waitUrl for {leg.sid} failed: {type(exc).__name__}")
            return
        if status != 200:
            self.report(f"waitUrl {wait_url.split('?')[0]} answered HTTP {status}")
            return
        self._play_announcement(leg, wait_url, body, "hold")

    def _play_announcement(self, leg: Leg, url: str, body: bytes, kind: str) -> bool:
        try:
            root = check(body, announcement=True)
        except TwimlRefused as exc:
            self.report(f"{kind} document {url.split('?')[0]}: {exc}")
            return False
        for verb in root:
            if verb.tag == "Say":
                leg.note(f"[{kind}] {(verb.text or '').strip()}")
            elif verb.tag == "Play":
                leg.note(f"[{kind}] [audio]")
        return True

    def _call_params(self, leg: Leg) -> dict[str, str]:
        return {
            "CallSid": leg.sid,
            "AccountSid": self.account_sid,
            "From": leg.from_,
            "To": leg.to,
            "CallStatus": leg.status,
            "Direction": leg.direction,
            "ApiVersion": API_VERSION,
        }

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

    def _event(
        self,
        conference: Conference,
        kind: str,
        participant: Participant | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Log a conference event; send it when the conference's callback asked for it."""
        conference.updated = _now()
        conference.log.append(
            kind + (f" {participant.label or participant.call_sid}" if participant else "")
        )
        subscribed = {
            "conference-start": "start",
            "conference-end": "end",
            "participant-join": "join",
            "participant-leave": "leave",
            "participant-mute": "mute",
            "participant-unmute": "mute",
            "participant-hold": "hold",
            "participant-unhold": "hold",
            "announcement-end": "announcement",
            "announcement-fail": "announcement",
        }[kind]
        if conference.callback is None or subscribed not in conference.events:
            return
        conference.seq += 1
        params = {
            "AccountSid": self.account_sid,
            "ConferenceSid": conference.sid,
            "FriendlyName": conference.name,
            "StatusCallbackEvent": kind,
            "SequenceNumber": str(conference.seq),
            "Timestamp": rfc2822(_now()),
        }
        if participant is not None:
            params.update(
                {
                    "CallSid": participant.call_sid,
                    "Muted": str(participant.muted).lower(),
                    "Hold": str(participant.hold).lower(),
                    "Coaching": "false",
                    "EndConferenceOnExit": str(participant.end_on_exit).lower(),
                    "StartConferenceOnEnter": str(participant.start_on_enter).lower(),
                }
            )
            if participant.label:
                params["ParticipantLabel"] = participant.label
        params.update(extra or {})
        self.webhooks.send_later(conference.callback, params, conference.callback_method)

    # ------------------------------------------------------------------ REST actions

    def participant(self, conference: Conference, ref: str) -> Participant | None:
        """A connected (or connecting) participant by CallSid or label."""
        for group in (conference.participants, conference.connecting):
            if ref in group:
                return group[ref]
            for participant in group.values():
                if participant.label == ref:
                    return participant
        return None

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

    def announce(self, leg: Leg, conference: Conference, url: str) -> None:
        """Fetch an AnnounceUrl and play it to `leg` (after the REST answer)."""

        def run() -> None:
            if leg.conference_sid != conference.sid:
                return
            params = {
                "AccountSid": self.account_sid,
                "ConferenceSid": conference.sid,
                "FriendlyName": conference.name,
                "CallSid": leg.sid,
            }
            try:
                status, body = self.webhooks.request(url, params)
            except requests.RequestException as exc:
                self.report(f"announceUrl failed: {type(exc).__name__}")
                status, body = 0, b""
            played = status == 200 and self._play_announcement(leg, url, body, "announcement")
            if status not in (0, 200):
                self.report(f"announceUrl {url.split('?')[0]} answered HTTP {status}")
            participant = conference.participants.get(leg.sid)
            self._event(conference, "announcement-end" if played else "announcement-fail",
                        participant)  # fmt: skip

        self.later(run)

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

    # ------------------------------------------------------------------ control (the people)

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

    def set_phone(self, address: str, mode: str, after: float) -> None:
        if mode not in PHONE_MODES:
            raise RestError(400, 0, f"mode must be one of {', '.join(sorted(PHONE_MODES))}")
        self.phones[address] = Phone(mode, after)

    def record_rest(self, method: str, path: str, form: dict[str, str]) -> None:
        self.rest_log.append((time.time(), method, path, form))

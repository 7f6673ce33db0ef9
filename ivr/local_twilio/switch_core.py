"""The local Twilio's switch, its plumbing: what it holds, timers, reports, fetching and checking
TwiML, call status callbacks, conferences and their events, hold music and announcements.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from xml.etree import ElementTree

import requests

from ivr.local_twilio.callbacks import Webhooks
from ivr.local_twilio.calls import (
    API_VERSION,
    APPLICATION_ERROR,
    PHONE_MODES,
    REST_LOG_SIZE,
    Conference,
    Leg,
    Message,
    Participant,
    Phone,
    RestError,
    Timers,
    WebhookTransport,
    _now,
    rfc2822,
    sid,
)
from ivr.local_twilio.twiml_schema import TwimlRefused, check
from ivr.simulator import Call, CallError

log = logging.getLogger(__name__)


class SwitchCore:
    """What the switch holds, and the steps every call and conference uses."""

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

    def _application_error(self, leg: Leg) -> None:
        """What a caller hears when Twilio cannot play Bridgeline's answer; then it hangs up."""
        leg.app_error = True
        if leg.call is not None:
            leg.call.transcript.append(APPLICATION_ERROR)
            leg.call.hang_up()

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

    def participant(self, conference: Conference, ref: str) -> Participant | None:
        """A connected (or connecting) participant by CallSid or label."""
        for group in (conference.participants, conference.connecting):
            if ref in group:
                return group[ref]
            for participant in group.values():
                if participant.label == ref:
                    return participant
        return None

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

    def set_phone(self, address: str, mode: str, after: float) -> None:
        if mode not in PHONE_MODES:
            raise RestError(400, 0, f"mode must be one of {', '.join(sorted(PHONE_MODES))}")
        self.phones[address] = Phone(mode, after)

    def record_rest(self, method: str, path: str, form: dict[str, str]) -> None:
        self.rest_log.append((time.time(), method, path, form))

"""What the local Twilio's switch keeps: phones, calls and their legs, conferences and their
participants, texts, REST errors, the webhook transport and the timers.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.etree import ElementTree

import requests

from ivr.local_twilio.callbacks import IDEMPOTENCY_HEADER, Webhooks
from ivr.simulator import Call

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

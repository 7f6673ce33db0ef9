"""A phone call without a phone: plays Twilio's part against Bridgeline and prints what a caller hears.

It follows the TwiML the way Twilio does (Say, Play, Pause, Gather, Record, Redirect, Dial,
Enqueue and its wait URL, Leave, Hangup), signs every request with the auth token so the real
signature check runs, and takes keys or spoken words typed at the prompt.

    python -m ivr.simulator                         # in-process, with the environment / .env
    python -m ivr.simulator --url http://127.0.0.1:5000   # against the running service

At a prompt: digits, * or # are key presses ("5205550123#"); other text is speech; an empty
line is silence. At a transfer: Enter means the line answered, or type busy / no-answer /
failed. In a queue: Enter waits another minute, `agent` means an agent answers, or press a
key when a choice is offered. `hangup` ends the call anywhere.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol
from xml.etree import ElementTree

from ivr.security import SIGNATURE_HEADER, compute_signature
from ivr.settings import load_env_file

MAX_REQUESTS_PER_CALL = 300
"""A call that needs more requests than this is reported as a loop."""

QUEUE_WAIT_STEP_SECONDS = 60
"""How much queue time one 'keep waiting' adds."""


class Transport(Protocol):
    def post(
        self, url: str, params: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, bytes]: ...


class FlaskTransport:
    """Send requests to a Flask app in this process (its test client)."""

    def __init__(self, client: Any, public_base: str) -> None:
        self.client = client
        self.public_base = public_base.rstrip("/")

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        path = url[len(self.public_base) :] if url.startswith(self.public_base) else url
        response = self.client.post(path, data=params, headers=headers)
        return response.status_code, response.data


class HttpTransport:
    """Send requests to a running service; URLs under PUBLIC_BASE_URL are sent to `target`."""

    def __init__(self, target: str, public_base: str) -> None:
        self.target = target.rstrip("/")
        self.public_base = public_base.rstrip("/")

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, bytes]:
        import requests

        if url.startswith(self.public_base):
            url = self.target + url[len(self.public_base) :]
        response = requests.post(url, data=params, headers=headers, timeout=20)
        return response.status_code, response.content


class CallError(RuntimeError):
    """Bridgeline answered something Twilio could not play (non-200, not XML, a loop)."""


@dataclass
class Call:
    """One simulated call. Drive it with press(), speak(), silence(), answer_dial(), ..."""

    transport: Transport
    auth_token: str
    public_base: str
    from_number: str = "+15205550123"
    to_number: str = "+15205550100"
    call_sid: str = field(default_factory=lambda: "CA" + secrets.token_hex(16))
    on_response: Callable[[str, bytes], None] | None = None
    transcript: list[str] = field(default_factory=list)
    ended: bool = False
    hung_up: bool = False
    """The TwiML hung up (<Hangup/> or <Reject/>), rather than running out of verbs."""
    waiting: ElementTree.Element | None = None
    _pending: list[ElementTree.Element] = field(default_factory=list)
    _queue: ElementTree.Element | None = None
    _queue_time: int = 0
    _requests: int = 0
    _mark: int = 0
    dialed: list[str] = field(default_factory=list)
    last_xml: bytes = b""
    account_sid: str = "AC" + "0" * 32
    direction: str = "inbound"
    extra_params: dict[str, str] = field(default_factory=dict)
    """Sent with every request of this call (e.g. AnsweredBy, ParentCallSid)."""
    party: str = "caller"
    """Who presses and speaks, in the transcript ('' for just '[presses 1]')."""
    dial_notes: bool = True
    """Note '[dialing ...]' / '[in conference ...]' at a <Dial> (off when Twilio is emulated)."""
    sign: Callable[[str, dict[str, str]], str] | None = None
    """How requests are signed (default: ivr.security.compute_signature with auth_token)."""

    # ------------------------------------------------------------------ what the caller does

    def start(self, path: str = "/voice/self-service") -> Call:
        """Place the call to `path` and play until the caller has to do something."""
        self._fetch(self.public_base.rstrip("/") + path, {"CallStatus": "ringing"})
        self._run()
        return self

    def press(self, keys: str) -> Call:
        """Press keys at the current prompt (a Gather, or a choice offered in a queue)."""
        return self._answer_gather(digits=keys, speech=None)

    def speak(self, words: str) -> Call:
        """Say something at the current prompt."""
        return self._answer_gather(digits=None, speech=words)

    def silence(self) -> Call:
        """Say nothing until the prompt times out."""
        verb = self._expect("Gather", "Record", "Enqueue")
        if verb.tag == "Record":
            self.waiting = None
            self._run()
            return self
        if verb.tag == "Enqueue":
            return self.keep_waiting()
        return self._answer_gather(digits=None, speech=None)

    def record(self, seconds: int = 12) -> Call:
        """Speak a message at a <Record>; Twilio posts the recording to the action URL."""
        verb = self._expect("Record")
        self.waiting = None
        sid = "RE" + secrets.token_hex(16)
        recording_url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
        )
        self.transcript.append(f"[caller speaks for {seconds} seconds]")
        params = {
            "RecordingSid": sid,
            "RecordingUrl": recording_url,
            "RecordingDuration": str(seconds),
            "Digits": "#",
        }
        status_url = verb.get("recordingStatusCallback")
        action = verb.get("action")
        if action:
            self._fetch(action, params)
        if status_url:
            self._post_callback(
                status_url,
                {
                    **params,
                    "RecordingStatus": "completed",
                    "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb",
                    "RecordingStartTime": format_datetime(datetime.now(UTC), usegmt=True),
                },
            )
        self._run()
        return self

    def answer_dial(
        self, status: str = "completed", duration: int | None = None, dial_call_sid: str = ""
    ) -> Call:
        """The dialed line answers and the call ends there (or busy / no-answer / failed)."""
        verb = self._expect("Dial")
        self.waiting = None
        action = verb.get("action")
        if action:
            params = {
                "DialCallStatus": status,
                "DialCallDuration": str(
                    duration if duration is not None else (30 if status == "completed" else 0)
                ),
            }
            if dial_call_sid:
                params["DialCallSid"] = dial_call_sid
            self._fetch(action, params)
        self._run()
        return self

    def redirect(self, url: str) -> Call:
        """Twilio was told to fetch new TwiML for this call (a REST update with Url)."""
        self.waiting = None
        self._queue = None
        self._fetch(url, {})
        self._run()
        return self

    def play_twiml(self, body: bytes) -> Call:
        """Twilio was given TwiML for this call (a REST create or update with Twiml)."""
        self.waiting = None
        self._queue = None
        self._load(f"twiml:{self.call_sid}", body)
        self._run()
        return self

    def keep_waiting(self) -> Call:
        """Stay on hold in a queue for another minute (the wait URL is requested again)."""
        if self._queue is None:
            raise CallError("the caller is not in a queue")
        self._queue_time += QUEUE_WAIT_STEP_SECONDS
        self._enter_wait()
        return self

    def agent_answers(self) -> Call:
        """A 311 agent takes the call from the queue; the call ends after they talk."""
        if self._queue is None:
            raise CallError("the caller is not in a queue")
        self.transcript.append("[an agent answers]")
        self._leave_queue("bridged")
        return self

    def hang_up(self) -> Call:
        self.ended = True
        self.waiting = None
        return self

    # ------------------------------------------------------------------ what the caller heard

    @property
    def heard(self) -> str:
        """Everything said so far, one line per verb."""
        return "\n".join(self.transcript)

    def heard_since_last(self) -> str:
        """What was said since the last call of this method."""
        text = "\n".join(self.transcript[self._mark :])
        self._mark = len(self.transcript)
        return text

    @property
    def waiting_for(self) -> str | None:
        """The verb the call waits at; "Enqueue" while in a queue, even with its wait music
        inside a Gather that listens for words."""
        if self._queue is not None and not self.ended:
            return "Enqueue"
        return None if self.waiting is None else self.waiting.tag

    # ------------------------------------------------------------------ Twilio's part

    def _params(self, extra: Mapping[str, str]) -> dict[str, str]:
        params = {
            "CallSid": self.call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_number,
            "To": self.to_number,
            "Caller": self.from_number,
            "Called": self.to_number,
            "CallStatus": "in-progress",
            "Direction": self.direction,
            "ApiVersion": "2010-04-01",
        }
        params.update(self.extra_params)
        params.update(extra)
        return params

    def _signed_post(self, url: str, params: dict[str, str]) -> tuple[int, bytes]:
        self._requests += 1
        if self._requests > MAX_REQUESTS_PER_CALL:
            raise CallError(f"more than {MAX_REQUESTS_PER_CALL} requests in one call: a loop?")
        if self.sign is not None:
            signature = self.sign(url, params)
        else:
            signature = compute_signature(self.auth_token, url, params.items())
        return self.transport.post(url, params, {SIGNATURE_HEADER: signature})

    def _fetch(self, url: str, extra: Mapping[str, str]) -> None:
        status, body = self._signed_post(url, self._params(extra))
        if status != 200:
            raise CallError(
                f"{url} answered HTTP {status}: Twilio would play 'an application error'"
            )
        self._load(url, body)

    def _load(self, url: str, body: bytes) -> None:
        """Take `body` (the TwiML `url` answered) as what the call does next."""
        self.last_xml = body
        if self.on_response is not None:
            self.on_response(url, body)
        try:
            root = ElementTree.fromstring(body)  # noqa: S314 (our own service's answer)
        except ElementTree.ParseError as exc:
            raise CallError(f"{url} answered something that is not XML: {exc}") from None
        if root.tag != "Response":
            raise CallError(f"{url} answered <{root.tag}>, not <Response>")
        self._pending = list(root)

    def _post_callback(self, url: str, extra: Mapping[str, str]) -> None:
        status, _ = self._signed_post(url, self._params(extra))
        if status >= 300:
            raise CallError(f"status callback {url} answered HTTP {status}")

    def _run(self) -> None:
        while self._pending and self.waiting is None and not self.ended:
            verb = self._pending.pop(0)
            self._play(verb)
        if not self._pending and self.waiting is None and not self.ended and self._queue is None:
            self.ended = True
            self.transcript.append("[call ends]")

    def _play(self, verb: ElementTree.Element) -> None:
        tag = verb.tag
        if tag == "Say":
            self.transcript.append((verb.text or "").strip())
        elif tag == "Play":
            self.transcript.append("[music]" if "mp3" in (verb.text or "") else "[audio]")
        elif tag == "Pause":
            pass
        elif tag == "Gather":
            for child in verb:
                self._play(child)
            self.waiting = verb
        elif tag in ("Record", "Dial"):
            if tag == "Dial":
                target = (verb.text or "").strip() or " ".join((c.text or "").strip() for c in verb)
                self.dialed.append(target)
                if not self.dial_notes:
                    pass  # the local Twilio says what the dial did (it rings, joins, bridges)
                elif any(child.tag == "Conference" for child in verb):
                    # Held in a conference (transfer desk, intake): music until someone joins.
                    self.transcript.append(f"[in conference {target}, hold music]")
                else:
                    self.transcript.append(f"[dialing {target}]")
            self.waiting = verb
        elif tag == "Redirect":
            self._fetch((verb.text or "").strip(), {})
        elif tag == "Enqueue":
            self._queue = verb
            self._queue_time = 0
            self.transcript.append(f"[waiting in queue {(verb.text or '').strip()}]")
            self._enter_wait()
        elif tag == "Leave":
            self._leave_queue("leave")
        elif tag in ("Hangup", "Reject"):
            self.hung_up = True
            self.ended = True
            self._pending = []
            self.transcript.append("[call ends]")
        else:
            raise CallError(f"the simulator does not know <{tag}>")

    def _enter_wait(self) -> None:
        assert self._queue is not None
        wait_url = self._queue.get("waitUrl")
        self.waiting = self._queue
        if not wait_url:
            return
        saved_queue = self._queue
        self.waiting = None
        self._fetch(
            wait_url,
            {
                "QueuePosition": "1",
                "QueueTime": str(self._queue_time),
                "CurrentQueueSize": "1",
                "QueueSid": "QU" + "0" * 32,
            },
        )
        while self._pending and self.waiting is None and self._queue is saved_queue:
            self._play(self._pending.pop(0))
        if self.waiting is None and self._queue is saved_queue:
            self.waiting = saved_queue  # on hold; the wait URL plays again later

    def _leave_queue(self, result: str) -> None:
        queue = self._queue
        self._queue = None
        self.waiting = None
        action = queue.get("action") if queue is not None else None
        if action:
            self._fetch(action, {"QueueResult": result, "QueueTime": str(self._queue_time)})
        else:
            self._pending = []
        if result == "bridged" and not self._pending:
            self.ended = True
        self._run()

    def _expect(self, *tags: str) -> ElementTree.Element:
        if self.ended:
            raise CallError("the call has ended")
        if self.waiting is None or self.waiting.tag not in tags:
            got = self.waiting.tag if self.waiting is not None else "nothing"
            raise CallError(f"expected the caller to be at {'/'.join(tags)}, but at {got}")
        return self.waiting

    def _answer_gather(self, digits: str | None, speech: str | None) -> Call:
        verb = self._expect("Gather", "Enqueue")
        if verb.tag == "Enqueue":
            raise CallError("no choice is offered while on hold")
        self.waiting = None
        in_queue = self._queue is not None
        params: dict[str, str] = {}
        if digits is not None:
            finish = verb.get("finishOnKey", "#")
            keys = digits
            if finish and finish in keys:
                keys = keys[: keys.index(finish)]
            num = verb.get("numDigits")
            if num and num.isdigit():
                keys = keys[: int(num)]
            params["Digits"] = keys
            self.transcript.append(f"[{self.party} presses {digits}]".replace("[ ", "["))
        if speech is not None:
            params["SpeechResult"] = speech
            params["Confidence"] = "0.92"
            self.transcript.append(f"[{self.party} says '{speech}']".replace("[ ", "["))
        empty = not params
        if empty:
            self.transcript.append("[silence]")
        if empty and verb.get("actionOnEmptyResult") != "true":
            if in_queue:
                self.waiting = self._queue
                return self
            self._run()
            return self
        action = verb.get("action")
        if not action:
            raise CallError("a Gather without an action URL would post back to the same document")
        self._fetch(action, params)
        if in_queue:
            while self._pending and self._queue is not None and self.waiting is None:
                self._play(self._pending.pop(0))
            if self._queue is not None and self.waiting is None:
                self.waiting = self._queue
            return self
        self._run()
        return self


def _interactive(call: Call, out: Any = None, read: Callable[[str], str] | None = None) -> None:
    out = out or sys.stdout
    read = read or input
    shown = 0
    while not call.ended:
        for line in call.transcript[shown:]:
            print(f"  {line}", file=out)
        shown = len(call.transcript)
        tag = call.waiting_for
        if tag is None:
            break
        prompt = {
            "Gather": "keys or words> ",
            "Record": "describe (Enter = silence)> ",
            "Dial": "Enter = answered, or busy/no-answer/failed> ",
            "Enqueue": "Enter = wait, agent> ",
        }[tag]
        try:
            reply = read(prompt).strip()
        except EOFError:
            reply = "hangup"
        if reply == "hangup":
            call.hang_up()
        elif tag == "Dial":
            call.answer_dial(reply or "completed")
        elif tag == "Record":
            call.record() if reply else call.silence()
        elif tag == "Enqueue":
            call.agent_answers() if reply == "agent" else call.keep_waiting()
        elif not reply:
            call.silence()
        elif all(ch in "0123456789*#" for ch in reply):
            call.press(reply)
        else:
            call.speak(reply)
    for line in call.transcript[shown:]:
        print(f"  {line}", file=out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m ivr.simulator", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--url", help="base URL of a running service (default: run in-process)")
    parser.add_argument("--path", default="/voice/self-service", help="the number's Voice URL path")
    parser.add_argument("--from", dest="from_number", default="+15205550123", help="caller ID")
    parser.add_argument(
        "--env-file", default=None, help="KEY=VALUE file (default .env, else config/example.env)"
    )
    args = parser.parse_args(argv)

    env_file = (
        Path(args.env_file)
        if args.env_file
        else (Path(".env") if Path(".env").exists() else Path("config/example.env"))
    )
    if env_file.exists():
        load_env_file(env_file)
    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    public_base = os.environ.get("PUBLIC_BASE_URL", "http://localhost:5000").rstrip("/")
    transport: Transport
    if args.url:
        transport = HttpTransport(args.url, public_base)
    else:
        from ivr.app import create_app
        from ivr.services import services_of
        from ivr.store.db import migrate

        app = create_app()
        migrate(services_of(app).settings.database_url)
        transport = FlaskTransport(app.test_client(), public_base)
    call = Call(transport, token, public_base, from_number=args.from_number)
    print(f"Calling {args.path} as {args.from_number} (hangup to end)")
    try:
        call.start(args.path)
        _interactive(call)
    except CallError as exc:
        print(f"CALL FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

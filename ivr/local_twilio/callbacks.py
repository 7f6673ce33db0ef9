"""Webhooks as Twilio sends them: signed with the account's auth token, by twilio's own
RequestValidator, against the URL Bridgeline gave (its PUBLIC_BASE_URL), and delivered to the
web processes on this machine.

Status callbacks and conference events go through one sender thread, in the order they
happened, so that they never hold up a call; TwiML requests are made by the call itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from twilio.request_validator import RequestValidator

from ivr.security import SIGNATURE_HEADER

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
"""Twilio waits 15 seconds for a webhook's answer."""

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
"""Twilio's header naming one webhook delivery (a retry repeats it); opaque, unique here."""


def delivery_headers(signature: str) -> dict[str, str]:
    """Headers of one webhook delivery: the signature and a token of its own."""
    return {SIGNATURE_HEADER: signature, IDEMPOTENCY_HEADER: uuid.uuid4().hex}


@dataclass
class Webhooks:
    """Where Bridgeline's URLs are really served, and how they are signed."""

    auth_token: str
    public_base: str
    """Bridgeline's PUBLIC_BASE_URL: the URLs it gives Twilio start with it."""
    app_base: str
    """Where those URLs are served on this machine (gunicorn's address)."""
    on_failure: Callable[[str], None] = lambda problem: None
    _session: requests.Session = field(default_factory=requests.Session)
    _queue: queue.Queue[tuple[str, str, dict[str, str]] | None] = field(default_factory=queue.Queue)
    _marks: dict[str, threading.Event] = field(default_factory=dict)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.public_base = self.public_base.rstrip("/")
        self.app_base = self.app_base.rstrip("/")
        self._validator = RequestValidator(self.auth_token)

    def sign(self, url: str, params: dict[str, str]) -> str:
        """X-Twilio-Signature of a request to `url` with `params` (twilio's algorithm)."""
        return str(self._validator.compute_signature(url, params))

    def target(self, url: str) -> str:
        """The address a URL under PUBLIC_BASE_URL is served at here."""
        if url.startswith(self.public_base + "/") or url == self.public_base:
            return self.app_base + url[len(self.public_base) :]
        return url

    def is_ours(self, url: str) -> bool:
        """True for Bridgeline's URLs (others would be fetched from the internet)."""
        return url.startswith(self.public_base + "/")

    def request(self, url: str, params: dict[str, str], method: str = "POST") -> tuple[int, bytes]:
        """One signed request, answered now (a TwiML fetch)."""
        headers = delivery_headers(self.sign(url, params if method == "POST" else {}))
        target = self.target(url)
        if method == "GET":
            from urllib.parse import urlencode

            sep = "&" if "?" in url else "?"
            full = url + sep + urlencode(params)
            headers = delivery_headers(self.sign(full, {}))
            answer = self._session.get(self.target(full), headers=headers, timeout=TIMEOUT_SECONDS)
        else:
            answer = self._session.post(
                target, data=params, headers=headers, timeout=TIMEOUT_SECONDS
            )
        return answer.status_code, answer.content

    # ------------------------------------------------------------------ asynchronous ones

    def send_later(self, url: str, params: dict[str, str], method: str = "POST") -> None:
        """Queue a status callback; sent in order by the sender thread."""
        self._queue.put((url, method, dict(params)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._send_all, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every queued callback was sent (tests and the control API)."""
        done = threading.Event()
        self._queue.put(("", "MARK", {"_": str(id(done))}))
        self._marks[str(id(done))] = done
        done.wait(timeout)

    def _send_all(self) -> None:
        session = requests.Session()
        while True:
            item = self._queue.get()
            if item is None:
                return
            url, method, params = item
            if method == "MARK":
                mark = self._marks.pop(params["_"], None)
                if mark is not None:
                    mark.set()
                continue
            try:
                headers = delivery_headers(self.sign(url, params))
                answer = session.post(
                    self.target(url), data=params, headers=headers, timeout=TIMEOUT_SECONDS
                )
                if answer.status_code >= 400:
                    self.on_failure(
                        f"callback {_path(url)} answered HTTP {answer.status_code} "
                        "(Twilio logs error 11200 and does not retry)"
                    )
            except requests.RequestException as exc:
                self.on_failure(f"callback {_path(url)} failed: {type(exc).__name__}")


def _path(url: str) -> str:
    """A URL without its query (which may carry ids, never phone numbers, but keep logs short)."""
    return url.split("?", 1)[0]

"""The control API of the local Twilio, for a program that plays the people on the calls.

twilio = LocalTwilioClient("http://127.0.0.1:5080")
desk = twilio.dial_in(url="/voice/transfer-desk", from_="+15205550199")
desk = twilio.act(desk["sid"], "press", digits="4821#")
helper = twilio.wait_for_call(lambda c: "/voice/handoff/whisper" in (c["url"] or ""))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

View = dict[str, Any]
"""A call as its person knows it (see ivr.local_twilio.server.leg_view)."""


class ControlError(RuntimeError):
    """The local Twilio refused an action (the call is not where that can be done)."""


class LocalTwilioClient:
    def __init__(self, base_url: str, timeout: float = 20.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def _get(self, path: str, **params: Any) -> Any:
        answer = self.session.get(self.base + path, params=params, timeout=self.timeout)
        if answer.status_code != 200:
            raise ControlError(f"GET {path}: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def _post(self, path: str, **fields: Any) -> Any:
        answer = self.session.post(self.base + path, data=fields, timeout=self.timeout)
        if answer.status_code not in (200, 201):
            try:
                message = answer.json().get("message", answer.text)
            except ValueError:
                message = answer.text
            raise ControlError(f"{path.rsplit('/', 1)[-1]}: {message}")
        return answer.json()

    def healthy(self) -> bool:
        try:
            return bool(self._get("/_local/health").get("ok"))
        except (requests.RequestException, ControlError, ValueError):
            return False

    def dial_in(self, *, url: str, from_: str, to: str = "+15205550100") -> View:
        """Someone calls the number whose Voice URL is `url` (a path under PUBLIC_BASE_URL)."""
        return dict(self._post("/_local/calls", Url=url, From=from_, To=to))

    def call(self, sid: str) -> View:
        return dict(self._get(f"/_local/calls/{sid}"))

    def calls(self) -> list[View]:
        return list(self._get("/_local/calls"))

    def act(self, sid: str, action: str, **fields: Any) -> View:
        """press (digits=), speak (words=), silence, record (seconds=), wait, answer (as_=),
        busy, failed, hangup."""
        if "as_" in fields:
            fields["as"] = fields.pop("as_")
        return dict(self._post(f"/_local/calls/{sid}/{action}", **fields))

    def set_phone(self, address: str, mode: str, after: float = 0.2) -> None:
        """How the phone at `address` behaves when it rings (manual, human, machine, busy, ...)."""
        self._post("/_local/phones", Address=address, Mode=mode, After=str(after))

    def conferences(self) -> list[dict[str, Any]]:
        return list(self._get("/_local/conferences"))

    def messages(self) -> list[dict[str, Any]]:
        return list(self._get("/_local/messages"))

    def problems(self) -> list[str]:
        return list(self._get("/_local/problems"))

    def rest_log(self, since: float = 0.0) -> list[dict[str, Any]]:
        return list(self._get("/_local/rest-log", since=since))

    def wait_for(
        self, what: str, check: Callable[[], Any], timeout: float = 30.0, step: float = 0.05
    ) -> Any:
        """Poll `check()` until it returns something truthy; TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(step)

    def wait_for_call(
        self, match: Callable[[View], bool], what: str = "a call", timeout: float = 30.0
    ) -> View:
        """The first call (oldest first) matching `match`, once there is one."""

        def found() -> View | None:
            return next((c for c in self.calls() if match(c)), None)

        return dict(self.wait_for(what, found, timeout))

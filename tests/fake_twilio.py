"""A stand-in for Twilio's REST API on loopback, for code running in other processes.

`responses` mocks requests only inside the test process; gunicorn and RQ workers started by a
test (or a benchmark) reach this server instead through TWILIO_API_BASE_URL (ivr/settings.py).
It answers the calls Bridgeline makes the way Twilio does (a fresh CallSid per created call,
the call list filtered by To/From, participants by label, texts) and records every request,
so a test can count exactly how many calls were placed and to whom.

    with FakeTwilio(ACCOUNT_SID) as twilio:
        env["TWILIO_API_BASE_URL"] = twilio.base_url
        ...
        assert len(twilio.created_calls()) == 1
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/2010-04-01/Accounts/{account}"


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    account: str
    """The Basic auth user name (Twilio's client sends the account SID)."""
    sid: str = ""
    """The SID the fake answered a create request with."""

    def field(self, name: str) -> str:
        """The first value of a form field ('' when absent)."""
        values = self.form.get(name) or self.query.get(name) or [""]
        return values[0]


class FakeTwilio:
    """Twilio's REST API for one account, answered on 127.0.0.1 from a thread."""

    def __init__(self, account_sid: str, create_seconds: float = 0.0) -> None:
        self.account_sid = account_sid
        self.create_seconds = create_seconds
        """How long a create-call request takes before the call exists (Twilio's latency)."""
        self.requests: list[Recorded] = []
        self.calls: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ what the test reads

    def recorded(self, method: str, pattern: str) -> list[Recorded]:
        """Requests whose path below the account matches `pattern` (a regex, anchored)."""
        prefix = API.format(account=self.account_sid)
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method
                and r.path.startswith(prefix)
                and re.fullmatch(pattern, r.path[len(prefix) :])
            ]

    def created_calls(self) -> list[Recorded]:
        """Every create-call request (POST .../Calls.json)."""
        return self.recorded("POST", r"/Calls\.json")

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.calls.clear()

    # ------------------------------------------------------------------ how it answers

    def _call(self, sid: str, to: str, from_: str, status: str) -> dict[str, Any]:
        return {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": from_,
            "status": status,
            "answered_by": None,
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
            "uri": f"{API.format(account=self.account_sid)}/Calls/{sid}.json",
        }

    def _answer(self, request: Recorded) -> tuple[int, dict[str, Any]]:
        prefix = API.format(account=self.account_sid)
        if not request.path.startswith(prefix + "/") or request.account != self.account_sid:
            return 404, _error(20404, "The requested resource was not found")
        path = request.path[len(prefix) :]
        if path == "/Calls.json":
            if request.method == "POST":
                if self.create_seconds:
                    time.sleep(self.create_seconds)
                sid = "CA" + secrets.token_hex(16)
                call = self._call(sid, request.field("To"), request.field("From"), "queued")
                request.sid = sid
                with self._lock:
                    self.calls[sid] = call
                return 201, call
            with self._lock:
                found = [
                    c
                    for c in reversed(self.calls.values())
                    if c["to"] == request.field("To") and c["from"] == request.field("From")
                ]
            return 200, _page("calls", found, path)
        match = re.fullmatch(r"/Calls/(CA[0-9a-f]{32})\.json", path)
        if match:
            with self._lock:
                known = self.calls.get(match[1])
                if known is not None and request.method == "POST" and request.field("Status"):
                    known["status"] = request.field("Status")
            if known is None:
                return 404, _error(20404, "The requested resource was not found")
            return 200, known
        match = re.fullmatch(r"/Conferences/([^/]+)/Participants(?:/([^/]+))?\.json", path)
        if match:
            conference, label = match[1], match[2]
            if label is None and request.method == "GET":
                return 200, _page("participants", [], path)
            if label is None:
                label = request.field("Label")
            elif request.method == "GET":
                return 404, _error(20404, "The requested resource was not found")
            elif request.method == "DELETE":
                return 204, {}
            return 200 if match[2] else 201, {
                "account_sid": self.account_sid,
                "call_sid": "CA" + secrets.token_hex(16),
                "conference_sid": conference,
                "label": label,
                "status": "connected",
            }
        if re.fullmatch(r"/Conferences/[^/]+\.json", path) and request.method == "POST":
            return 200, {"sid": path.split("/")[2][:-5], "status": request.field("Status")}
        if path == "/Messages.json" and request.method == "POST":
            return 201, {"sid": "SM" + secrets.token_hex(16), "status": "queued"}
        return 404, _error(20404, "The requested resource was not found")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                import base64

                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                auth = self.headers.get("Authorization", "")
                user = ""
                if auth.startswith("Basic "):
                    user = base64.b64decode(auth[6:]).decode().partition(":")[0]
                request = Recorded(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query, keep_blank_values=True),
                    form=parse_qs(body, keep_blank_values=True),
                    account=user,
                )
                with fake._lock:
                    fake.requests.append(request)
                status, payload = fake._answer(request)
                data = json.dumps(payload).encode() if status != 204 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # phone numbers are in the URLs; nothing is printed

        return Handler


def _error(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "status": 404, "more_info": ""}


def _page(key: str, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return {
        key: items,
        "first_page_uri": path,
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": max(0, len(items) - 1),
        "uri": path,
    }

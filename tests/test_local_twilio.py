"""The local Twilio against outside references: twilio's own Python library as the REST client
(it must parse every answer), twilio's RequestValidator on every webhook it sends, and
Twilio's TwiML schema (TWIML_XSD) on every document it is given.

The web app here is a small WSGI app on loopback that answers fixed TwiML and keeps every
request it got, so each story sees exactly what Twilio would have sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from ivr import twilio_rest
from ivr.local_twilio.callbacks import Webhooks
from ivr.local_twilio.client import LocalTwilioClient
from ivr.local_twilio.server import LocalTwilio
from ivr.local_twilio.switch import Switch
from ivr.settings import load_settings
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE

WHISPER = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="{base}/pressed" numDigits="1" timeout="8"><Say>Press 1.</Say></Gather>'
    "</Response>"
)
PRESSED = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Thanks.</Say><Hangup/></Response>'
REFUSED = '<?xml version="1.0" encoding="UTF-8"?><Response><Sayy>typo</Sayy></Response>'


@dataclass
class FakeBridgeline:
    """Answers TwiML by path; records (path, form, signature) of every request."""

    answers: dict[str, str]
    seen: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = {k: request.form[k] for k in request.form}
        self.seen.append((request.full_path.rstrip("?"), form,
                          request.headers.get("X-Twilio-Signature", "")))  # fmt: skip
        self.tokens.append(request.headers.get("I-Twilio-Idempotency-Token", ""))
        body = self.answers.get(request.path, "<Response/>").replace("{base}", PUBLIC_BASE)
        return Response(body, mimetype="text/xml")(environ, start_response)


@dataclass
class Running:
    twilio: LocalTwilioClient
    rest: Client
    app: FakeBridgeline
    base_url: str
    switch: Switch


def _serve(app: Any) -> tuple[Any, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def running(monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    monkeypatch.setenv("TWIML_XSD", _xsd())
    app = FakeBridgeline({"/whisper": WHISPER, "/pressed": PRESSED, "/refused": REFUSED})
    app_server, app_url = _serve(app)
    webhooks = Webhooks(auth_token=AUTH_TOKEN, public_base=PUBLIC_BASE, app_base=app_url)
    switch = Switch(ACCOUNT_SID, webhooks)
    webhooks.start()
    twilio_server, twilio_url = _serve(LocalTwilio(switch, AUTH_TOKEN))
    settings = load_settings({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE, "TWILIO_API_BASE_URL": twilio_url,
    })  # fmt: skip
    rest = twilio_rest.make_client(settings, timeout=10)
    yield Running(LocalTwilioClient(twilio_url), rest, app, twilio_url, switch)
    twilio_server.shutdown()
    app_server.shutdown()
    webhooks.stop()
    switch.close()


def _xsd() -> str:
    import os

    path = os.environ.get("TWIML_XSD", "")
    if not path:
        pytest.skip("TWIML_XSD is not set (CI sets it)")
    return path


def _drain(running: Running) -> None:
    """Wait until the callbacks queued so far were delivered (the sender thread's queue)."""
    running.switch.webhooks.drain()


def test_twilios_own_client_places_lists_fetches_and_ends_a_call(running: Running) -> None:
    call = running.rest.calls.create(
        to="+15205550151", from_="+15205550100", url=f"{PUBLIC_BASE}/whisper",
        status_callback=f"{PUBLIC_BASE}/status", status_callback_event=["initiated", "ringing",
        "answered", "completed"], timeout=20,
    )  # fmt: skip
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert call.status == "queued"
    listed = running.rest.calls.list(to="+15205550151", from_="+15205550100", limit=20)
    assert [c.sid for c in listed] == [call.sid]
    assert listed[0].date_created is not None  # RFC 2822, parsed by twilio's own code

    running.twilio.wait_for("ringing", lambda: running.twilio.call(call.sid)["status"] == "ringing")
    running.twilio.act(call.sid, "answer")
    view = running.twilio.act(call.sid, "press", digits="1")
    assert view["heard"][-2:] == ["Thanks.", "[call ends]"]
    assert running.rest.calls(call.sid).fetch().status == "completed"
    _drain(running)

    statuses = [form["CallStatus"] for path, form, _ in running.app.seen if path == "/status"]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    sequence = [form["SequenceNumber"] for path, form, _ in running.app.seen if path == "/status"]
    assert sequence == ["0", "1", "2", "3"]
    (answered,) = [f for p, f, _ in running.app.seen if p == "/whisper"]
    assert answered["CallStatus"] == "in-progress" and answered["Direction"] == "outbound-api"


def test_every_webhook_carries_the_signature_twilios_validator_accepts(running: Running) -> None:
    call = running.rest.calls.create(
        to="+15205550151", from_="+15205550100", url=f"{PUBLIC_BASE}/whisper",
        status_callback=f"{PUBLIC_BASE}/status?attempt=7", status_callback_event=["answered"],
    )  # fmt: skip
    running.twilio.wait_for("ringing", lambda: running.twilio.call(call.sid)["status"] == "ringing")
    running.twilio.act(call.sid, "answer")
    running.twilio.act(call.sid, "press", digits="1")
    _drain(running)

    validator = RequestValidator(AUTH_TOKEN)
    paths = [path for path, _, _ in running.app.seen]
    assert sorted(paths) == ["/pressed", "/status?attempt=7", "/whisper"]  # only 'answered' asked
    for path, form, signature in running.app.seen:
        assert validator.validate(PUBLIC_BASE + path, form, signature), path
        assert not validator.validate(PUBLIC_BASE + path, {**form, "Digits": "9"}, signature)
    assert all(running.app.tokens) and len(set(running.app.tokens)) == len(running.app.tokens)


def test_a_wrong_auth_token_is_refused_as_twilio_refuses_it(running: Running) -> None:
    client = Client(ACCOUNT_SID, "not-the-token", http_client=twilio_rest.RebasedHttpClient(
        running.base_url, timeout=5))  # fmt: skip
    with pytest.raises(TwilioRestException) as refused:
        client.calls.create(to="+15205550151", from_="+15205550100", url=f"{PUBLIC_BASE}/whisper")
    assert refused.value.status == 401 and refused.value.code == 20003


def test_twiml_twilio_would_refuse_is_reported_and_the_caller_hears_the_application_error(
    running: Running,
) -> None:
    call = running.rest.calls.create(
        to="+15205550151", from_="+15205550100", url=f"{PUBLIC_BASE}/refused"
    )
    running.twilio.wait_for("ringing", lambda: running.twilio.call(call.sid)["status"] == "ringing")
    view = running.twilio.act(call.sid, "answer")

    assert view["status"] == "completed"
    assert "application error" in view["heard"][-2]
    (problem,) = running.twilio.problems()
    assert "/refused" in problem and "Sayy" in problem


def test_a_phone_nobody_answers_rings_out_after_the_timeout_and_a_busy_one_is_busy(
    running: Running,
) -> None:
    running.twilio.set_phone("+15205550152", "busy", after=0.0)
    busy = running.rest.calls.create(
        to="+15205550152", from_="+15205550100", url=f"{PUBLIC_BASE}/whisper",
        status_callback=f"{PUBLIC_BASE}/status",
    )  # fmt: skip
    unanswered = running.rest.calls.create(
        to="+15205550153", from_="+15205550100", url=f"{PUBLIC_BASE}/whisper",
        status_callback=f"{PUBLIC_BASE}/status", timeout=1,
    )  # fmt: skip
    running.twilio.wait_for("both calls to end", lambda: {
        running.twilio.call(busy.sid)["status"], running.twilio.call(unanswered.sid)["status"]
    } == {"busy", "no-answer"})  # fmt: skip
    _drain(running)
    final = {form["CallSid"]: form["CallStatus"] for p, form, _ in running.app.seen
             if p == "/status"}  # fmt: skip
    assert final == {busy.sid: "busy", unanswered.sid: "no-answer"}  # only 'completed' asked for


def test_the_phones_console_lets_a_person_dial_in_press_keys_and_hear_the_answers(
    running: Running,
) -> None:
    import io

    from ivr.local_twilio.phones import main

    script = iter(
        ["call /whisper from +15205550123", "calls", "last press 1", "texts", "bogus", "quit"]
    )
    out = io.StringIO()

    assert main(["--twilio", running.base_url], out=out, read=lambda prompt: next(script)) == 0

    printed = out.getvalue()
    assert "+15205550123 (caller) | Press 1." in printed
    assert "| [presses 1]" in printed and "| Thanks." in printed
    assert "in-progress, at Gather" in printed  # the calls list, before the key press
    assert "? (help lists the commands)" in printed
    assert "(no texts sent)" in printed

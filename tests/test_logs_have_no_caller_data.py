"""No caller data in the logs: whole calls are played and every log line is searched.

Logs go to places with wide access (log shippers, vendors, on-call laptops). Phone numbers,
recording URLs and what a caller said must never be in them, in any spelling.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import responses as responses_lib
import sqlalchemy as sa

from ivr.logs import JsonFormatter
from ivr.simulator import Call
from ivr.store.tables import outbound_sms, service_requests
from tests.conftest import ACCOUNT_SID

Place = Callable[..., Call]

RESIDENT = "+15205550123"
KEYED = "5205550177"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def spellings(e164: str) -> list[str]:
    """Ways a US number can appear in text: +1…, 10 digits, dashed, dotted, last seven."""
    digits = e164[-10:]
    area, exchange, line = digits[:3], digits[3:6], digits[6:]
    return [
        e164,
        digits,
        f"{area}-{exchange}-{line}",
        f"({area}) {exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"{exchange}-{line}",
        exchange + line,
        "%2B1" + digits,
    ]


class Everything(logging.Handler):
    """Keeps every record at every level, formatted as production writes it (JSON) and plainly."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.json = JsonFormatter()
        self.plain = logging.Formatter("%(levelname)s %(name)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.json.format(record))
        self.lines.append(self.plain.format(record))


@pytest.fixture
def logs(app) -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(previous)


def assert_clean(handler: Everything, secrets: list[str]) -> None:
    logging.getLogger("bridgeline.test").info("flow finished")
    assert handler.lines
    text = "\n".join(handler.lines)
    for secret in secrets:
        assert secret.lower() not in text.lower(), f"{secret!r} is in the logs"


def test_a_report_logs_neither_the_number_nor_the_recording(
    call: Place, engine: sa.Engine, logs: Everything
) -> None:
    c = call(from_number=RESIDENT)
    c.press("1")
    c.press("1")
    c.press("3")
    c.record(seconds=20)
    c.speak("Corner of Speedway and Euclid")
    c.press("1")
    c.press("2")  # a text when the status changes
    with engine.connect() as conn:
        row = conn.execute(sa.select(service_requests)).one()
    assert row.caller_number == RESIDENT and row.recording_url
    assert row.address == "Corner of Speedway and Euclid" and row.notify_sms
    logging.getLogger("bridgeline.test").info("flow finished: report %s", row.reference)
    assert_clean(
        logs,
        [
            *spellings(RESIDENT),
            row.recording_url,
            row.recording_url.split("/")[-1],
            "Speedway",
            "Euclid",
        ],
    )


def test_a_callback_to_a_keyed_number_logs_neither_number(
    call: Place, engine: sa.Engine, logs: Everything
) -> None:
    c = call(from_number=RESIDENT)
    c.press("1")
    c.press("5")
    c.press("2")  # another number
    c.press("12")  # too short: refused, and that refusal is logged nowhere with the digits
    c.press(KEYED + "#")
    c.press("1")
    c.press("1")
    assert "Your call back request is saved" in c.heard_since_last()
    logging.getLogger("bridgeline.test").info("flow finished")
    assert_clean(logs, [*spellings(RESIDENT), *spellings("+1" + KEYED), "1 2"])


def test_a_text_message_logs_no_number_even_when_a_worker_dies_mid_send(
    call: Place, engine: sa.Engine, run_jobs, twilio_api: responses_lib.RequestsMock, logs
) -> None:
    from workers.sms import sweep_sms

    c = call(from_number=RESIDENT)
    c.press("1")
    c.press("3")
    c.press("1")
    c.press("1")
    assert "We are sending a text message" in c.heard_since_last()
    # The worker claims the text and dies before Twilio answers: the row stays 'sending'.
    with engine.begin() as conn:
        conn.execute(
            outbound_sms.update().values(
                status="sending", created_at=datetime.now(UTC) - timedelta(hours=1)
            )
        )
    twilio_api.get(re.compile(re.escape(MESSAGES_URL) + r"\?.*"), json={"messages": []})
    assert sweep_sms() == 2  # one settled back to pending, one queued again
    twilio_api.post(MESSAGES_URL, json={"sid": "SM" + "2" * 32, "status": "queued"}, status=201)
    run_jobs()
    with engine.connect() as conn:
        assert conn.execute(sa.select(outbound_sms.c.status)).scalar_one() == "sent"
    assert_clean(logs, spellings(RESIDENT))


def test_crisis_words_are_acted_on_but_never_written_down(call: Place, logs: Everything) -> None:
    c = call(from_number=RESIDENT)
    c.press("1")
    c.speak("my neighbour Maria Lopez said she will kill myself tonight")
    assert c.dialed == ["+15205550988"]
    c.answer_dial("completed")
    assert_clean(
        logs, [*spellings(RESIDENT), "Maria", "Lopez", "kill myself", "neighbour", "tonight"]
    )


def test_a_database_failure_mid_call_logs_the_error_but_not_the_caller(
    call: Place, app, logs: Everything, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr.store import service_requests as requests_store

    def broken(*args: object, **kwargs: object) -> object:
        raise sa.exc.OperationalError(
            "INSERT INTO service_requests (caller_number, recording_url) VALUES (?, ?)",
            (RESIDENT, "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE9"),
            Exception("database is locked"),
        )

    monkeypatch.setattr(requests_store, "file_request", broken)
    c = call(from_number=RESIDENT)
    c.press("1")
    c.press("1")
    c.press("2")
    c.record(seconds=9)
    assert "connect you to a person" in c.heard_since_last()
    assert any("not saved" in line for line in logs.lines)
    assert_clean(logs, [*spellings(RESIDENT), "Recordings/RE9"])


def test_an_unexpected_error_logs_its_traceback_without_caller_data(
    signed_post, app, logs: Everything, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = app.extensions["bridgeline"].self_service

    def explode(turn, menu_id):  # a bug whose message carries caller data
        raise ValueError(f"cannot route {turn.from_number} who said {turn.speech!r}")

    monkeypatch.setattr(line, "menu_choice", explode)
    response = signed_post(
        "/voice/self-service/menu/main/choose?lang=en",
        {"From": RESIDENT, "SpeechResult": "my name is Maria Lopez"},
    )
    assert response.status_code == 200 and b"<Dial" in response.data
    assert_clean(logs, [*spellings(RESIDENT), "Maria", "Lopez"])

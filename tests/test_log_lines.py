"""What an operator reads: every line JSON (gunicorn's own included), phone numbers scrubbed in
every spelling, and everything else (job IDs, worker names, CallSids, times) still searchable.
The web process is started from the Procfile, with the gunicorn installed next to this Python."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import requests

from ivr.logs import redact
from ivr.security import SIGNATURE_HEADER, compute_signature
from tests.conftest import AUTH_TOKEN
from tests.live_service import REPO, Processes, free_port, procfile_command


@pytest.mark.parametrize(
    "spelling",
    [
        "+15205550123",
        "+1 520 555 0123",
        "(520) 555-0123",
        "520-555-0123",
        "520.555.0123",
        "5205550123",
        "1-520-555-0123",
        "%2B15205550123",
        "+44 20 7946 0958",
        "5201234567",  # keyed in, not a valid number, still a caller's digits
        "tel:+15205550123",
    ],
)
def test_a_phone_number_in_any_spelling_is_scrubbed(spelling: str) -> None:
    line = redact(f"callback to {spelling} refused")
    assert line == "callback to [number] refused" or line == "callback to tel:[number] refused"


def test_sip_and_recording_urls_are_scrubbed() -> None:
    assert redact("dial sip:okafor@pbx.example.org now") == "dial [sip-uri] now"
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE12345678"
    assert redact(f"saved {url}") == "saved [recording-url]"


@pytest.mark.parametrize(
    "line",
    [
        "Worker d8824c04a1b94f5c9e0f1234567890ab: started with PID 123456, version 2.0.1",
        "Job handoff-1234-a1-dial: scheduled for retry at 2026-11-30 22:10:45.123456+00:00",
        "rq.worker: urgent: workers.handoffs.dial_helper(12, 1) (sms-4821)",
        "call=CA1234567890abcdef1234567890abcdef handoff_id=20261130 took 1733004645123 us",
        "applied 5550123 rows in 12.5 s at 22:10:45",
    ],
)
def test_ids_worker_names_and_times_are_left_searchable(line: str) -> None:
    assert redact(line) == line


def test_the_procfile_web_binds_loopback_unless_told_otherwise() -> None:
    web = next(
        line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    assert "--bind ${BRIDGELINE_BIND:-127.0.0.1}:${PORT:-5000}" in web
    assert "0.0.0.0" not in web  # noqa: S104
    assert "-c python:ivr.gunicorn_config" in web


def test_tests_start_the_gunicorn_installed_next_to_this_python() -> None:
    command = procfile_command("web", {"PORT": "5999"})
    assert command[0] == str(Path(sys.executable).parent / "gunicorn")
    assert Path(command[0]).exists()


def test_every_line_gunicorn_and_the_app_write_is_json_without_numbers(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    full_env = {**env, "PORT": str(port), "WEB_CONCURRENCY": "1", "PATH": "/usr/bin:/bin"}
    log = tmp_path / "web.log"
    processes = Processes()
    try:
        processes.start(procfile_command("web", full_env), full_env, log)
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            processes.check_alive()
            try:
                requests.get(f"{base}/readyz", timeout=30)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        # A forged request (logged as a warning by the app) and a signed one from a caller.
        path = "/voice/self-service/language"
        form = {"From": "+15205550123", "Digits": "1"}
        forged = requests.post(f"{base}{path}?From=%2B15205550123", data=form, timeout=60)
        assert forged.status_code == 403
        signature = compute_signature(AUTH_TOKEN, env["PUBLIC_BASE_URL"] + path, form.items())
        signed = requests.post(
            f"{base}{path}", data=form, headers={SIGNATURE_HEADER: signature}, timeout=60
        )
        assert signed.status_code == 200
    finally:
        processes.stop()
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, or this raises
    messages = " ".join(r["msg"] for r in records)
    assert "Booting worker" in messages  # gunicorn's own error log
    assert "rejected voice request with a bad signature" in messages  # the app's logger
    assert '"POST /voice/self-service/language" 200' in messages  # the access log
    assert "5205550123" not in log.read_text()

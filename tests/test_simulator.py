"""The call simulator: a developer without a Twilio account files a report and hears the reference."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator

import pytest
from werkzeug.serving import make_server

from ivr import simulator


@pytest.fixture
def scripted_input(monkeypatch) -> Callable:
    def script(*replies: str) -> None:
        answers: Iterator[str] = iter(replies)
        monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))

    return script


def _use_env(monkeypatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_simulated_call_in_process_files_a_report_and_reads_back_the_reference(
    app, env, monkeypatch, scripted_input, capsys, tmp_path
) -> None:
    _use_env(monkeypatch, env)
    scripted_input(
        "1", "1", "2", "there is a pothole", "Main Street and Fifth Avenue", "1", "", "hangup"
    )
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("", encoding="utf-8")
    assert simulator.main(["--env-file", str(empty_env)]) == 0
    out = capsys.readouterr().out
    assert "For English, press 1." in out
    match = re.search(r"Your reference number is ((?:\d ){7}\d)\.", out)
    assert match, out
    assert "[caller speaks for 12 seconds]" in out
    assert "I heard: Main Street and Fifth Avenue." in out


def test_simulated_call_against_a_running_service_over_http(
    app, env, monkeypatch, scripted_input, capsys, tmp_path
) -> None:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _use_env(monkeypatch, env)
        scripted_input("1", "4", "2", "")
        empty_env = tmp_path / "empty.env"
        empty_env.write_text("", encoding="utf-8")
        code = simulator.main(
            ["--url", f"http://127.0.0.1:{server.server_port}", "--env-file", str(empty_env)]
        )
    finally:
        server.shutdown()
        thread.join()
    out = capsys.readouterr().out
    assert code == 0
    assert "[dialing +15205550988]" in out
    assert "Thank you for calling. Goodbye." in out


def test_the_simulator_reports_a_wrong_signature_as_a_failed_call(
    app, env, monkeypatch, scripted_input, capsys, tmp_path
) -> None:
    _use_env(monkeypatch, {**env, "TWILIO_AUTH_TOKEN": env["TWILIO_AUTH_TOKEN"]})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-token")
        empty_env = tmp_path / "empty.env"
        empty_env.write_text("", encoding="utf-8")
        code = simulator.main(
            ["--url", f"http://127.0.0.1:{server.server_port}", "--env-file", str(empty_env)]
        )
    finally:
        server.shutdown()
        thread.join()
    assert code == 1
    assert "HTTP 403" in capsys.readouterr().err

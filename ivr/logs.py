"""Structured JSON logs with phone numbers and recording URLs scrubbed from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from phonenumbers import Leniency

_RECORDING_URL = re.compile(r"https?://\S*(?:Recordings|recordings)\S*")
_SIP = re.compile(r"sips?:[^\s@]+@\S+")
# E.164 with its plus, also percent-encoded as in a query string (From=%2B15205550123).
_PLUS_NUMBER = re.compile(r"(?:\+|%2[Bb])\d{7,15}(?!\d)")
# Ten NANP-shaped digits (optionally after a 1) standing alone: what a caller keys in, valid
# or not. Digits inside words (CallSids, worker names, job IDs) and times never match.
_NANP_DIGITS = re.compile(r"(?<![\w.:/-])1?[2-9]\d{9}(?![\w:])")
_MIN_DIGITS = 7
"""Fewer digits than this in a line and it cannot hold a phone number."""

_installed = False


def redact(text: str) -> str:
    """Replace phone numbers, SIP URIs and recording URLs; leave other digits searchable.

    Numbers are found by `phonenumbers`' own matcher (any usual spelling, any country), plus
    E.164 written with a plus or %2B and ten keyed-in digits; job IDs, worker names, CallSids,
    times and counts are kept as they are.
    """
    text = _RECORDING_URL.sub("[recording-url]", text)
    text = _SIP.sub("[sip-uri]", text)
    if sum(ch.isdigit() for ch in text) < _MIN_DIGITS:
        return text
    text = _PLUS_NUMBER.sub("[number]", text)
    text = _NANP_DIGITS.sub("[number]", text)
    spans = [
        (match.start, match.end)
        for match in phonenumbers.PhoneNumberMatcher(text, "US", leniency=Leniency.VALID)
    ]
    for start, end in reversed(spans):
        text = text[:start] + "[number]" + text[end:]
    return text


def gunicorn_logconfig() -> dict[str, Any]:
    """logging.config.dictConfig settings for gunicorn: its error and access logs and the
    app's own loggers as JSON lines, scrubbed (ivr/gunicorn_config.py hands them over)."""
    handler = {"class": "logging.StreamHandler", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "ivr.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {**handler, "stream": "ext://sys.stderr"},
            "stdout": {**handler, "stream": "ext://sys.stdout"},
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
            "twilio.http_client": {"level": "WARNING"},
        },
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and call_sid / job_id if given."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("call_sid", "job_id", "handoff_id"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = safe_traceback(record.exc_info)
        if record.exc_text:
            data["exc"] = redact(record.exc_text)
        return json.dumps(data, ensure_ascii=False)


def safe_traceback(exc_info: Any) -> str:
    """Where an error happened, without the exception messages (they can quote caller data)."""
    lines: list[str] = []
    exc: BaseException | None = exc_info[1] if isinstance(exc_info, tuple) else None
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(exc.__traceback__))
        lines.append(f"{type(exc).__module__}.{type(exc).__qualname__}: [message withheld]\n")
        exc = exc.__cause__ or exc.__context__
    return "".join(lines).rstrip("\n")


def install_redaction() -> None:
    """Scrub every log record when it is made, whatever handler later writes it."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info:
            # Every handler prints exc_text when set; the exception object itself (whose
            # message may quote a caller) is dropped so no handler can format it.
            record.exc_text = redact(safe_traceback(record.exc_info))
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def configure(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the service and the worker (unless logging is set up already)."""
    install_redaction()
    root = logging.getLogger()
    if not any(getattr(h, "_bridgeline", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._bridgeline = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # twilio's HTTP client logs every request's query (To=, From=) at INFO.
    logging.getLogger("twilio.http_client").setLevel(max(level, logging.WARNING))

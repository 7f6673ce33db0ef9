"""Structured JSON logs with phone numbers and recording URLs scrubbed from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

# A number may follow a non-word character or a URL-encoded "+" (%2B, as in a query string).
_NUMBER = re.compile(r"(?:(?<![\w])|(?<=%2B)|(?<=%2b))\+?\d[\d\s().-]{6,}\d")
_RECORDING_URL = re.compile(r"https?://\S*(?:Recordings|recordings)\S*")
_SIP = re.compile(r"sip:[^\s@]+@\S+")

_installed = False


def redact(text: str) -> str:
    """Replace anything that looks like a phone number or recording URL."""
    text = _RECORDING_URL.sub("[recording-url]", text)
    text = _SIP.sub("[sip-uri]", text)
    return _NUMBER.sub("[number]", text)


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

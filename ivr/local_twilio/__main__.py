"""Run the local Twilio: `python -m ivr.local_twilio` (the Procfile's `twilio` process).

Settings come from the environment, the same names Bridgeline reads:
  TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN  the account it plays (requests must use them)
  TWILIO_API_BASE_URL   where it listens: an http://127.0.0.1:PORT (or localhost) address
  PUBLIC_BASE_URL       the base of the URLs Bridgeline hands Twilio (signatures use it)
  LOCAL_TWILIO_APP_URL  where those URLs are served here (default http://127.0.0.1:5000)
  LOCAL_TWILIO_ANSWER   what a phone nobody plays does when it rings: manual (rings until
                        its Timeout), human, machine, busy, failed, no-answer
  TWIML_XSD             Twilio's TwiML schema; every document is validated against it
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from urllib.parse import urlsplit

from werkzeug.serving import make_server

from ivr.local_twilio.callbacks import Webhooks
from ivr.local_twilio.calls import PHONE_MODES, Phone
from ivr.local_twilio.server import LocalTwilio
from ivr.local_twilio.switch import Switch
from ivr.local_twilio.twiml_schema import schema_path

log = logging.getLogger("ivr.local_twilio")

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class StartupError(ValueError):
    """A setting the local Twilio cannot run with."""


def _required(env: dict[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise StartupError(f"{name} is not set (the local Twilio plays that account)")
    return value


def build(env: dict[str, str]) -> tuple[LocalTwilio, str, int]:
    """The app and where it listens, from `env`; StartupError names the bad setting."""
    account_sid = _required(env, "TWILIO_ACCOUNT_SID")
    token = _required(env, "TWILIO_AUTH_TOKEN")
    public_base = _required(env, "PUBLIC_BASE_URL")
    base = _required(env, "TWILIO_API_BASE_URL")
    parts = urlsplit(base)
    if parts.scheme != "http" or (parts.hostname or "") not in LOOPBACK or not parts.port:
        raise StartupError(
            f"TWILIO_API_BASE_URL must be http://127.0.0.1:PORT for the local Twilio, got {base!r}"
        )
    mode = env.get("LOCAL_TWILIO_ANSWER", "manual").strip() or "manual"
    if mode not in PHONE_MODES:
        raise StartupError(
            f"LOCAL_TWILIO_ANSWER must be one of {', '.join(sorted(PHONE_MODES))}, got {mode!r}"
        )
    app_url = env.get("LOCAL_TWILIO_APP_URL", "").strip() or "http://127.0.0.1:5000"
    switch_ref: list[Switch] = []
    webhooks = Webhooks(
        auth_token=token,
        public_base=public_base,
        app_base=app_url,
        on_failure=lambda problem: switch_ref[0].report(problem) if switch_ref else None,
    )
    switch = Switch(account_sid, webhooks, default_phone=Phone(mode))
    switch_ref.append(switch)
    return LocalTwilio(switch, token), parts.hostname or "127.0.0.1", parts.port


def main() -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # request lines carry phone numbers
    try:
        app, host, port = build(dict(os.environ))
    except StartupError as exc:
        print(f"local twilio: {exc}", file=sys.stderr)
        return 2
    if schema_path() is None:
        log.warning(
            "TWIML_XSD is not set: TwiML is checked for shape only, not against Twilio's schema"
        )
    app.switch.webhooks.start()
    server = make_server(host, port, app, threaded=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    log.info(
        "local twilio: REST API for %s at http://%s:%s, webhooks to %s",
        app.switch.account_sid[:6] + "...",
        host,
        port,
        app.switch.webhooks.app_base,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.switch.close()
        app.switch.webhooks.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

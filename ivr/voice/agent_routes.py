"""Routes of the 311 agent line: sign in, take residents from the agent queue, next one."""

from __future__ import annotations

from flask import Flask, Response, current_app, request

from ivr.flows.agent_line import AGENT, AgentLine
from ivr.services import services_of
from ivr.voice.common import twiml, voice_blueprint
from ivr.voice.desk_routes import DESK_KEY

EXTENSION_KEY = "bridgeline_agent_line"
METHODS = ["POST", "GET"]

bp = voice_blueprint("agent_line", __name__, AGENT)


def init_app(app: Flask) -> None:
    """Build the agent line on the desk's sign-in; register the routes (after the desk's)."""
    core = services_of(app)
    app.extensions[EXTENSION_KEY] = AgentLine(
        app.extensions[DESK_KEY],
        core.settings.public_base_url,
        core.config.menus.settings.agent_queue,
    )
    app.register_blueprint(bp)


def line() -> AgentLine:
    return current_app.extensions[EXTENSION_KEY]


def _call_sid() -> str:
    value = request.values.get("CallSid") or ""
    return value if value.isascii() and value.isalnum() and len(value) <= 64 else ""


def _field(name: str, limit: int = 64) -> str:
    return (request.values.get(name) or "")[:limit]


def _staff_id() -> str:
    return "".join(ch for ch in request.args.get("s", "")[:12] if ch.isdigit())


@bp.route("", methods=METHODS)
def entry() -> Response:
    return twiml(line().entry(_call_sid(), _field("From")))


@bp.route("/id", methods=METHODS)
def staff_id() -> Response:
    raw = request.args.get("t", "0")
    attempt = int(raw) if raw.isdigit() and len(raw) < 4 else 0
    return twiml(line().staff_id_entered(_call_sid(), _field("Digits", 32), attempt))


@bp.route("/pin", methods=METHODS)
def pin() -> Response:
    return twiml(line().pin_entered(_call_sid(), _field("From"), _staff_id(), _field("Digits", 32)))


@bp.route("/connecting", methods=METHODS)
def connecting() -> Response:
    return twiml(line().connecting())


@bp.route("/next", methods=METHODS)
def after_call() -> Response:
    staff = _staff_id()
    if not staff:  # only URLs Bridgeline wrote after a PIN matched carry a staff ID
        return twiml(line().entry(_call_sid(), _field("From")))
    return twiml(line().after_call(staff, _field("DialCallStatus", 32)))


@bp.route("/again", methods=METHODS)
def again() -> Response:
    staff = _staff_id()
    if not staff:
        return twiml(line().entry(_call_sid(), _field("From")))
    return twiml(line().again(staff, _field("Digits", 8)))

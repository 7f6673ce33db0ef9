"""Routes of the transfer desk, the intake line and the handoff callbacks. Thin: read Twilio's
fields and our URL state, call TransferDesk, answer TwiML. Every route is signature-checked."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, Response, current_app, request

from ivr.config.program import ProgramConfig
from ivr.flows.conference_inbox import ConferenceInbox
from ivr.flows.desk import DESK, HANDOFF, INTAKE, DeskState, TransferDesk, decode_answers
from ivr.services import services_of
from ivr.voice.common import state, twiml, voice_blueprint

log = logging.getLogger(__name__)

DESK_KEY = "bridgeline_desk"
"""app.extensions key of the TransferDesk."""

INBOX_KEY = "bridgeline_conference_inbox"
"""app.extensions key of the ConferenceInbox."""

IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
"""Header Twilio sets on webhook retries; the same token means the same event."""

METHODS = ["POST", "GET"]
EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

desk_bp = voice_blueprint("transfer_desk", __name__, DESK)
intake_bp = voice_blueprint("intake", __name__, INTAKE)
handoff_bp = voice_blueprint("handoff", __name__, HANDOFF)


def init_app(app: Flask, spool_folder: str = "") -> None:
    """Build the desk from the app's roster, tree and connections; register the blueprints.

    Conference callbacks are spooled in `spool_folder` (BRIDGELINE_SPOOL_DIR, default
    instance/spool) and applied by a worker; when testing, or with 'off', they apply at once.
    """
    core = services_of(app)
    transfer_desk = TransferDesk(
        roster=core.roster,
        tree=core.tree,
        base_url=core.settings.public_base_url,
        engine=core.engine,
        queues=core.queues,
        hold_music_url=core.config.menus.settings.hold_music_url,
    )
    transfer_desk.psap_line = lambda number: _program().is_desk_caller(number)
    app.extensions[DESK_KEY] = transfer_desk
    inbox = ConferenceInbox(
        core.engine,
        core.queues,
        transfer_desk.inbox_callback,
        clock=lambda: transfer_desk.clock(),  # tests set the desk's clock
    )
    app.extensions[INBOX_KEY] = inbox
    folder = spool_folder.strip() or "instance/spool"
    if not app.testing and folder != "off":
        atexit.register(inbox.use_spool(Path(folder)).close)
    app.register_blueprint(desk_bp)
    app.register_blueprint(intake_bp)
    app.register_blueprint(handoff_bp)


def desk() -> TransferDesk:
    return current_app.extensions[DESK_KEY]


def _call_sid() -> str:
    """Twilio's CallSid if it looks like one (letters and digits), else empty."""
    value = request.values.get("CallSid") or ""
    return value if value.isascii() and value.isalnum() and len(value) <= 64 else ""


def _field(name: str, limit: int = 64) -> str:
    return (request.values.get(name) or "")[:limit]


def _arg(name: str, limit: int = 64) -> str:
    return request.args.get(name, "")[:limit]


def _num(name: str) -> int:
    raw = request.args.get(name, "0")
    return min(int(raw), 1_000_000) if raw.isdigit() and len(raw) < 8 else 0


def _state() -> DeskState:
    staff_id = "".join(ch for ch in _arg("s", 12) if ch.isdigit())
    return DeskState(
        staff_id=staff_id,
        answers=decode_answers(desk().tree, _arg("a", 16)),
        round=max(1, _num("n")),
        jurisdiction=_program().desk_jurisdiction(_field("From", 32)),
    )


def _program() -> ProgramConfig:
    """config/program.yaml (its defaults when absent)."""
    return state().program


def _token() -> str | None:
    value = request.headers.get(IDEMPOTENCY_HEADER)
    return value[:128] if value else None


def _signed_in() -> bool:
    # Only reachable through URLs Bridgeline signed into TwiML after a PIN matched.
    return bool(_state().staff_id)


@desk_bp.errorhandler(sa.exc.SQLAlchemyError)
def desk_database_down(exc: Exception) -> Response:
    """The desk cannot record: it says so plainly (no one was dialed) instead of failing."""
    log.error("desk: database unavailable path=%s error=%s", request.path, type(exc).__name__)
    return twiml(
        desk().end_call(
            "The transfer desk cannot record transfers right now, so no one was dialed. "
            "Please transfer the caller by phone. Goodbye."
        )
    )


@handoff_bp.errorhandler(Exception)
def handoff_failed(exc: Exception) -> Response:
    """A helper's leg never gets the caller-side fallback: it is told and released."""
    log.error("handoff route failed: path=%s error=%s", request.path, type(exc).__name__)
    return twiml(desk().end_call("Sorry, this handoff cannot be completed right now. Goodbye."))


# ---------------------------------------------------------------------- transfer desk


@desk_bp.route("", methods=METHODS)
def entry() -> Response:
    return twiml(desk().entry(_call_sid(), _field("From")))


@desk_bp.route("/id", methods=METHODS)
def staff_id() -> Response:
    return twiml(desk().staff_id_entered(_call_sid(), _field("Digits", 32), _num("t")))


@desk_bp.route("/pin", methods=METHODS)
def pin() -> Response:
    return twiml(
        desk().pin_entered(_call_sid(), _field("From"), _arg("s", 12), _field("Digits", 32))
    )


@desk_bp.route("/status", methods=METHODS)
def desk_call_status() -> Response:
    """The desk number's "call status changes" callback (see README): a leg that ended."""
    desk().caller_call_status(_call_sid(), request.values, _token())
    return twiml(EMPTY)


@desk_bp.route("/answer", methods=METHODS)
def answer() -> Response:
    if not _signed_in():
        return twiml(desk().entry(_call_sid(), _field("From")))
    return twiml(
        desk().answer(_call_sid(), _state(), _arg("q", 32), _field("Digits", 8), _num("t"))
    )


@desk_bp.route("/choose", methods=METHODS)
def choose() -> Response:
    if not _signed_in():
        return twiml(desk().entry(_call_sid(), _field("From")))
    return twiml(desk().choose(_call_sid(), _state(), _field("Digits", 8), _num("t")))


@desk_bp.route("/start", methods=METHODS)
def start() -> Response:
    if not _signed_in():
        return twiml(desk().entry(_call_sid(), _field("From")))
    return twiml(
        desk().start(
            _call_sid(), _state(), _arg("h", 64), _field("Digits", 16), _num("t"), _num("r")
        )
    )


@desk_bp.route("/reason", methods=METHODS)
def reason() -> Response:
    if not _signed_in():
        return twiml(desk().entry(_call_sid(), _field("From")))
    return twiml(desk().reason_chosen(_state(), _arg("h", 64), _field("Digits", 8), _num("t")))


@desk_bp.route("/returned", methods=METHODS)
def returned() -> Response:
    if not _signed_in():
        return twiml(desk().entry(_call_sid(), _field("From")))
    return twiml(desk().returned(_call_sid(), _num("handoff"), _state()))


# ---------------------------------------------------------------------- intake line


@intake_bp.route("", methods=METHODS)
def intake() -> Response:
    call_sid = _call_sid()
    if not call_sid:
        return twiml(desk().intake_unanswered(state().config.numbers.get("operator")))
    jurisdiction = _program().intake_jurisdiction(_field("To", 32))
    return twiml(desk().intake(call_sid, _field("From"), jurisdiction))


@intake_bp.route("/status", methods=METHODS)
def intake_call_status() -> Response:
    """The intake number's "call status changes" callback: a caller's leg that ended."""
    desk().caller_call_status(_call_sid(), request.values, _token())
    return twiml(EMPTY)


@intake_bp.route("/call-taker-status", methods=METHODS)
def call_taker_status() -> Response:
    desk().call_taker_status(_num("live"), _num("at"), request.values, _token())
    return twiml(EMPTY)


@intake_bp.route("/unanswered", methods=METHODS)
def unanswered() -> Response:
    return twiml(desk().intake_unanswered(state().config.numbers.get("operator")))


# ---------------------------------------------------------------------- helper leg and callbacks


@handoff_bp.route("/whisper", methods=METHODS)
def whisper() -> Response:
    return twiml(desk().whisper(_num("h"), _num("at"), _num("t")))


@handoff_bp.route("/whisper/answer", methods=METHODS)
def whisper_answer() -> Response:
    return twiml(
        desk().whisper_answer(_num("h"), _num("at"), _call_sid(), _field("Digits", 8), _num("t"))
    )


@handoff_bp.route("/announce", methods=METHODS)
def announce() -> Response:
    return twiml(desk().announcement(_arg("kind", 16)))


@handoff_bp.route("/helper-status", methods=METHODS)
def helper_status() -> Response:
    """The helper call's status: through the call's inbox, behind its conference callbacks."""
    handoff_id, attempt = _num("h"), _num("at")
    live_id = desk().helper_call_of(handoff_id, _num("live"))
    if live_id <= 0:
        return twiml(EMPTY)  # no such handoff: nothing to apply it to
    current_app.extensions[INBOX_KEY].receive(
        live_id, request.values, _token(), helper_call=(handoff_id, attempt)
    )
    return twiml(EMPTY)


@handoff_bp.route("/conference-status", methods=METHODS)
def conference_status() -> Response:
    current_app.extensions[INBOX_KEY].receive(_num("live"), request.values, _token())
    return twiml(EMPTY)

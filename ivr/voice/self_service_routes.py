"""Routes of the self-service line. Thin: read Twilio's fields, call SelfServiceLine, answer."""

from __future__ import annotations

from flask import Response, request

from ivr.flows.self_service import MAX_ATTEMPT_PARAM, SelfServiceLine, Turn
from ivr.voice.common import state, twiml, voice_blueprint

bp = voice_blueprint("self_service", __name__, "/voice/self-service")

METHODS = ["POST", "GET"]


def line() -> SelfServiceLine:
    return state().self_service


def _field(name: str, limit: int = 256) -> str | None:
    value = request.values.get(name)
    return value[:limit] if value is not None else None


def turn() -> Turn:
    """Twilio's fields and our URL state for this step, cleaned."""
    lang = request.args.get("lang", "en")
    raw_attempt = request.args.get("attempt", "0")
    attempt = int(raw_attempt) if raw_attempt.isdigit() and len(raw_attempt) < 4 else 0
    return Turn(
        call_sid=_field("CallSid", 64) or "",
        from_number=_field("From", 64) or "",
        lang="es" if lang == "es" else "en",
        attempt=min(attempt, MAX_ATTEMPT_PARAM),
        digits=_field("Digits", 64),
        speech=_field("SpeechResult", 400),
        confidence=_confidence(_field("Confidence", 16)),
    )


def _confidence(raw: str | None) -> float | None:
    """Twilio's Confidence (0.0-1.0) for SpeechResult; None when absent or not a number."""
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _arg(name: str, limit: int = 64) -> str:
    return request.args.get(name, "")[:limit]


@bp.route("", methods=METHODS)
def entry() -> Response:
    return twiml(line().greeting())


@bp.route("/language", methods=METHODS)
def language() -> Response:
    return twiml(line().choose_language(turn()))


@bp.route("/menu/<menu_id>", methods=METHODS)
def menu(menu_id: str) -> Response:
    return twiml(line().menu(turn(), menu_id[:64]))


@bp.route("/menu/<menu_id>/choose", methods=METHODS)
def menu_choice(menu_id: str) -> Response:
    return twiml(line().menu_choice(turn(), menu_id[:64]))


@bp.route("/menu/<menu_id>/confirm", methods=METHODS)
def menu_confirm(menu_id: str) -> Response:
    return twiml(
        line().confirm_choice(turn(), menu_id[:64], _arg("item", 2), _arg("inner", 2), _arg("cat"))
    )


@bp.route("/crisis/offer", methods=METHODS)
def crisis_offer() -> Response:
    return twiml(line().crisis_offer_choice(turn(), _arg("rule", 4)))


@bp.route("/after", methods=METHODS)
def after() -> Response:
    return twiml(line().after(turn()))


@bp.route("/report/category", methods=METHODS)
def report_category() -> Response:
    return twiml(line().report_category(turn()))


@bp.route("/report/no-audio", methods=METHODS)
def report_no_audio() -> Response:
    return twiml(line().report_no_audio(turn(), _arg("cat")))


@bp.route("/report/recorded", methods=METHODS)
def report_recorded() -> Response:
    return twiml(
        line().report_recorded(
            turn(),
            _arg("cat"),
            _field("RecordingSid", 64),
            _field("RecordingUrl", 512),
            _field("RecordingDuration", 16),
        )
    )


@bp.route("/report/address", methods=METHODS)
def report_address() -> Response:
    return twiml(line().address_heard(turn(), _arg("ref", 16)))


@bp.route("/report/address/confirm", methods=METHODS)
def report_address_confirm() -> Response:
    return twiml(line().address_confirm(turn(), _arg("ref", 16)))


@bp.route("/report/after", methods=METHODS)
def report_after() -> Response:
    return twiml(line().report_after(turn(), _arg("ref", 16)))


@bp.route("/report/recording-status", methods=METHODS)
def recording_status() -> Response:
    line().recording_status(
        _field("RecordingSid", 64),
        _field("RecordingUrl", 512),
        _field("RecordingDuration", 16),
        _field("RecordingStatus", 32),
    )
    return twiml('<?xml version="1.0" encoding="UTF-8"?><Response/>')


@bp.route("/report/transcription", methods=METHODS)
def report_transcription() -> Response:
    line().report_transcribed(
        turn(),
        _field("RecordingSid", 64),
        _field("TranscriptionText", 4000),
        _field("TranscriptionStatus", 32),
    )
    return twiml('<?xml version="1.0" encoding="UTF-8"?><Response/>')


@bp.route("/status/check", methods=METHODS)
def status_check() -> Response:
    return twiml(line().status_check(turn()))


@bp.route("/info/<topic>/choose", methods=METHODS)
def info_choice(topic: str) -> Response:
    return twiml(line().info_choice(turn(), topic[:64]))


@bp.route("/dial-result", methods=METHODS)
def dial_result() -> Response:
    return twiml(
        line().dial_result(turn(), _arg("line"), _field("DialCallStatus", 32), _arg("step", 4))
    )


@bp.route("/queue/wait", methods=METHODS)
def queue_wait() -> Response:
    t = turn()
    return twiml(line().queue_wait(t.lang, _field("QueuePosition", 8), _field("QueueTime", 12)))


@bp.route("/queue/offer", methods=METHODS)
def queue_offer() -> Response:
    return twiml(line().queue_offer(turn()))


@bp.route("/queue/done", methods=METHODS)
def queue_done() -> Response:
    return twiml(line().queue_done(turn(), _field("QueueResult", 32)))


@bp.route("/callback/caller-id", methods=METHODS)
def callback_caller_id() -> Response:
    return twiml(line().callback_caller_id(turn(), _arg("src", 32)))


@bp.route("/callback/entered", methods=METHODS)
def callback_entered() -> Response:
    return twiml(line().callback_entered(turn(), _arg("src", 32)))


@bp.route("/callback/confirm", methods=METHODS)
def callback_confirm() -> Response:
    return twiml(line().callback_confirm(turn(), _arg("src", 32)))


@bp.route("/callback/consent", methods=METHODS)
def callback_consent() -> Response:
    return twiml(line().callback_consent(turn(), _arg("src", 32)))

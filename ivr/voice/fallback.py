"""POST /voice/fallback: the number's Fallback URL, used by Twilio when a webhook failed."""

from __future__ import annotations

import logging

from flask import Response, request

from ivr.voice.common import fallback_answer, voice_blueprint

log = logging.getLogger(__name__)

bp = voice_blueprint("voice_fallback", __name__, "/voice")


@bp.route("/fallback", methods=["POST", "GET"])
def fallback() -> Response:
    """Apologise and connect the caller to a person."""
    log.error(
        "Twilio used the fallback URL: error_code=%s",
        (request.values.get("ErrorCode") or "")[:16],
    )
    return fallback_answer()

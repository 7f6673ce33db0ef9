"""How a partner API answers a refused key: JSON with the reason, the right status and headers."""

from __future__ import annotations

from flask import Response, jsonify

from ivr.partners import Refusal


def refusal_response(refusal: Refusal) -> Response:
    """401 (with WWW-Authenticate), 403 or 429 (with Retry-After), body {"error", "reason"}."""
    response = jsonify({"error": refusal.message, "reason": refusal.value})
    response.status_code = refusal.http_status
    if refusal is Refusal.UNKNOWN:
        response.headers["WWW-Authenticate"] = 'Bearer realm="bridgeline-partners"'
    if refusal is Refusal.RATE_LIMITED:
        response.headers["Retry-After"] = "60"
    return response

"""How a partner API answers a refused key: JSON with the reason, the right status and headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, jsonify

from ivr.partners import Refusal, Scope

F = TypeVar("F", bound=Callable[..., Any])


def partner_api(scope: Scope) -> Callable[[F], F]:
    """Mark a view as a partner API: it checks a partner key of `scope` itself (a staff session
    is not a key). Tests find every such view by its `partner_scope` and knock without one."""

    def mark(view: F) -> F:
        view.partner_scope = scope.value  # type: ignore[attr-defined]
        return view

    return mark


def refusal_response(refusal: Refusal) -> Response:
    """401 (with WWW-Authenticate), 403 or 429 (with Retry-After), body {"error", "reason"}."""
    response = jsonify({"error": refusal.message, "reason": refusal.value})
    response.status_code = refusal.http_status
    if refusal is Refusal.UNKNOWN:
        response.headers["WWW-Authenticate"] = 'Bearer realm="bridgeline-partners"'
    if refusal is Refusal.RATE_LIMITED:
        response.headers["Retry-After"] = "60"
    return response

"""`GET /api/eido/incidents/<id>`: a partner reads one handoff's EIDO with its API key.

The key needs the `eido` scope and the handoff's jurisdiction (ivr.partners). `<id>` is the
handoff id (the EIDO's internalIncidentId) or the incident tracking identifier (its `$id`).
Refusals are JSON with a reason: 401 unknown key, 403 not allowed, 429 over the rate limit;
404 when there is no such incident.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, jsonify, request

from ivr import partners
from ivr.partners.eido_http import current_context, eido_response
from ivr.partners.http import partner_api, refusal_response
from ivr.reporting.eido import build_eido, jurisdiction_of, load_facts
from ivr.services import services

bp = Blueprint("eido_api", __name__, url_prefix="/api/eido")

_TRACKING_ID = re.compile(r"^urn:emergency:uid:incidentid:h([0-9]{1,12})t[0-9]{14}:[^:]+$")


def handoff_id_from(raw: str) -> int | None:
    """The handoff id in a path segment: digits, or an incident tracking identifier we issued."""
    if raw.isdigit() and len(raw) <= 12:
        return int(raw)
    match = _TRACKING_ID.match(raw)
    return int(match.group(1)) if match else None


def _not_found() -> Response:
    response = jsonify({"error": "no such incident", "reason": "not_found"})
    response.status_code = 404
    return response


@bp.get("/incidents/<path:incident>")
@partner_api(partners.Scope.EIDO)
def incident(incident: str) -> Response:
    """The incident's EIDO as it stands now (application/json)."""
    engine = services().engine
    context = current_context()
    handoff_id = handoff_id_from(incident)
    facts = load_facts(engine, handoff_id) if handoff_id is not None else None
    if facts is not None and incident != str(handoff_id):
        # A tracking identifier must be exactly the one this incident carries.
        if build_eido(facts, context)["$id"] != incident:
            facts = None
    jurisdiction = jurisdiction_of(facts, context) if facts is not None else None
    key = partners.presented_key(request.headers, request.args)
    auth = partners.authenticate(
        engine,
        key,
        partners.Scope.EIDO,
        jurisdiction,
        subject=f"eido:incident/{handoff_id if handoff_id is not None else '?'}",
    )
    if auth.refusal is not None:
        return refusal_response(auth.refusal)
    if facts is None:
        return _not_found()
    response = eido_response(build_eido(facts, context))
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Serve the partner EIDO API (read-only; a key per request, no session)."""
    app.register_blueprint(bp)

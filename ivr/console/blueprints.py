"""The console's blueprints (pages and /api/console) and what every console view shares: the
staff header, the app's roster, tree, engine and queues, the signed-in staff, JSON errors.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    request,
)
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from ivr import staff_nav, store
from ivr.accounts import Staff
from ivr.auth import current_staff
from ivr.config.decision_tree import DecisionTree
from ivr.config.roster import Roster
from ivr.decisions.handoffs import (
    LiveCall,
    Outcome,
)
from ivr.flows import handoffs
from ivr.queueing import Queues
from ivr.services import services

log = logging.getLogger(__name__)


NOTE_MAX_LENGTH = 2000
"""Longest note a call-taker may keep on a call."""

REASON_MAX_LENGTH = 200
"""Longest handoff reason (it is whispered to the helper)."""

OUTCOME_LABELS = {
    Outcome.RESOLVED_BY_PHONE: "Resolved by phone",
    Outcome.RESOLVED_ON_SCENE: "Resolved on scene",
    Outcome.POLICE_BACKUP: "Police backup required",
    Outcome.MEDICAL_BACKUP: "Medical backup required",
    Outcome.TRANSPORT: "Transport",
    Outcome.INVOLUNTARY_HOLD: "Involuntary hold",
    Outcome.REFERRED: "Referred",
    Outcome.CALLBACK_SCHEDULED: "Callback scheduled",
}
"""The outcome choices on the clinician's form, in the order programs report them."""

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

api = Blueprint("console_api", __name__, url_prefix="/api/console")


def _served(path: str) -> bool:
    """Whether a GET route answers `path` in this app (a page other helpers may not have built)."""
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(path, method="GET")
    except RequestRedirect:
        return True
    except HTTPException:
        return False
    return True


@bp.app_context_processor
def _staff_header() -> dict[str, Any]:
    """What the shared staff header (templates/_staff_header.html) draws on every page."""
    staff = current_staff()
    if staff is None:
        return {"header_staff": None, "header_links": []}
    return {
        "header_staff": staff,
        "header_links": staff_nav.links_for(staff.roles, request.path, _served),
    }


def _roster() -> Roster:
    return services().roster


def _engine() -> sa.Engine:
    return store.engine()


def _queues() -> Queues:
    return services().queues


def _me() -> Staff:
    staff = current_staff()
    assert staff is not None  # require_role ran first
    return staff


def _tree() -> DecisionTree:
    return services().tree


def _now() -> datetime:
    return datetime.now(UTC)


class BadRequest(ValueError):
    """A JSON call the console would never make (answered 400 with the message)."""


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return body


def parse_answers(raw: Any) -> dict[str, bool]:
    """The decision-tree answers of a request: {question id: true/false}, known questions only."""
    if not isinstance(raw, dict):
        raise BadRequest("answers must be an object of question id to true/false")
    known = {q.id for q in _tree().questions}
    answers: dict[str, bool] = {}
    for key, value in raw.items():
        if key not in known:
            raise BadRequest(f"unknown question {key!r}")
        if not isinstance(value, bool):
            raise BadRequest(f"answer to {key!r} must be true or false")
        answers[key] = value
    return answers


def _live_call_or_404(live_call_id: int) -> LiveCall:
    call = handoffs.get_live_call(_engine(), live_call_id)
    if call is None:
        abort(404)
    return call


@api.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@api.errorhandler(404)
def _not_found(exc: Exception) -> tuple[Response, int]:
    return jsonify(error="not found"), 404

"""/live: the supervisor's wall, and any live call opened read-only.

The page polls `/api/live/wall` about once a second with the last ETag it saw; while nothing
changed the answer is an empty 304 (a few indexed reads, no rendering). A long-lived stream
would hold one of the sync gunicorn workers the phone webhooks need (bench/PERF-NOTES), so
the wall does not use one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    jsonify,
    render_template,
    request,
    url_for,
)

from ivr import store
from ivr.accounts import Role
from ivr.auth import current_staff, require_role
from ivr.config.program import ProgramConfig
from ivr.config.roster import Roster
from ivr.flows import handoffs
from ivr.live import board, call_view
from ivr.live.format import elapsed, local_clock
from ivr.reporting.labels import Labels
from ivr.services import services

log = logging.getLogger(__name__)

POLL_MILLISECONDS = 1000
"""How often the page asks whether the wall changed (a change shows within 2 s)."""

SECTIONS = ("summary", "waiting", "handoffs", "staffing", "callbacks", "answers")
"""The wall's parts, each re-rendered on its own when the wall changes."""

bp = Blueprint(
    "live",
    __name__,
    url_prefix="/live",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
api = Blueprint("live_api", __name__, url_prefix="/api/live")


def _program() -> ProgramConfig:
    return services().program


def _roster() -> Roster:
    return services().roster


def labels() -> Labels:
    """The app's label map."""
    return services().labels


def _now() -> datetime:
    return datetime.now(UTC)


def _wall(now: datetime) -> board.Wall:
    program = _program()
    inputs = board.read_inputs(store.engine(), program, now)
    return board.build_wall(inputs, _roster(), program, labels(), now)


def _render_context(now: datetime) -> dict[str, Any]:
    return {
        "now": now,
        "zone": _program().zone,
        "elapsed": elapsed,
        "clock": local_clock,
        "program": _program(),
        # one url_for per page, not one per row (200 rows: ~15 ms of URL building)
        "call_url": url_for("live.call", live_call_id=0)[:-1],
    }


def _section(name: str, wall: board.Wall, now: datetime) -> str:
    return render_template(f"live/_{name}.html", wall=wall, **_render_context(now))


def _etag_matches(version: str) -> bool:
    return version in request.if_none_match


@bp.get("")
@require_role(Role.SUPERVISOR)
def wall() -> Any:
    """The wall, rendered whole; the page's script keeps it current."""
    now = _now()
    current = _wall(now)
    sections = {name: _section(name, current, now) for name in SECTIONS}
    return render_template(
        "live/wall.html",
        staff=current_staff(),
        sections=sections,
        version=current.version(),
        now=now,
        poll_ms=POLL_MILLISECONDS,
        program=_program(),
    )


@api.get("/wall")
@require_role(Role.SUPERVISOR)
def wall_state() -> Any:
    """The wall's sections as HTML fragments, or 304 when the ETag sent is still current."""
    now = _now()
    current = _wall(now)
    version = current.version()
    if _etag_matches(version):
        response = Response(status=304)
    else:
        response = jsonify(
            version=version,
            now=now.isoformat(),
            summary=_summary_text(current),
            sections={name: _section(name, current, now) for name in SECTIONS},
        )
    response.set_etag(version)
    return response


def _summary_text(wall: board.Wall) -> str:
    """One sentence for screen readers when the wall changes."""
    ringing = sum(1 for h in wall.handoffs if h.ringing)
    return (
        f"{len(wall.waiting)} waiting, {ringing} handoffs ringing, "
        f"{len(wall.handoffs) - ringing} connected, {wall.callbacks.overdue} callbacks overdue."
    )


@bp.get("/calls/<int:live_call_id>")
@require_role(Role.SUPERVISOR)
def call(live_call_id: int) -> Any:
    """One live call, read-only: its handoffs and their history, notes."""
    now = _now()
    view = _call_view(live_call_id)
    return render_template(
        "live/call.html",
        staff=current_staff(),
        view=view,
        body=render_template("live/_call.html", view=view, **_render_context(now)),
        version=view.version(),
        now=now,
        poll_ms=POLL_MILLISECONDS,
    )


@api.get("/calls/<int:live_call_id>")
@require_role(Role.SUPERVISOR)
def call_state(live_call_id: int) -> Any:
    """The call's read-only view as an HTML fragment, or 304 when unchanged."""
    now = _now()
    view = _call_view(live_call_id)
    version = view.version()
    if _etag_matches(version):
        response = Response(status=304)
    else:
        response = jsonify(
            version=version,
            now=now.isoformat(),
            summary=f"{view.title}: {view.status}.",
            sections={
                "call": render_template("live/_call.html", view=view, **_render_context(now))
            },
        )
    response.set_etag(version)
    return response


def _call_view(live_call_id: int) -> call_view.CallView:
    engine = store.engine()
    live = handoffs.get_live_call(engine, live_call_id)
    if live is None:
        abort(404)
    history = {h.id: handoffs.handoff_events(engine, h.id) for h in live.handoffs}
    notes = call_view.read_notes(engine, live_call_id)
    questions = {
        q.id: q.prompt for q in services().tree.questions
    }
    return call_view.build(live, history, notes, questions, labels())


@api.errorhandler(404)
def _not_found(exc: Exception) -> tuple[Response, int]:
    return jsonify(error="not found"), 404

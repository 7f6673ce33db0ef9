"""The web console: call-takers' live calls and handoffs, clinicians' handoffs and outcomes.

Pages are plain server-rendered HTML with a little vanilla JavaScript (no build step) that polls
the JSON API under /api/console/ for live progress.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Response,
    abort,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from ivr.accounts import Role
from ivr.auth import require_role
from ivr.console import callbacks as callbacks  # registers /console/callbacks
from ivr.console import clinician as clinician  # registers /console/clinician
from ivr.console.blueprints import (
    NOTE_MAX_LENGTH,
    REASON_MAX_LENGTH,
    BadRequest,
    _engine,
    _json_body,
    _live_call_or_404,
    _me,
    _now,
    _queues,
    _roster,
    _tree,
    parse_answers,
)
from ivr.console.blueprints import api as api
from ivr.console.blueprints import bp as bp
from ivr.console.clinician import _my_handoff_or_404
from ivr.console.serializers import _iso, _notes, call_json, eligibility_json, handoff_json
from ivr.decisions.consults import ConsultVerdict
from ivr.decisions.handoffs import (
    ConsultConflict,
    HandoffError,
    HandoffStatus,
)
from ivr.flows import handoffs
from ivr.store.account_tables import call_notes

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------- call-taker


@bp.get("")
@require_role(Role.CALL_TAKER, Role.SUPERVISOR)
def call_taker() -> Any:
    """The call-taker's console: live calls, the decision tree, helpers, handoff progress.
    A supervisor who is not a call-taker watches the same calls read-only on the live wall."""
    if Role.CALL_TAKER.value not in _me().roles:
        return redirect(url_for("live.wall"))
    tree = _tree()
    return render_template(
        "console/call_taker.html",
        staff=_me(),
        questions=tree.questions,
        reasons=tree.handoff_reasons,
    )


@api.get("/calls")
@require_role(Role.CALL_TAKER, Role.SUPERVISOR)
def calls() -> Response:
    """Calls held in a Bridgeline conference now, oldest first."""
    return jsonify(
        calls=[call_json(c) for c in handoffs.list_live_calls(_engine())], now=_iso(_now())
    )


@api.get("/calls/<int:live_call_id>")
@require_role(Role.CALL_TAKER, Role.SUPERVISOR)
def call_detail(live_call_id: int) -> Response:
    """One call: callback number, each handoff with its history, notes, whether to leave."""
    call = _live_call_or_404(live_call_id)
    engine = _engine()
    histories = {h.id: handoffs.handoff_events(engine, h.id) for h in call.handoffs}
    items = [handoff_json(h, histories[h.id]) for h in reversed(call.handoffs)]
    detail = call_json(call, histories)
    # The answers already given (on the desk's keypad, or in an earlier handoff) fill the form.
    detail["answers"] = call.handoffs[0].answers if call.handoffs else {}
    detail["callback_number"] = call.callback_number
    detail["can_leave"] = detail["ended"] is False and any(
        h.status is HandoffStatus.CONNECTED for h in call.handoffs
    )
    return jsonify(call=detail, handoffs=items, notes=_notes(live_call_id), now=_iso(_now()))


@api.post("/eligibility")
@require_role(Role.CALL_TAKER)
def eligibility() -> Response:
    """Decision-tree answers in, eligible helper types and who is on duty out."""
    answers = parse_answers(_json_body().get("answers", {}))
    return jsonify(eligibility_json(answers, _now()))


@api.post("/calls/<int:live_call_id>/handoffs")
@require_role(Role.CALL_TAKER)
def start_handoff(live_call_id: int) -> tuple[Response, int]:
    """Conference a helper type into the call (recorded first; a worker dials)."""
    call = _live_call_or_404(live_call_id)
    body = _json_body()
    helper_type = body.get("helper_type")
    if not isinstance(helper_type, str) or not helper_type:
        raise BadRequest("helper_type is required")
    reason = body.get("reason") or None
    if reason is not None and (not isinstance(reason, str) or len(reason) > REASON_MAX_LENGTH):
        raise BadRequest(f"reason must be text of at most {REASON_MAX_LENGTH} characters")
    answers = parse_answers(body.get("answers", {}))
    confirm_second = body.get("confirm_second_helper", False)
    if not isinstance(confirm_second, bool):
        raise BadRequest("confirm_second_helper must be true or false")
    request_id = request.headers.get("Idempotency-Key") or body.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not 8 <= len(request_id) <= 64
    ):
        raise BadRequest("request_id must be text of 8 to 64 characters")
    try:
        handoff = handoffs.start_handoff(
            _engine(),
            _queues(),
            call_sid=call.call_sid,
            call_taker_staff_id=_me().staff_id,
            helper_type=helper_type,
            answers=answers,
            reason=reason,
            roster=_roster(),
            tree=_tree(),
            key=f"console:{live_call_id}:{request_id}" if request_id else None,
            confirm_second=confirm_second,
        )
    except ConsultConflict as exc:
        existing = handoff_json(exc.existing, handoffs.handoff_events(_engine(), exc.existing.id))
        if exc.verdict is ConsultVerdict.ALREADY_UNDER_WAY:
            # A double click, a second tab, a retried request: the one under way, nobody dialed.
            return jsonify(handoff=existing, already_under_way=True), 200
        return jsonify(error=str(exc), conflict=exc.verdict.value, handoff=existing), 409
    except HandoffError as exc:
        return jsonify(error=str(exc)), 409
    events = handoffs.handoff_events(_engine(), handoff.id)
    return jsonify(handoff=handoff_json(handoff, events)), 201


@api.post("/calls/<int:live_call_id>/handoffs/<int:handoff_id>/cancel")
@require_role(Role.CALL_TAKER)
def cancel_handoff(live_call_id: int, handoff_id: int) -> tuple[Response, int]:
    """Cancel a helper still being called: recorded at once, a worker ends their leg."""
    call = _live_call_or_404(live_call_id)
    if not any(h.id == handoff_id for h in call.handoffs):
        abort(404)
    try:
        handoff = handoffs.cancel_handoff(_engine(), _queues(), handoff_id, _me().staff_id)
    except HandoffError as exc:
        return jsonify(error=f"Cannot cancel: {exc}."), 409
    events = handoffs.handoff_events(_engine(), handoff_id)
    return jsonify(handoff=handoff_json(handoff, events)), 200


@api.post("/calls/<int:live_call_id>/leave")
@require_role(Role.CALL_TAKER)
def leave(live_call_id: int) -> tuple[Response, int]:
    """The call-taker leaves: only once a helper is connected (the caller stays with them)."""
    _live_call_or_404(live_call_id)
    if not handoffs.leave_call(_engine(), _queues(), live_call_id, _me().staff_id):
        return jsonify(error="no helper is connected yet: stay on the call"), 409
    return jsonify(leaving=True), 202


@api.post("/calls/<int:live_call_id>/notes")
@require_role(Role.CALL_TAKER)
def add_note(live_call_id: int) -> tuple[Response, int]:
    """Keep a note on the call."""
    _live_call_or_404(live_call_id)
    text = _json_body().get("body")
    if not isinstance(text, str) or not text.strip() or len(text) > NOTE_MAX_LENGTH:
        raise BadRequest(f"a note is 1 to {NOTE_MAX_LENGTH} characters")
    with _engine().begin() as conn:
        conn.execute(
            call_notes.insert().values(
                live_call_id=live_call_id, staff_id=_me().staff_id, body=text.strip(), at=_now()
            )
        )
    return jsonify(notes=_notes(live_call_id)), 201


@api.get("/handoffs/<int:handoff_id>/eido")
@require_role(Role.CALL_TAKER, Role.CLINICIAN, Role.SUPERVISOR)
def eido(handoff_id: int) -> Response:
    """A handoff as a NENA EIDO (NENA-STA-021.1b; clinicians: only their own handoffs)."""
    from ivr.partners.eido_http import current_context, eido_response
    from ivr.reporting.eido import export_eido

    staff = _me()
    if staff.roles.isdisjoint({Role.CALL_TAKER.value, Role.SUPERVISOR.value}):
        _my_handoff_or_404(handoff_id)
    document = export_eido(_engine(), handoff_id, current_context())
    if document is None:
        abort(404)
    response = eido_response(document)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="handoff-{handoff_id}-eido.json"'
    )
    return response

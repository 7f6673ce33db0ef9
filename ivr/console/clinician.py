"""The clinician's pages: the handoffs that reached them, each with its context, and the
outcome form (a dated follow-up also records a callback).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from ivr.accounts import Role
from ivr.auth import require_role
from ivr.console.blueprints import (
    NOTE_MAX_LENGTH,
    OUTCOME_LABELS,
    BadRequest,
    _engine,
    _me,
    _now,
    _roster,
    _tree,
    api,
    bp,
)
from ivr.console.serializers import _list_item, _local, _notes, _staff_name, handoff_json
from ivr.decisions.handoffs import (
    Handoff,
    HandoffError,
    Outcome,
    OutcomeAlreadyRecorded,
)
from ivr.flows import handoffs

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------- clinician


def _my_handoffs() -> list[Handoff]:
    return handoffs.handoffs_for_helper(_engine(), _me().staff_id, _roster())


def _my_handoff_or_404(handoff_id: int) -> Handoff:
    """A handoff sent to the signed-in clinician; anyone else's is "not found"."""
    for handoff in _my_handoffs():
        if handoff.id == handoff_id:
            return handoff
    abort(404)


@bp.get("/clinician")
@require_role(Role.CLINICIAN)
def clinician() -> str:
    """The clinician's list of handoffs sent to them, newest first."""
    items = [_list_item(h) for h in _my_handoffs()]
    return render_template(
        "console/clinician.html", staff=_me(), handoffs=items, outcome_labels=OUTCOME_LABELS
    )


@api.get("/clinician/handoffs")
@require_role(Role.CLINICIAN)
def clinician_handoffs() -> Response:
    """Handoffs sent to the signed-in clinician (the page polls this for new ones)."""
    return jsonify(handoffs=[_list_item(h) for h in _my_handoffs()])


def clinician_view(handoff: Handoff) -> dict[str, Any]:
    """Everything the clinician's handoff page shows: context, answers in the tree's order,
    the call-taker's name and notes, the history in words, local times."""
    events = handoffs.handoff_events(_engine(), handoff.id)
    data = handoff_json(handoff, events)
    data["answers_in_order"] = [
        (q.prompt, handoff.answers[q.id]) for q in _tree().questions if q.id in handoff.answers
    ]
    data["call_taker"] = _staff_name(handoff.call_taker_staff_id) or (
        "the transfer desk" if handoff.origin.value == "desk" else "not recorded"
    )
    data["created_local"] = _local(handoff.created_at)
    data["follow_up_local"] = _local(handoff.follow_up_at)
    data["outcome_words"] = OUTCOME_LABELS.get(Outcome(handoff.outcome)) if handoff.outcome else ""
    data["outcome_note"] = handoff.outcome_note
    data["outcome_by"] = _staff_name(handoff.outcome_by) or handoff.outcome_by
    for line in data["story"]:
        line["local"] = _local(line["at"])
    notes = _notes(handoff.live_call_id)
    for note in notes:
        note["local"] = _local(note["at"])
    data["notes"] = notes
    return data


def _handoff_page(
    handoff: Handoff,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    view = clinician_view(handoff)
    saved = {
        "outcome": handoff.outcome or "",
        "follow_up": handoff.follow_up_at.astimezone(_roster().timezone).date().isoformat()
        if handoff.follow_up_at
        else "",
        "note": handoff.outcome_note or "",
    }
    page = render_template(
        "console/handoff.html",
        staff=_me(),
        handoff=view,
        outcomes=OUTCOME_LABELS,
        form=form if form is not None else saved,
        editing=bool(handoff.outcome),
        error=error,
        messages=get_flashed_messages(with_categories=True),
        today=_now().astimezone(_roster().timezone).date().isoformat(),
    )
    return page, status


@bp.get("/clinician/handoffs/<int:handoff_id>")
@require_role(Role.CLINICIAN)
def clinician_handoff(handoff_id: int) -> tuple[str, int]:
    """One handoff: context, callback number, history, and the outcome form."""
    return _handoff_page(_my_handoff_or_404(handoff_id))


@api.get("/clinician/handoffs/<int:handoff_id>")
@require_role(Role.CLINICIAN)
def clinician_handoff_state(handoff_id: int) -> Response:
    """The handoff page's live part: status, history in words, the call-taker's notes."""
    view = clinician_view(_my_handoff_or_404(handoff_id))
    keep = ("id", "status", "status_words", "reason_words", "story", "notes", "outcome_words")
    return jsonify({k: view[k] for k in keep})


def parse_follow_up(raw: str, outcome: Outcome) -> datetime | None:
    """The follow-up date of the form (a day, at 10:00 in the roster's time zone), or None."""
    raw = raw.strip()
    if not raw:
        if outcome is Outcome.CALLBACK_SCHEDULED:
            raise BadRequest("a scheduled callback needs a follow-up date")
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest("follow-up date must look like 2026-11-30") from None
    zone = _roster().timezone
    if day < _now().astimezone(zone).date():
        raise BadRequest("the follow-up date is in the past")
    return datetime.combine(day, time(10, 0), tzinfo=zone)


@bp.post("/clinician/handoffs/<int:handoff_id>/outcome")
@require_role(Role.CLINICIAN)
def record_outcome(handoff_id: int) -> Any:
    """Save the outcome form to the handoff log (and a follow-up callback when dated).

    A mistake re-shows the form with what was typed and says what to fix (nothing is lost);
    once an outcome is saved, saving again is an explicit, audited edit."""
    handoff = _my_handoff_or_404(handoff_id)
    form = {
        "outcome": request.form.get("outcome", ""),
        "follow_up": request.form.get("follow_up", "").strip(),
        "note": request.form.get("note", ""),
    }
    edit = request.form.get("edit") == "1"
    try:
        outcome = Outcome(form["outcome"])
    except ValueError:
        return _handoff_page(handoff, form, "Choose how the call ended.", 400)
    note = form["note"].strip()
    if len(note) > NOTE_MAX_LENGTH:
        return _handoff_page(
            handoff, form, f"The note is longer than {NOTE_MAX_LENGTH} characters.", 400
        )
    try:
        follow_up = parse_follow_up(form["follow_up"], outcome)
        handoffs.record_outcome(
            _engine(), handoff_id, outcome, note or None, follow_up, _me().staff_id, edit=edit
        )
    except OutcomeAlreadyRecorded:
        fresh = _my_handoff_or_404(handoff_id)
        message = (
            "An outcome was already saved for this handoff (shown above). "
            "To change it, check your choices below and press Save the change."
        )
        return _handoff_page(fresh, form, message, 409)
    except (BadRequest, HandoffError) as exc:
        return _handoff_page(handoff, form, str(exc).capitalize() + ".", 400)
    log.info("outcome recorded from the console: handoff_id=%s edit=%s", handoff_id, edit)
    flash("Outcome changed." if edit else "Outcome saved.", "ok")
    return redirect(url_for("console.clinician_handoff", handoff_id=handoff_id)), 303

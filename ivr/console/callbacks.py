"""The callbacks page: callbacks owed, claim one, call now (through a worker), done by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Response,
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
from ivr.console.blueprints import NOTE_MAX_LENGTH, _engine, _me, _now, _queues, api, bp
from ivr.console.serializers import callback_rows
from workers import jobs

log = logging.getLogger(__name__)


@bp.get("/callbacks")
@require_role(Role.CALL_TAKER, Role.CLINICIAN, Role.SUPERVISOR)
def open_callbacks() -> str:
    """Every promise to call someone back that is not kept yet: age, deadline, attempts, outcome."""
    rows = callback_rows()
    return render_template(
        "console/callbacks.html",
        callbacks=rows,
        overdue=sum(r["overdue"] for r in rows),
        messages=get_flashed_messages(with_categories=True),
    )


@api.get("/callbacks")
@require_role(Role.CALL_TAKER, Role.CLINICIAN, Role.SUPERVISOR)
def open_callbacks_state() -> Response:
    """The callbacks page's rows (the page refreshes itself from this)."""
    return jsonify(callbacks=callback_rows())


@bp.post("/callbacks/<int:callback_id>/claim")
@require_role(Role.CALL_TAKER, Role.CLINICIAN, Role.SUPERVISOR)
def claim_callback(callback_id: int) -> Any:
    """Take a callback on (or give it back): everyone sees who has it."""
    from ivr.store import callbacks as callback_store

    release = request.form.get("release") == "1"
    if not callback_store.claim(_engine(), callback_id, _me().staff_id, release, _now()):
        flash(f"Callback #{callback_id} is already closed.", "error")
    else:
        flash(
            f"You gave back callback #{callback_id}."
            if release
            else f"Callback #{callback_id} is yours.",
            "ok",
        )
    return redirect(url_for("console.open_callbacks")), 303


@bp.post("/callbacks/<int:callback_id>/call-now")
@require_role(Role.CALL_TAKER, Role.CLINICIAN, Role.SUPERVISOR)
def call_callback_now(callback_id: int) -> Any:
    """Queue the callback's attempt at once; the worker places it (quiet hours, consent and
    opt-out still apply there)."""
    from ivr.store import callbacks as callback_store

    attempt = callback_store.call_now(_engine(), callback_id, _me().staff_id, _now())
    if attempt is None:
        flash(f"Callback #{callback_id} is closed or already being dialed.", "error")
        return redirect(url_for("console.open_callbacks")), 303
    _queues().enqueue(
        "urgent",
        jobs.PLACE_CALLBACK_ATTEMPT,
        attempt.id,
        job_id=f"callback-attempt-{attempt.id}-now-{int(attempt.scheduled_for.timestamp())}",
        retry_intervals=jobs.CALL_NOW_RETRY,
    )
    log.info("callback call-now: callback_id=%s attempt=%s", callback_id, attempt.id)
    flash(f"Calling back #{callback_id} now: the line rings within seconds.", "ok")
    return redirect(url_for("console.open_callbacks")), 303


@bp.post("/callbacks/<int:callback_id>/done")
@require_role(Role.CALL_TAKER, Role.CLINICIAN, Role.SUPERVISOR)
def close_callback(callback_id: int) -> Any:
    """Mark a callback done by hand (the person was reached another way), with a note."""
    from ivr.store import callbacks as callback_store

    note = (request.form.get("note") or "").strip()[:NOTE_MAX_LENGTH]
    if not note:
        flash("Write a note saying how the person was reached.", "error")
        return redirect(url_for("console.open_callbacks")), 303
    if not callback_store.mark_done_by_hand(_engine(), callback_id, note, _me().staff_id, _now()):
        flash("That callback is already closed.", "error")
    else:
        flash(f"Callback #{callback_id} marked done.", "ok")
    return redirect(url_for("console.open_callbacks")), 303

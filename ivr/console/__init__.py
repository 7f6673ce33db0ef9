"""The web console: call-takers' live calls and handoffs, clinicians' handoffs and outcomes.

Pages are plain server-rendered HTML with a little vanilla JavaScript (no build step) that polls
the JSON API under /api/console/ for live progress.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from ivr import staff_nav, store
from ivr.accounts import Role, Staff, get_staff
from ivr.auth import current_staff, require_role
from ivr.config.decision_tree import DecisionTree
from ivr.config.roster import Roster
from ivr.console import story, times
from ivr.decisions import routing
from ivr.decisions.consults import ConsultVerdict
from ivr.decisions.handoffs import (
    ConsultConflict,
    EventRecord,
    EventSource,
    Handoff,
    HandoffError,
    HandoffEvent,
    HandoffStatus,
    LiveCall,
    Outcome,
    OutcomeAlreadyRecorded,
)
from ivr.flows import handoffs
from ivr.queueing import Queues
from ivr.reporting.labels import (
    CALLBACK_SOURCE_WORDS,
    CALLBACK_STATUS_WORDS,
    HANDOFF_STATUS_WORDS,
)
from ivr.services import services
from ivr.store.account_tables import call_notes

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


def _member_json(member: routing.Member) -> dict[str, Any]:
    """A roster member for the page: never the phone number or SIP address."""
    return {"member_id": member.member_id, "name": member.name, "helper_type": member.helper_type}


def eligibility_json(answers: dict[str, bool], at: datetime) -> dict[str, Any]:
    """What the tree says for `answers`, the next question, and each eligible helper type on duty."""
    tree, roster = _tree(), _roster()
    result = routing.eligibility(tree, answers)
    offers = routing.offers(roster, result.allowed, at) if result.is_diversion else []
    return {
        "decided": result.decided,
        "next_question": routing.next_question(tree, answers),
        "allowed": list(result.allowed),
        "reason": result.reason.value if result.reason else None,
        "reason_words": story.REASON_PHRASES.get(result.reason.value, "") if result.reason else "",
        "offers": [
            {
                "helper_type": offer.helper_type,
                "label": offer.label,
                "available": offer.available,
                "on_duty": [_member_json(m) for m in offer.on_duty],
                "next_change": offer.next_change.isoformat() if offer.next_change else None,
            }
            for offer in offers
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _member_name(member_id: str | None) -> str | None:
    if not member_id:
        return None
    member = _roster().member(member_id)
    return member.name if member else member_id


def _staff_name(staff_id: str | None) -> str | None:
    """A staff member's name by staff ID (cached for the request); None if unknown."""
    if not staff_id:
        return None
    cache: dict[str, str | None] = g.setdefault("staff_names", {})
    if staff_id not in cache:
        found = get_staff(_engine(), staff_id)
        cache[staff_id] = found.name if found else None
    return cache[staff_id]


def _member_or_none(member_id: str | None) -> str | None:
    member = _roster().member(member_id) if member_id else None
    return member.name if member else None


def call_label(call: LiveCall) -> str:
    """How a call is named on the page (no phone number)."""
    return f"#{call.id} ({'transfer desk' if call.origin.value == 'desk' else 'intake'})"


def _timer(handoff: Handoff, events: list[EventRecord]) -> dict[str, Any] | None:
    """The running timer a handoff shows: ringing since, joining since, connected since."""
    if handoff.status is HandoffStatus.CONNECTED:
        return {"label": "connected", "since": _iso(handoff.connected_at)}
    if handoff.status is HandoffStatus.ACCEPTED:
        return {"label": "joining", "since": _iso(handoff.accepted_at)}
    if handoff.status in handoffs.PENDING:
        since = story.ringing_since(events, handoff.attempt) or handoff.created_at
        return {"label": "ringing", "since": _iso(since)}
    return None


def _story_json(handoff: Handoff, events: list[EventRecord]) -> list[dict[str, Any]]:
    lines = story.handoff_story(
        events,
        helper_label=_roster().label(handoff.helper_type),
        member_name=_member_or_none,
        staff_name=_staff_name,
    )
    return [{"at": _iso(line.at), "text": line.text, "kind": line.kind} for line in lines]


def handoff_json(handoff: Handoff, events: list[EventRecord] | None = None) -> dict[str, Any]:
    """A handoff for the console pages; `events` adds its history, oldest first."""
    data: dict[str, Any] = {
        "id": handoff.id,
        "live_call_id": handoff.live_call_id,
        "helper_type": handoff.helper_type,
        "helper_label": _roster().label(handoff.helper_type),
        "status": handoff.status.value,
        "reason_code": handoff.reason_code,
        "reason": handoff.reason,
        "member_id": handoff.member_id,
        "member": _member_name(handoff.member_id),
        "attempt": handoff.attempt,
        "answers": handoff.answers,
        "call_taker_staff_id": handoff.call_taker_staff_id,
        "callback_number": handoff.callback_number,
        "outcome": handoff.outcome,
        "follow_up_at": _iso(handoff.follow_up_at),
        "created_at": _iso(handoff.created_at),
        "accepted_at": _iso(handoff.accepted_at),
        "connected_at": _iso(handoff.connected_at),
        "ended_at": _iso(handoff.ended_at),
    }
    data["status_words"] = HANDOFF_STATUS_WORDS.get(handoff.status.value, handoff.status.value)
    data["reason_words"] = story.REASON_PHRASES.get(handoff.reason_code or "", "") or (
        (handoff.reason_code or "").replace("_", " ")
    )
    data["cancellable"] = handoff.status in handoffs.CANCELLABLE
    data["call_taker"] = _staff_name(handoff.call_taker_staff_id)
    if events is not None:
        data["story"] = _story_json(handoff, events)
        data["timer"] = _timer(handoff, events)
        # Twilio's callbacks name the attempt, not the helper: say who each attempt dialed.
        dialed: dict[int | None, str | None] = {
            e.attempt: e.member_id
            for e in events
            if e.event is HandoffEvent.DIALING and e.attempt is not None and e.member_id
        }
        data["events"] = [
            {
                "event": e.event.value,
                "occurred_at": _iso(e.occurred_at),
                "attempt": e.attempt,
                "member": e.member_id
                if e.source is EventSource.STAFF
                else _member_name(e.member_id or dialed.get(e.attempt)),
                "reason": e.reason,
            }
            for e in events
        ]
    return data


def _call_taker_of(call: LiveCall) -> str | None:
    """Who has the call: the live call's call-taker, else the one who started its handoffs."""
    staff_id = call.call_taker_staff_id or next(
        (h.call_taker_staff_id for h in call.handoffs if h.call_taker_staff_id), None
    )
    return _staff_name(staff_id) or (f"staff {staff_id}" if staff_id else None)


def call_json(
    call: LiveCall, events_of: dict[int, list[EventRecord]] | None = None
) -> dict[str, Any]:
    """A live call for the console list: its state derived from its handoffs, and since when."""
    events_of = events_of if events_of is not None else _events_of_active(call)
    taker = _call_taker_of(call)
    left = any(
        e.event is HandoffEvent.CALL_TAKER_LEFT for events in events_of.values() for e in events
    )
    since = {
        h.id: t
        for h in call.handoffs
        if (t := story.ringing_since(events_of.get(h.id, []), h.attempt)) is not None
    }
    state = story.call_state(
        call,
        call.handoffs,
        call_taker=taker,
        member_name=_member_or_none,
        ringing_since=since,
        call_taker_left=left,
    )
    return {
        "id": call.id,
        "label": call_label(call),
        "origin": call.origin.value,
        "status": call.status.value,
        "state": state.code,
        "state_words": state.words,
        "state_since": _iso(state.since),
        "ended": call.status.value == "ended",
        "call_taker_staff_id": call.call_taker_staff_id,
        "call_taker": taker,
        "created_at": _iso(call.created_at),
        "handoffs": [{"id": h.id, "status": h.status.value} for h in call.handoffs],
    }


def _events_of_active(call: LiveCall) -> dict[int, list[EventRecord]]:
    """The histories of a call's handoffs that are under way or connected (for its state)."""
    return {
        h.id: handoffs.handoff_events(_engine(), h.id)
        for h in call.handoffs
        if h.status in handoffs.PENDING or h.status is HandoffStatus.CONNECTED
    }


def _notes(live_call_id: int) -> list[dict[str, Any]]:
    with _engine().connect() as conn:
        rows = conn.execute(
            sa.select(call_notes)
            .where(call_notes.c.live_call_id == live_call_id)
            .order_by(call_notes.c.at, call_notes.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "staff_id": r.staff_id,
            "author": _staff_name(r.staff_id) or f"staff {r.staff_id}",
            "body": r.body,
            "at": _iso(r.at),
        }
        for r in rows
    ]


def _live_call_or_404(live_call_id: int) -> LiveCall:
    call = handoffs.get_live_call(_engine(), live_call_id)
    if call is None:
        abort(404)
    return call


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


def _list_item(handoff: Handoff) -> dict[str, Any]:
    """A row of the clinician's list: local time and words, not codes."""
    data = handoff_json(handoff)
    data["created_local"] = _local(handoff.created_at)
    data["outcome_words"] = OUTCOME_LABELS.get(Outcome(handoff.outcome)) if handoff.outcome else ""
    return data


def _local(value: datetime | str | None) -> str:
    """A time on a staff page, in the program's time zone ('today 15:27')."""
    return times.local_time(value, _roster().timezone, _now())


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


def callback_rows() -> list[dict[str, Any]]:
    """The open callbacks as the page shows them: words, local times, a masked number."""
    from ivr.store import callbacks as callback_store

    now = _now()
    rows = callback_store.open_callbacks_with_age(_engine(), now)
    details = callback_store.list_details(_engine(), [r.id for r in rows])
    out = []
    for r in rows:
        detail = details.get(r.id)
        helper = _roster().label(r.helper_type) if r.helper_type else "anyone on duty"
        claimed = detail.claimed_by if detail else None
        out.append(
            {
                "id": r.id,
                "overdue": r.overdue,
                "escalated": r.escalated,
                "source": CALLBACK_SOURCE_WORDS.get(
                    r.source.value, r.source.value.replace("_", " ")
                ),
                "reason": (
                    detail.system_note if detail and detail.system_note else f"for {helper}"
                ),
                "number": f"ends in {detail.last_four}"
                if detail and detail.last_four
                else "no number",
                "status": CALLBACK_STATUS_WORDS.get(r.status.value, r.status.value),
                "age": times.duration(r.age.total_seconds()),
                "created_local": _local(r.created_at),
                "deadline_local": _local(r.deadline_at) or "none",
                "next_local": _local(r.next_attempt_at) or "not scheduled",
                "attempts": r.attempts_made,
                "last_outcome": (r.last_outcome or "").replace("_", " ")
                or ("in progress" if r.attempts_made else "not tried yet"),
                "claimed_by": _staff_name(claimed) or claimed,
                "claimed_by_me": claimed == _me().staff_id,
                "can_call": r.status.value == "pending",
            }
        )
    return out


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
        "workers.callbacks.place_callback_attempt",
        attempt.id,
        job_id=f"callback-attempt-{attempt.id}-now-{int(attempt.scheduled_for.timestamp())}",
        retry_intervals=(5, 30, 120),
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


@api.get("/handoffs/<int:handoff_id>/eido")
@require_role(Role.CALL_TAKER, Role.CLINICIAN, Role.SUPERVISOR)
def eido(handoff_id: int) -> Response:
    """A handoff as a NENA EIDO (NENA-STA-021.1b; clinicians: only their own handoffs)."""
    from ivr.reporting.eido import export_eido
    from ivr.reporting.eido_http import current_context, eido_response

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


@api.errorhandler(BadRequest)
def _bad_request(exc: BadRequest) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@api.errorhandler(404)
def _not_found(exc: Exception) -> tuple[Response, int]:
    return jsonify(error="not found"), 404

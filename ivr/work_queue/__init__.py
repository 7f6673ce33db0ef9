"""The 311 work queue: staff list, hear, read, assign and move residents' reports.

/reports lists reports by category, status, age and jurisdiction; /reports/<reference> shows
one (its recording played through /reports/<reference>/recording, an authenticated proxy of
Twilio's media, so the page never holds Twilio's URL), its transcript, address, tags and
history, and a form to assign it and change its status with a public and an internal note.
Every change is an audit entry (ivr.store.service_requests.change); a resident who asked for
texts is owed one per status change (ivr.report_texts, sent by the workers).

311 agents and supervisors work the queue; call-takers may too (staff "sit in either seat").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    url_for,
)

from ivr import accounts, store
from ivr.accounts import Role
from ivr.auth import current_staff, require_role
from ivr.config.models import ReportCategory
from ivr.config.program import ProgramConfig
from ivr.queueing import Queues
from ivr.settings import Settings
from ivr.store import audit, service_requests
from ivr.store.service_requests import (
    ASSIGN_DEPARTMENT,
    ASSIGN_STAFF,
    ChangeError,
    Notify,
    RequestStatus,
    ServiceRequest,
)
from ivr.work_queue import recordings
from ivr.work_queue.filters import (
    AGE_CHOICES,
    STATUS_CHOICES,
    STATUS_LABELS,
    age_in_words,
    assignment_label,
    parse_filters,
)
from workers import jobs

log = logging.getLogger(__name__)

EXTENSION_KEY = "bridgeline_work_queue"
"""app.extensions key of the WorkQueue."""

NOTE_MAX_LENGTH = 2000
"""Longest public or internal note."""

ROLES = (Role.AGENT_311, Role.SUPERVISOR, Role.CALL_TAKER)
"""Who may work the queue."""

bp = Blueprint(
    "work_queue",
    __name__,
    url_prefix="/reports",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


@dataclass(frozen=True)
class WorkQueue:
    """What the pages read: categories, jurisdictions and zone, Twilio's account, the queues."""

    settings: Settings
    categories: tuple[ReportCategory, ...]
    program: ProgramConfig
    queues: Queues

    @property
    def zone(self) -> ZoneInfo:
        return self.program.zone

    def category(self, code: str) -> ReportCategory | None:
        return next((c for c in self.categories if c.code == code), None)

    @property
    def departments(self) -> list[str]:
        return sorted({c.department for c in self.categories if c.department})


def _queue() -> WorkQueue:
    return current_app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


def _now() -> datetime:
    return datetime.now(UTC)


def _people(engine: sa.Engine) -> dict[str, str]:
    """Staff a report can be assigned to (311 agents and supervisors): staff ID -> name."""
    people: dict[str, str] = {}
    for role in (Role.AGENT_311, Role.SUPERVISOR):
        for staff in accounts.staff_with_role(engine, role):
            people[staff.staff_id] = staff.name
    return people


def _local(at: datetime | None) -> str:
    """A time in the program's zone, as staff read it: 'Mon 30 Nov, 3:05 p.m.'."""
    if at is None:
        return "never"
    local = at.astimezone(_queue().zone)
    hour = local.hour % 12 or 12
    clock = f"{hour}:{local.minute:02d} {'a.m.' if local.hour < 12 else 'p.m.'}"
    return f"{local.strftime('%a %d %b %Y')}, {clock}"


def _row(r: ServiceRequest, now: datetime, people: dict[str, str]) -> dict[str, Any]:
    category = _queue().category(r.category)
    jurisdiction = _queue().program.jurisdiction(r.jurisdiction or "")
    return {
        "reference": r.reference,
        "category": category.service_name if category else r.category,
        "status": STATUS_LABELS[r.status],
        "status_value": r.status.value,
        "address": r.address,
        "age": age_in_words(r.created_at, now),
        "filed": _local(r.created_at),
        "filed_iso": r.created_at.isoformat(),
        "jurisdiction": jurisdiction.name if jurisdiction else (r.jurisdiction or "none"),
        "assigned": assignment_label(r.assigned_to, people),
        "source": "Phone" if r.source.value == "phone" else "Partner system",
        "urgent": r.urgent,
    }


@bp.get("")
@require_role(*ROLES)
def index() -> str:
    """The list, newest first, with its filters."""
    q = _queue()
    engine = store.engine()
    jurisdictions = [j.id for j in q.program.jurisdictions]
    filters = parse_filters(request.args, [c.code for c in q.categories], jurisdictions)
    now = _now()
    found = service_requests.search(engine, filters.query(now))
    people = _people(engine)
    return render_template(
        "work_queue/index.html",
        staff=current_staff(),
        reports=[_row(r, now, people) for r in found],
        filters=filters,
        categories=q.categories,
        jurisdictions=q.program.jurisdictions,
        status_choices=STATUS_CHOICES,
        age_choices=AGE_CHOICES,
        zone=q.program.timezone,
    )


def _find(reference: str) -> ServiceRequest:
    if not reference.isdigit() or len(reference) > 16:
        abort(404)
    found = service_requests.find_by_reference(store.engine(), reference)
    if found is None:
        abort(404)
    return found


@bp.get("/<reference>")
@require_role(*ROLES)
def detail(reference: str) -> str:
    """One report: recording, transcript, address, tags, history, and the change form."""
    report = _find(reference)
    q = _queue()
    engine = store.engine()
    people = _people(engine)
    category = q.category(report.category)
    history = [
        {
            "at": _local(c.at),
            "actor": c.actor,
            "from": STATUS_LABELS[c.previous_status],
            "to": STATUS_LABELS[c.status],
            "public_note": c.public_note,
            "internal_note": c.internal_note,
            "assigned": assignment_label(c.assigned_to, people) if c.assigned_to else None,
            "text": {
                "none": None,
                "pending": "Text to the resident waiting to be recorded",
                "queued": "Text to the resident sent or waiting for 8 a.m.",
                "skipped": "No text (no number)",
            }[c.notify.value],
        }
        for c in service_requests.history(engine, report.id)
    ]
    return render_template(
        "work_queue/detail.html",
        staff=current_staff(),
        report=report,
        row=_row(report, _now(), people),
        category=category,
        history=history,
        statuses=list(STATUS_LABELS.items()),
        people=sorted(people.items(), key=lambda p: p[1]),
        departments=q.departments,
        assign_staff=ASSIGN_STAFF,
        assign_department=ASSIGN_DEPARTMENT,
        messages=get_flashed_messages(with_categories=True),
        note_max=NOTE_MAX_LENGTH,
        has_recording=recordings.is_recording_sid(report.recording_sid),
    )


@bp.post("/<reference>/change")
@require_role(*ROLES)
def change(reference: str) -> Response:
    """Assign the report and/or change its status, with a public and an internal note."""
    report = _find(reference)
    staff = current_staff()
    assert staff is not None
    form = request.form
    try:
        status = RequestStatus(form.get("status", ""))
    except ValueError:
        flash("Choose a status.", "error")
        return redirect(url_for("work_queue.detail", reference=reference), 303)  # type: ignore[return-value]
    public_note = " ".join((form.get("public_note") or "").split())[:NOTE_MAX_LENGTH] or None
    internal_note = (form.get("internal_note") or "").strip()[:NOTE_MAX_LENGTH] or None
    assigned = (form.get("assigned_to") or "").strip()[:120] or None
    q = _queue()
    engine = store.engine()
    if assigned is not None and not (
        (assigned.startswith(ASSIGN_STAFF) and assigned[len(ASSIGN_STAFF) :] in _people(engine))
        or (
            assigned.startswith(ASSIGN_DEPARTMENT)
            and assigned[len(ASSIGN_DEPARTMENT) :] in q.departments
        )
    ):
        flash("Choose a person or a department from the list.", "error")
        return redirect(url_for("work_queue.detail", reference=reference), 303)  # type: ignore[return-value]
    try:
        made = service_requests.change(
            engine,
            report.id,
            actor=f"staff:{staff.staff_id}",
            status=status,
            public_note=public_note,
            internal_note=internal_note,
            assigned_to=assigned,
        )
    except ChangeError as exc:
        flash(f"Nothing was saved: {exc}.", "error")
        return redirect(url_for("work_queue.detail", reference=reference), 303)  # type: ignore[return-value]
    if made.notify is Notify.PENDING:
        # Recorded with the change; if Redis is down now, the sweep records and sends it.
        q.queues.enqueue("default", jobs.RECORD_STATUS_TEXT, made.id)
    log.info("report changed: id=%s status=%s", report.id, status.value)
    flash(f"Saved: the report is now {STATUS_LABELS[status].lower()}.", "ok")
    return redirect(url_for("work_queue.detail", reference=reference), 303)  # type: ignore[return-value]


@bp.get("/<reference>/recording")
@require_role(*ROLES)
def recording(reference: str) -> Response:
    """The resident's recording, fetched from Twilio with the account's credentials."""
    report = _find(reference)
    if not recordings.is_recording_sid(report.recording_sid):
        abort(404)
    assert report.recording_sid is not None
    staff = current_staff()
    assert staff is not None
    settings = _queue().settings
    try:
        media = recordings.fetch(settings, report.recording_sid)
    except requests.RequestException as exc:
        log.warning("recording not fetched: error=%s", type(exc).__name__)
        return Response("Twilio did not answer; try again.", status=502, mimetype="text/plain")
    if media.status_code != 200:
        media.close()
        log.warning("recording not fetched: twilio status=%s", media.status_code)
        return Response("The recording is not available.", status=404, mimetype="text/plain")
    audit.append(
        store.engine(),
        f"staff:{staff.staff_id}",
        "service_request.recording_played",
        f"service_request:{report.reference}",
    )

    def body() -> Iterator[bytes]:
        with media:
            yield from media.iter_content(64 * 1024)

    answer = Response(body(), mimetype="audio/mpeg")
    length = media.headers.get("Content-Length")
    if length and length.isdigit():
        answer.headers["Content-Length"] = length
    answer.headers["Cache-Control"] = "no-store"
    return answer


def init_app(app: Flask, work_queue: WorkQueue) -> None:
    app.extensions[EXTENSION_KEY] = work_queue
    app.register_blueprint(bp)

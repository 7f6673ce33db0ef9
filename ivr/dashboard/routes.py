"""The supervisor pages: the dashboard, CSV exports, the QA queue and its review form."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from ivr import qa, reports, store
from ivr.accounts import Role
from ivr.auth import current_staff, require_role
from ivr.config.program import ProgramConfig
from ivr.dashboard import charts
from ivr.dashboard.filters import FilterError, FilterForm, parse_filters
from ivr.reports import WEEKDAYS

log = logging.getLogger(__name__)

PROGRAM_KEY = "bridgeline_program"
"""app.extensions key of the validated program config (ivr.config.program.ProgramConfig)."""

ROSTER_KEY = "bridgeline_roster"
"""app.extensions key where create_app keeps the roster (for the helper-type filter)."""

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)


def program() -> ProgramConfig:
    """The program config of the current app."""
    return current_app.extensions[PROGRAM_KEY]  # type: ignore[no-any-return]


def helper_types() -> tuple[str, ...]:
    """Helper types of the roster, for the filter and its validation."""
    roster = current_app.extensions.get(ROSTER_KEY)
    return tuple(sorted(roster.helper_types)) if roster is not None else ()


def _item_labels() -> dict[str, str]:
    """'menu:key:action' -> the English label of that menu item."""
    bridgeline = current_app.extensions.get("bridgeline")
    if bridgeline is None:
        return {}
    labels = {}
    for menu_id, menu in bridgeline.config.menus.menus.items():
        for item in menu.items:
            labels[f"{menu_id}:{item.key}:{item.action}"] = item.label.en
    return labels


def _crisis_words() -> tuple[str, ...]:
    """Spoken words that lead to a crisis line (menus.yaml), to spot them in handoff reasons."""
    bridgeline = current_app.extensions.get("bridgeline")
    if bridgeline is None:
        return ()
    crisis_lines = set(program().crisis_helper_types)
    return tuple(
        word
        for rule in bridgeline.config.menus.crisis
        if rule.line in crisis_lines
        for word in rule.words.all()
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _form() -> tuple[FilterForm | None, str | None]:
    try:
        return parse_filters(request.args, program(), helper_types(), _now()), None
    except FilterError as exc:
        return None, str(exc)


def _context(form: FilterForm | None, error: str | None) -> dict[str, Any]:
    return {
        "form": form,
        "error": error,
        "program": program(),
        "helper_types": helper_types(),
        "weekdays": WEEKDAYS,
        "staff": current_staff(),
    }


@bp.get("")
@require_role(Role.SUPERVISOR)
def index() -> Any:
    """The main view: every figure for the filters, with charts and CSV links."""
    form, error = _form()
    if form is None:
        return render_template("dashboard/index.html", **_context(None, error)), 400
    data = reports.build_dashboard(store.engine(), program(), form.filters, _now(), _item_labels())
    hour_rows = data.table("by_hour").rows
    weekday_rows = data.table("by_weekday").rows
    helper_rows = [r for r in data.table("helper_types").rows if r[0] != "all"]
    outcome_rows = [r for r in data.table("outcomes").rows if r[0] == "all"]
    outcome_names = data.table("outcomes").columns[1:-1]
    chart_list = [
        charts.bar_chart(
            "chart-handoffs-by-hour",
            "Handoffs by hour of day",
            [f"{r[0]:02d}" for r in hour_rows],
            [r[1] for r in hour_rows],
        ),
        charts.bar_chart(
            "chart-no-helper-by-hour",
            "Handoffs that found no helper, by hour of day",
            [f"{r[0]:02d}" for r in hour_rows],
            [r[3] for r in hour_rows],
        ),
        charts.bar_chart(
            "chart-by-weekday",
            "Handoffs by day of week",
            [r[0][:3] for r in weekday_rows],
            [r[1] for r in weekday_rows],
        ),
        charts.bar_chart(
            "chart-by-helper-type",
            "Handoffs that reached a helper, by helper type",
            [r[0].replace("_", " ") for r in helper_rows],
            [r[2] for r in helper_rows],
        ),
        charts.bar_chart(
            "chart-outcomes",
            "Outcomes",
            [name.replace("_", " ") for name in outcome_names],
            list(outcome_rows[0][1:-1]) if outcome_rows else [],
        ),
        charts.bar_chart(
            "chart-self-service-by-hour",
            "Self-service calls by hour of day",
            [f"{r[0]:02d}" for r in hour_rows],
            [r[5] for r in hour_rows],
        ),
    ]
    return render_template(
        "dashboard/index.html",
        **_context(form, None),
        data=data,
        charts=chart_list,
    )


# ------------------------------------------------------------------ CSV


def _csv_response(name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(v) for v in row])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def _csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/export/<name>.csv")
@require_role(Role.SUPERVISOR)
def export_table(name: str) -> Any:
    """One dashboard table as CSV, for the same filters."""
    form, error = _form()
    if form is None:
        abort(400, error)
    if name in ("qa_findings", "qa_not_offered"):
        tables = qa.rate_tables(qa.finding_rates(store.engine(), program(), form.filters))
    else:
        tables = reports.build_dashboard(
            store.engine(), program(), form.filters, _now(), _item_labels()
        ).tables
    table = next((t for t in tables if t.name == name), None)
    if table is None:
        abort(404)
    stem = f"{name}_{form.start_date.isoformat()}_{form.end_date.isoformat()}"
    log.info("dashboard table exported: table=%s", name)
    return _csv_response(stem, table.columns, table.rows)


@bp.get("/export/handoff-log.csv")
@require_role(Role.SUPERVISOR)
def export_handoff_log() -> Any:
    """Every handoff in the filters; free-text notes only when `notes=1` is asked for."""
    form, error = _form()
    if form is None:
        abort(400, error)
    with_notes = request.args.get("notes") == "1"
    columns, rows = reports.handoff_log(
        store.engine(), program(), form.filters, with_notes=with_notes
    )
    stem = f"handoff_log_{form.start_date.isoformat()}_{form.end_date.isoformat()}"
    log.info("handoff log exported: notes=%s", with_notes)
    return _csv_response(stem, columns, rows)


# ------------------------------------------------------------------ QA


@bp.get("/qa")
@require_role(Role.SUPERVISOR)
def qa_queue() -> Any:
    """Flag the range's calls that need review, then list them (open first)."""
    form, error = _form()
    if form is None:
        return render_template("dashboard/qa.html", **_context(None, error)), 400
    engine = store.engine()
    qa.refresh_queue(
        engine, program(), form.filters.start, form.filters.end, _now(), _crisis_words()
    )
    show = request.args.get("show", "open")
    reviewed = {"open": False, "reviewed": True, "all": None}.get(show, False)
    items = qa.list_queue(engine, program(), form.filters, reviewed=reviewed)
    rates = qa.rate_tables(qa.finding_rates(engine, program(), form.filters))
    return render_template(
        "dashboard/qa.html",
        **_context(form, None),
        items=items,
        show=show,
        rates=rates,
        labels=qa.REASON_LABELS,
    )


@bp.route("/qa/<int:item_id>", methods=["GET", "POST"])
@require_role(Role.SUPERVISOR)
def qa_review(item_id: int) -> Any:
    """The review form of one flagged call: compliant or not, why not offered, coaching."""
    engine = store.engine()
    item = qa.get_item(engine, item_id)
    if item is None:
        abort(404)
    error = None
    if request.method == "POST":
        verdict = request.form.get("compliant")
        if verdict not in ("yes", "no"):
            error = "Choose compliant or not compliant."
        else:
            staff = current_staff()
            assert staff is not None
            try:
                qa.record_finding(
                    engine,
                    item_id,
                    reviewer=staff.staff_id,
                    compliant=verdict == "yes",
                    not_offered_reason=request.form.get("not_offered_reason"),
                    coaching_note=request.form.get("coaching_note"),
                    now=_now(),
                )
            except qa.QAError as exc:
                error = str(exc)
            else:
                log.info("qa finding recorded: item=%s", item_id)
                back = request.form.get("back") or ""
                if not back.startswith("/dashboard/qa") or back.startswith("//"):
                    back = url_for("dashboard.qa_queue")
                return redirect(back)
    context = subject_context(engine, item)
    return render_template(
        "dashboard/review.html",
        item=item,
        subject=context,
        error=error,
        staff=current_staff(),
        labels=qa.REASON_LABELS,
        reasons=list(qa.NotOfferedReason),
        back=request.values.get("back", ""),
        zone=program().zone,
    ), (400 if error else 200)


def subject_context(engine: sa.Engine, item: qa.QAItem) -> list[tuple[str, Any]]:
    """What the reviewer needs to see about the flagged record (no phone numbers)."""
    return reports.subject_facts(engine, item.kind.value, item.ref)

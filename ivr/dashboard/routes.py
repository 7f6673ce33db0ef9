"""The supervisor pages: the dashboard, CSV exports, the QA queue and its review form."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    get_flashed_messages,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from ivr import store
from ivr.accounts import Role
from ivr.auth import current_staff, require_role
from ivr.config.program import ProgramConfig
from ivr.dashboard import charts, council, present
from ivr.dashboard import records as records_module
from ivr.dashboard import review as review_facts
from ivr.dashboard.filters import FilterError, FilterForm, parse_filters
from ivr.live.format import local_clock
from ivr.reporting import figures as reports
from ivr.reporting import qa
from ivr.reporting import qa_queue as qa_queue_module
from ivr.reporting.labels import Labels
from ivr.reporting.measures import WEEKDAYS
from ivr.services import services

log = logging.getLogger(__name__)

bp = Blueprint(
    "dashboard",
    __name__,
    url_prefix="/dashboard",
    template_folder="templates",
    static_folder="static",
)


def program() -> ProgramConfig:
    """The program config of the current app."""
    return services().program


def helper_types() -> tuple[str, ...]:
    """Helper types of the roster, for the filter and its validation."""
    return tuple(sorted(services().roster.helper_types))


def _item_labels() -> dict[str, str]:
    """'menu:key:action' -> the English label of that menu item."""
    bridgeline = services()
    labels = {}
    for menu_id, menu in bridgeline.config.menus.menus.items():
        for item in menu.items:
            labels[f"{menu_id}:{item.key}:{item.action}"] = item.label.en
    return labels


def _crisis_words() -> tuple[str, ...]:
    """Spoken words that lead to a crisis line (menus.yaml), to spot them in handoff reasons."""
    bridgeline = services()
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
        "labels": labels(),
    }


def labels() -> Labels:
    """The app's one label map (built at startup from config)."""
    return services().labels


def _linker(form: FilterForm) -> present.Link:
    base: dict[str, Any] = form.query()

    def link(kind: str, extra: Mapping[str, Any]) -> str:
        return url_for("dashboard.records", kind=kind, **{**base, **extra})

    return link


def build_charts(data: reports.Dashboard, labels: Labels) -> list[charts.Chart]:
    """The main view's charts, each with titles and the table of its figures."""
    hour_rows = data.table("by_hour").rows
    weekday_rows = data.table("by_weekday").rows
    helper_rows = [r for r in data.table("helper_types").rows if r[0] != "all"]
    outcome_table = data.table("outcomes")
    outcome_totals = next((r for r in outcome_table.rows if r[0] == "all"), None)
    hours = [f"{r[0]:02d}" for r in hour_rows]
    hour_title = "Hour of day (local time)"
    return [
        charts.column_chart(
            "chart-handoffs-by-hour", "Handoffs by hour of day", hour_title, "Handoffs",
            hours, [r[1] for r in hour_rows], tick_every=3,
        ),
        charts.column_chart(
            "chart-no-helper-by-hour", "Handoffs that found no helper, by hour of day",
            hour_title, "Handoffs", hours, [r[3] for r in hour_rows], tick_every=3,
        ),
        charts.column_chart(
            "chart-by-weekday", "Handoffs by day of week", "Day of week (local time)",
            "Handoffs", [r[0][:3] for r in weekday_rows], [r[1] for r in weekday_rows],
        ),
        charts.bar_chart(
            "chart-by-helper-type", "Handoffs that reached a helper, by helper type",
            "Helper type", "Handoffs that reached a helper",
            [labels.helper_type(r[0]) for r in helper_rows], [r[2] for r in helper_rows],
        ),
        charts.bar_chart(
            "chart-outcomes", "Outcomes of handoffs", "Outcome", "Handoffs",
            [present.sentence(labels.outcome(name)) for name in outcome_table.columns[1:-1]],
            list(outcome_totals[1:-1]) if outcome_totals else [],
        ),
        charts.column_chart(
            "chart-self-service-by-hour", "Self-service calls by hour of day", hour_title,
            "Calls", hours, [r[5] for r in hour_rows], tick_every=3,
        ),
    ]  # fmt: skip


@bp.get("")
@require_role(Role.SUPERVISOR)
def index() -> Any:
    """The main view: every figure for the filters, with charts, drill-downs and CSV links."""
    form, error = _form()
    if form is None:
        return render_template("dashboard/index.html", **_context(None, error)), 400
    data = reports.build_dashboard(store.engine(), program(), form.filters, _now(), _item_labels())
    panels = present.dashboard_panels(data, program(), labels(), _linker(form))
    return render_template(
        "dashboard/index.html",
        **_context(form, None),
        data=data,
        panels=panels,
        charts=build_charts(data, labels()),
    )


@bp.get("/report")
@require_role(Role.SUPERVISOR)
def council_report() -> Any:
    """The figures a council asks for, for the filters' range and jurisdiction, made to print."""
    form, error = _form()
    if form is None:
        return render_template("dashboard/report.html", **_context(None, error)), 400
    data = reports.build_dashboard(store.engine(), program(), form.filters, _now(), _item_labels())
    report = council.build(data, program(), labels(), _linker(form))
    return render_template(
        "dashboard/report.html",
        **_context(form, None),
        report=report,
        charts=build_charts(data, labels()),
        generated=_now().astimezone(program().zone),
    )


@bp.get("/records/<kind>")
@require_role(Role.SUPERVISOR)
def records(kind: str) -> Any:
    """The records behind one figure: the dashboard's filters plus what the figure counts."""
    if kind not in records_module.KINDS:
        abort(404)
    form, error = _form()
    if form is None:
        return render_template("dashboard/records.html", **_context(None, error)), 400
    extra = {k: v for k, v in request.args.items() if isinstance(v, str)}
    page = int(extra["page"]) if extra.get("page", "").isdigit() else 1
    engine = store.engine()
    try:
        if kind == "handoffs":
            if extra.get("type") and extra["type"] not in helper_types():
                raise records_module.RecordsError("unknown helper type")
            found = records_module.handoff_records(
                engine, program(), form.filters, extra, labels(), page
            )
        elif kind == "callbacks":
            found = records_module.callback_records(
                engine, program(), form.filters, extra, labels(), _now(), page
            )
        else:
            found = records_module.self_service_records(
                engine, program(), form.filters, extra, labels(), page
            )
    except records_module.RecordsError as exc:
        return render_template("dashboard/records.html", **_context(form, str(exc))), 400
    query = {**form.query(), **records_module.as_query(extra)}
    return render_template(
        "dashboard/records.html",
        **_context(form, None),
        found=found,
        kind=kind,
        query=query,
        zone=program().zone,
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
    """Flag the range's calls that need review, then list them: one row per call, mandated
    reviews first, a page at a time, with the next call to review."""
    form, error = _form()
    if form is None:
        return render_template("dashboard/qa.html", **_context(None, error)), 400
    engine = store.engine()
    qa.refresh_queue(
        engine, program(), form.filters.start, form.filters.end, _now(), _crisis_words()
    )
    show = request.args.get("show", "open")
    if show not in ("open", "reviewed", "all"):
        show = "open"
    raw_page = request.args.get("page", "1")
    tag = request.args.get("tag") or None
    if tag is not None and tag not in labels().tags:
        return render_template("dashboard/qa.html", **_context(None, "unknown tag")), 400
    found = qa_queue_module.queue_page(
        engine,
        program(),
        form.filters,
        show=show,
        page=int(raw_page) if raw_page.isdigit() else 1,
        tag=tag,
    )
    records = [r for c in found.calls for r in c.records]
    by_record = review_facts.tags_by_record(engine, records)
    rates = present.qa_panels(
        qa.rate_tables(qa.finding_rates(engine, program(), form.filters)), labels()
    )
    return render_template(
        "dashboard/qa.html",
        **_context(form, None),
        found=found,
        show=show,
        rates=rates,
        titles={c.key: call_title(c.key) for c in found.calls},
        call_tags={
            c.key: sorted({t for r in c.records for t in by_record.get(r, [])}) for c in found.calls
        },
        tag=tag or "",
        query={**form.query(), **({"tag": tag} if tag else {})},
        next_title=call_title(found.next_open.key) if found.next_open else "",
        messages=get_flashed_messages(with_categories=True),
        zone=program().zone,
        mandated=qa_queue_module.MANDATED,
    )


def call_title(key: str) -> str:
    """How a queued call is named (no phone number, no call SID)."""
    kind, _, ref = key.partition(":")
    if kind == "live":
        return f"Call #{ref}"
    if kind == "call":
        return f"Self-service call {records_module._call_ref(ref)}"
    if kind == "callback":
        return f"Callback #{ref}"
    return f"Handoff #{ref}" if kind == "handoff" else "Call"


def _safe_back(raw: str | None) -> str:
    back = raw or ""
    if not back.startswith("/dashboard/qa") or back.startswith("//"):
        return url_for("dashboard.qa_queue")
    return back


@bp.route("/qa/<int:item_id>", methods=["GET", "POST"])
@require_role(Role.SUPERVISOR)
def qa_review(item_id: int) -> Any:
    """The review form of one flagged call (all its reasons): compliant or not, why a crisis
    team was not offered, coaching; saving records the finding on each of its flags."""
    engine = store.engine()
    item = qa.get_item(engine, item_id)
    if item is None:
        abort(404)
    flagged = qa_queue_module.call_of_item(engine, item)
    error = None
    if request.method == "POST":
        verdict = request.form.get("compliant")
        if verdict not in ("yes", "no"):
            error = "Choose compliant or not compliant."
        else:
            staff = current_staff()
            assert staff is not None
            try:
                count = qa_queue_module.record_call_finding(
                    engine,
                    flagged,
                    reviewer=staff.staff_id,
                    compliant=verdict == "yes",
                    not_offered_reason=request.form.get("not_offered_reason"),
                    coaching_note=request.form.get("coaching_note"),
                    now=_now(),
                )
            except qa.QAError as exc:
                error = str(exc)
            else:
                log.info("qa finding recorded: item=%s flags=%s", item_id, count)
                found = "compliant" if verdict == "yes" else "not compliant"
                flash(f"Finding saved: {call_title(flagged.key)} is {found}.", "ok")
                return redirect(_safe_back(request.form.get("back")))
    questions = {q.id: q.prompt for q in services().tree.questions}
    facts = review_facts.read(engine, flagged, questions, labels(), program().zone)
    return render_template(
        "dashboard/review.html",
        item=flagged.first,
        flagged=flagged,
        title=call_title(flagged.key),
        facts=facts,
        error=error,
        staff=current_staff(),
        reasons=list(qa.NotOfferedReason),
        mandated=qa_queue_module.MANDATED,
        back=_safe_back(request.values.get("back")),
        zone=program().zone,
        labels=labels(),
        clock=local_clock,
        now=_now(),
    ), (400 if error else 200)

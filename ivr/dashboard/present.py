"""The dashboard's figures as people read them: words for codes, thousands separators, money,
percentages, figures below their target marked in words, and a link from each figure to the
records behind it (the same filters plus what the figure counts).

Pure: takes the report tables, the label map and a `link` function (the route passes one built
on url_for), returns `Panel`s the template draws. CSV exports keep the report tables as they are
(codes are what a spreadsheet or another system wants).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.config.program import ProgramConfig
from ivr.reporting.figures import Dashboard
from ivr.reporting.labels import Labels
from ivr.reporting.measures import HOTLINE_988, WEEKDAYS, Table

Link = Callable[[str, Mapping[str, Any]], str]
"""link(records kind, extra query values) -> URL of the records behind a figure."""

CURRENCY_SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£", "AUD": "A$", "MXN": "MX$"}
"""Symbols for the currencies a program is likely to report in; others print their code."""

NO_DATA = "no data"
"""What an empty figure (a median of nothing) shows."""


@dataclass(frozen=True)
class Cell:
    """One table cell as shown."""

    text: str
    href: str | None = None
    below: bool = False
    numeric: bool = False
    row_header: bool = False


@dataclass(frozen=True)
class Panel:
    """One table of the dashboard, ready to draw."""

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""

    def cell(self, row_text: str, column: str) -> Cell | None:
        """The cell of `column` in the row whose first cell says `row_text` (for tests)."""
        index = self.columns.index(column)
        for row in self.rows:
            if row[0].text == row_text:
                return row[index]
        return None


# ------------------------------------------------------------------ formatting


def count(value: Any) -> str:
    """A whole number with thousands separators."""
    if value in ("", None):
        return NO_DATA
    return f"{int(value):,}"


def money(amount: float, currency: str) -> str:
    """An amount in the program's currency: $16,750 or $16,750.50; unknown codes as 'CHF 10'."""
    text = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    symbol = CURRENCY_SYMBOLS.get(currency.upper())
    return f"{symbol}{text}" if symbol else f"{currency.upper()} {text}"


def seconds(value: Any) -> str:
    """Seconds, or 'no data'."""
    return NO_DATA if value in ("", None) else f"{_number(value)} s"


def minutes(value: Any) -> str:
    """Minutes, or 'no data'."""
    return NO_DATA if value in ("", None) else f"{_number(value)} min"


def percent(value: Any) -> str:
    """A percentage, or 'no data'."""
    return NO_DATA if value in ("", None) else f"{float(value):,.1f}%"


def _number(value: Any) -> str:
    number = float(value)
    return f"{int(number):,}" if number.is_integer() else f"{number:,.1f}"


def hour_label(hour: int) -> str:
    """An hour of day as a clock time range start: 02:00."""
    return f"{hour:02d}:00"


# ------------------------------------------------------------------ the panels


def _num(text: str, href: str | None = None, below: bool = False) -> Cell:
    return Cell(text, href=href, below=below, numeric=True)


def _head(text: str, href: str | None = None) -> Cell:
    return Cell(sentence(text), href=href, row_header=True)


def sentence(text: str) -> str:
    """Sentence case for a name that starts a row or a bar: 'resolved by phone' -> 'Resolved…'."""
    return text[:1].upper() + text[1:]


SUMMARY_LINKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("calls diverted", "handoffs", {"reached": "first"}),
    ("estimated savings", "handoffs", {"reached": "first"}),
    ("handoffs requested", "handoffs", {}),
    ("handoffs that found no helper", "handoffs", {"reached": "no"}),
    ("transfers to 311", "self_service", {"event": "to_311"}),
    ("self-service calls resolved", "self_service", {"resolved": "1"}),
    ("self-service calls", "self_service", {}),
    ("callbacks open", "callbacks", {"state": "open"}),
    ("callbacks overdue", "callbacks", {"state": "overdue"}),
)
"""Which records each summary figure counts (first match on the start of its label)."""


def summary_panel(table: Table, program: ProgramConfig, dashboard: Dashboard, link: Link) -> Panel:
    """The headline figures: counts with separators, savings in money, each a link."""
    rows = []
    for label, value in table.rows:
        text = label[0].upper() + label[1:]
        target = next((t for t in SUMMARY_LINKS if label.startswith(t[0])), None)
        href = link(target[1], target[2]) if target else None
        if label.startswith("estimated savings"):
            per = money(program.savings.per_avoided_dispatch, program.savings.currency)
            text = f"Estimated savings ({per} per avoided dispatch)"
            shown = money(dashboard.savings, program.savings.currency)
        else:
            shown = count(value)
        rows.append((_head(text), _num(shown, href)))
        if label.startswith("transfers to 988"):  # two kinds of record: one row for each
            by_handoff = dashboard.handoffs.connected.get(HOTLINE_988, 0)
            by_line = dashboard.self_service.transfers.get(HOTLINE_988, 0)
            rows.append(
                (
                    _head("… of which by call-takers (handoffs that reached the 988 line)"),
                    _num(
                        count(by_handoff), link("handoffs", {"reached": "yes", "type": HOTLINE_988})
                    ),
                )
            )
            rows.append(
                (
                    _head("… of which from the self-service line"),
                    _num(
                        count(by_line),
                        link("self_service", {"event": "transfer", "detail": HOTLINE_988}),
                    ),
                )
            )
    return Panel(table.name, table.title, ("Figure", "Value"), tuple(rows), table.note)


def helper_types_panel(table: Table, program: ProgramConfig, labels: Labels, link: Link) -> Panel:
    """Answer times and durations per helper type; shares below the target marked."""
    targets = program.answer_targets
    columns = (
        "Helper type",
        "Requested",
        "Reached a helper",
        "Answer time, median",
        "Answer time, 90th percentile",
        *(f"Answered within {t.within_seconds} s (target {t.share * 100:g}%)" for t in targets),
        "Call length, median",
        "Call length, 90th percentile",
    )
    rows = []
    for row in table.rows:
        code = row[0]
        scope = {} if code == "all" else {"type": code}
        name = "All helper types" if code == "all" else labels.helper_type(code)
        cells = [
            _head(name, link("handoffs", scope)),
            _num(count(row[1]), link("handoffs", scope)),
            _num(count(row[2]), link("handoffs", {**scope, "reached": "yes"})),
            _num(seconds(row[3])),
            _num(seconds(row[4])),
        ]
        for offset, target in enumerate(targets):
            share = row[5 + offset]
            below = share not in ("", None) and float(share) < target.share * 100
            text = percent(share) + (" — below target" if below else "")
            cells.append(_num(text, below=below))
        cells += [_num(minutes(row[5 + len(targets)])), _num(minutes(row[6 + len(targets)]))]
        rows.append(tuple(cells))
    return Panel(table.name, table.title, columns, tuple(rows), table.note)


def no_helper_panel(table: Table, labels: Labels, link: Link) -> Panel:
    """Reasons handoffs found no helper, in words, each linking to those handoffs."""
    rows = tuple(
        (
            _head(labels.reason(reason), link("handoffs", {"reason": reason})),
            _num(count(n), link("handoffs", {"reason": reason})),
        )
        for reason, n in table.rows
    )
    return Panel(table.name, table.title, ("Reason", "Handoffs"), rows, table.note)


def outcomes_panel(table: Table, labels: Labels, link: Link) -> Panel:
    """Outcomes as rows (long names read down, not across), helper types as columns."""
    outcome_codes = table.columns[1:-1]
    types = [row[0] for row in table.rows]
    columns = (
        "Outcome",
        *("All helper types" if t == "all" else labels.helper_type(t) for t in types),
    )
    rows = []
    for index, outcome in enumerate(outcome_codes, start=1):
        cells = [_head(labels.outcome(outcome), link("handoffs", {"outcome": outcome}))]
        for type_row in table.rows:
            scope = {} if type_row[0] == "all" else {"type": type_row[0]}
            cells.append(
                _num(count(type_row[index]), link("handoffs", {**scope, "outcome": outcome}))
            )
        rows.append(tuple(cells))
    return Panel(table.name, table.title, columns, tuple(rows), table.note)


def by_hour_panel(table: Table, link: Link) -> Panel:
    """Figures by local hour of day, each hour linking to its handoffs."""
    rows = []
    for hour, handoffs, connected, none, median, calls in table.rows:
        at = {"at_hour": hour}
        rows.append(
            (
                _head(hour_label(hour)),
                _num(count(handoffs), link("handoffs", at)),
                _num(count(connected), link("handoffs", {**at, "reached": "yes"})),
                _num(count(none), link("handoffs", {**at, "reached": "no"})),
                _num(seconds(median)),
                _num(count(calls), link("self_service", at)),
            )
        )
    columns = (
        "Hour (local)",
        "Handoffs",
        "Reached a helper",
        "Found no helper",
        "Answer time, median",
        "Self-service calls",
    )
    return Panel(table.name, table.title, columns, tuple(rows), table.note)


def by_weekday_panel(table: Table, link: Link) -> Panel:
    """Figures by local day of week, each day linking to its handoffs."""
    rows = []
    for day, handoffs, connected, none, calls in table.rows:
        at = {"on_day": WEEKDAYS.index(day)}
        rows.append(
            (
                _head(day),
                _num(count(handoffs), link("handoffs", at)),
                _num(count(connected), link("handoffs", {**at, "reached": "yes"})),
                _num(count(none), link("handoffs", {**at, "reached": "no"})),
                _num(count(calls), link("self_service", at)),
            )
        )
    columns = ("Day", "Handoffs", "Reached a helper", "Found no helper", "Self-service calls")
    return Panel(table.name, table.title, columns, tuple(rows), table.note)


SELF_SERVICE_LINKS: dict[str, dict[str, Any]] = {
    "calls": {},
    "resolved without a person": {"resolved": "1"},
    "sent to a 311 agent": {"event": "to_person"},
    "reports filed": {"event": "report_filed"},
    "report status checked": {"event": "status_checked"},
    "information sent by text": {"event": "info_sms"},
    "callbacks requested": {"event": "callback_requested"},
    "callbacks declined": {"event": "callback_declined"},
    "left the 311 queue for a callback": {"event": "queue_callback"},
    "re-asked until sent to a person": {"event": "attempts_exhausted"},
}
"""The self-service events each figure of the self-service table counts."""


def figure_panel(
    table: Table, link: Link, links: Mapping[str, tuple[str, dict[str, Any]]] | None = None
) -> Panel:
    """A (figure, value) table: sentence-case names, counts with separators, links when known."""
    rows = []
    for label, value in table.rows:
        target = (links or {}).get(label)
        href = link(target[0], target[1]) if target else None
        shown = count(value) if isinstance(value, int) else minutes(value)
        rows.append((_head(label[0].upper() + label[1:]), _num(shown, href)))
    return Panel(table.name, table.title, ("Figure", "Value"), tuple(rows), table.note)


def self_service_items_panel(table: Table, labels: Labels, link: Link) -> Panel:
    """Menu items by how often they were chosen, named as the menu says them."""
    rows = tuple(
        (
            _head(labels.menu_item(item)),
            _num(count(n), link("self_service", {"event": "menu_item", "detail": item})),
        )
        for item, _label, n in table.rows
    )
    return Panel(table.name, table.title, ("Menu item", "Times chosen"), rows, table.note)


def transfers_panel(table: Table, labels: Labels, link: Link) -> Panel:
    """Self-service transfers by line, in words."""
    rows = tuple(
        (
            _head(labels.line(line)),
            _num(count(n), link("self_service", {"event": "transfer", "detail": line})),
            _num(count(crisis), link("self_service", {"event": "crisis_words", "detail": line})),
        )
        for line, n, crisis in table.rows
    )
    columns = ("Line", "Transfers", "Of which after crisis words")
    return Panel(table.name, table.title, columns, rows, table.note)


CALLBACK_LINKS: dict[str, tuple[str, dict[str, Any]]] = {
    "open": ("callbacks", {"state": "open"}),
    "done": ("callbacks", {"state": "done"}),
    "failed": ("callbacks", {"state": "failed"}),
    "overdue (open past deadline)": ("callbacks", {"state": "overdue"}),
    "cancelled": ("callbacks", {"state": "cancelled"}),
}
"""The callbacks each figure of the callbacks table counts."""


def callback_sources_panel(table: Table, labels: Labels, link: Link) -> Panel:
    """Callbacks by who asked for them, in words."""
    rows = tuple(
        (
            _head(labels.callback_source(source)),
            _num(count(n), link("callbacks", {"source": source})),
        )
        for source, n in table.rows
    )
    return Panel(table.name, table.title, ("Asked for by", "Callbacks"), rows, table.note)


def qa_panels(tables: Sequence[Table], labels: Labels) -> list[Panel]:
    """The QA rate tables in words."""
    out = []
    for table in tables:
        rows: tuple[tuple[Cell, ...], ...]
        columns: tuple[str, ...]
        if table.name == "qa_findings":
            rows = tuple(
                (
                    _head("All flagged calls" if code == "all" else labels.qa_reason(code)),
                    _num(count(flagged)),
                    _num(count(reviewed)),
                    _num(count(good)),
                    _num(percent(pct)),
                )
                for code, _label, flagged, reviewed, good, pct in table.rows
            )
            columns = ("Why flagged", "Flagged", "Reviewed", "Compliant", "Compliant share")
        else:
            rows = tuple(
                (_head(labels.not_offered(code)), _num(count(n))) for code, n in table.rows
            )
            columns = ("Reason", "Findings")
        out.append(Panel(table.name, table.title, columns, rows, table.note))
    return out


def dashboard_panels(
    dashboard: Dashboard, program: ProgramConfig, labels: Labels, link: Link
) -> list[Panel]:
    """Every table of the main view, in the order the report tables come."""
    out: list[Panel] = []
    for table in dashboard.tables:
        name = table.name
        if name == "summary":
            out.append(summary_panel(table, program, dashboard, link))
        elif name == "helper_types":
            out.append(helper_types_panel(table, program, labels, link))
        elif name == "no_helper":
            out.append(no_helper_panel(table, labels, link))
        elif name == "outcomes":
            out.append(outcomes_panel(table, labels, link))
        elif name == "by_hour":
            out.append(by_hour_panel(table, link))
        elif name == "by_weekday":
            out.append(by_weekday_panel(table, link))
        elif name == "self_service":
            links = {k: ("self_service", v) for k, v in SELF_SERVICE_LINKS.items()}
            out.append(figure_panel(table, link, links))
        elif name == "self_service_items":
            out.append(self_service_items_panel(table, labels, link))
        elif name == "self_service_transfers":
            out.append(transfers_panel(table, labels, link))
        elif name == "callbacks":
            out.append(figure_panel(table, link, CALLBACK_LINKS))
        elif name == "callback_sources":
            out.append(callback_sources_panel(table, labels, link))
        else:  # a table added later still shows, with its cells as they are
            out.append(
                Panel(
                    name,
                    table.title,
                    table.columns,
                    tuple(tuple(Cell(str(c)) for c in row) for row in table.rows),
                    table.note,
                )
            )
    return out

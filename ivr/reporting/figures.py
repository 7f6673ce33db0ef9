"""The figures programs report, computed in SQL aggregates for a date range and filters.

Every function takes an engine, the program config and a `Filters`, and returns `Table`s the
dashboard shows and exports as CSV. Hours of day and days of week are the program's local
time (config/program.yaml `timezone`), computed inside the query on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.reporting import rollups
from ivr.reporting.callback_figures import CallbackFigures, callback_tables
from ivr.reporting.callback_figures import callback_figures as callback_figures
from ivr.reporting.handoff_figures import HandoffFigures as HandoffFigures
from ivr.reporting.handoff_figures import handoff_figures as handoff_figures
from ivr.reporting.handoff_log import handoff_log as handoff_log
from ivr.reporting.measures import HOTLINE_988, LINE_311, WEEKDAYS, Filters, Table, _blank
from ivr.reporting.measures import _offsets as _offsets
from ivr.reporting.measures import median as median
from ivr.reporting.measures import percentile as percentile
from ivr.reporting.measures import rollups_exact as rollups_exact
from ivr.reporting.measures import share_within as share_within
from ivr.reporting.self_service_figures import SelfServiceFigures, self_service_tables
from ivr.reporting.self_service_figures import self_service_figures as self_service_figures
from ivr.store.db import seconds_between as seconds_between

# ------------------------------------------------------------------ the whole dashboard


@dataclass(frozen=True)
class Dashboard:
    """Every figure of the main dashboard view, as tables plus the series the charts draw."""

    tables: list[Table]
    handoffs: HandoffFigures
    self_service: SelfServiceFigures
    callbacks: CallbackFigures
    savings: float

    def table(self, name: str) -> Table:
        """The table called `name`."""
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


def _minutes(seconds: float | None) -> Any:
    return "" if seconds is None else round(seconds / 60, 1)


def _pct(share: float | None) -> Any:
    return "" if share is None else round(share * 100, 1)


def build_dashboard(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    now: datetime,
    item_labels: Mapping[str, str] | None = None,
) -> Dashboard:
    """Compute every figure of the main view for `filters`."""
    rollups.refresh(engine)  # once for both, not once each
    hf = handoff_figures(engine, program, filters, refresh=False)
    ss = self_service_figures(engine, program, filters, refresh=False)
    cb = callback_figures(engine, program, filters, now)
    savings = hf.diverted_calls * program.savings.per_avoided_dispatch
    targets = program.answer_targets
    jurisdiction_note = (
        "Handoffs do not record a jurisdiction yet: none are counted under this filter."
        if hf.jurisdiction_missing
        else ""
    )
    headline = Table(
        "summary",
        "Summary",
        ("figure", "value"),
        [
            ("calls diverted from dispatch (handoffs that reached a helper)", hf.diverted_calls),
            (
                f"estimated savings ({program.savings.currency}, "
                f"{program.savings.per_avoided_dispatch:g} per avoided dispatch)",
                round(savings, 2),
            ),
            ("handoffs requested", sum(hf.requested.values())),
            ("handoffs that found no helper", sum(hf.no_helper.values())),
            (
                "transfers to 988 (handoffs + self-service)",
                hf.connected.get(HOTLINE_988, 0) + ss.transfers.get(HOTLINE_988, 0),
            ),
            (
                "transfers to 311 (agent queue + operator line)",
                ss.to_person + ss.transfers.get(LINE_311, 0),
            ),
            ("self-service calls", ss.calls),
            ("self-service calls resolved without a person", ss.resolved_without_person),
            ("callbacks open", cb.open),
            ("callbacks overdue", cb.overdue),
        ],
        note=jurisdiction_note,
    )
    types = sorted(set(hf.requested) | set(hf.answer_seconds))
    by_type_rows = []
    for helper_type in [*types, "all"]:
        answers = (
            hf.all_answers() if helper_type == "all" else hf.answer_seconds.get(helper_type, {})
        )
        durations = (
            hf.all_durations() if helper_type == "all" else hf.duration_seconds.get(helper_type, {})
        )
        requested = (
            sum(hf.requested.values()) if helper_type == "all" else hf.requested.get(helper_type, 0)
        )
        connected = (
            sum(hf.connected.values()) if helper_type == "all" else hf.connected.get(helper_type, 0)
        )
        by_type_rows.append(
            (
                helper_type,
                requested,
                connected,
                _blank(median(answers)),
                _blank(percentile(answers, 0.9)),
                *(_pct(share_within(answers, t.within_seconds)) for t in targets),
                _minutes(median(durations)),
                _minutes(percentile(durations, 0.9)),
            )
        )
    helper_table = Table(
        "helper_types",
        "Handoffs by helper type: answer times and call durations",
        (
            "helper type",
            "requested",
            "reached a helper",
            "answer median s",
            "answer 90th pct s",
            *(f"% answered in {t.within_seconds} s (target {t.share * 100:g}%)" for t in targets),
            "duration median min",
            "duration 90th pct min",
        ),
        by_type_rows,
        note=jurisdiction_note,
    )
    no_helper = Table(
        "no_helper",
        "Handoffs that found no helper, by reason",
        ("reason", "handoffs"),
        sorted(hf.no_helper.items(), key=lambda kv: (-kv[1], kv[0])),
    )
    outcome_names = sorted(hf.outcomes)
    outcomes = Table(
        "outcomes",
        "Outcomes by helper type",
        ("helper type", *outcome_names, "total"),
        [
            (
                helper_type,
                *(hf.outcomes_by_type.get((helper_type, o), 0) for o in outcome_names),
                sum(hf.outcomes_by_type.get((helper_type, o), 0) for o in outcome_names),
            )
            for helper_type in types
        ]
        + [("all", *(hf.outcomes.get(o, 0) for o in outcome_names), sum(hf.outcomes.values()))],
    )
    hour_table = Table(
        "by_hour",
        "By hour of day (local time)",
        (
            "hour",
            "handoffs",
            "reached a helper",
            "found no helper",
            "answer median s",
            "self-service calls",
        ),
        [
            (
                hr,
                hf.by_hour.get(hr, {}).get("handoffs", 0),
                hf.by_hour.get(hr, {}).get("connected", 0),
                hf.by_hour.get(hr, {}).get("no_helper", 0),
                _blank(median(hf.answer_by_hour.get(hr, {}))),
                ss.calls_by_hour.get(hr, 0),
            )
            for hr in range(24)
        ],
    )
    weekday_table = Table(
        "by_weekday",
        "By day of week (local time)",
        ("day", "handoffs", "reached a helper", "found no helper", "self-service calls"),
        [
            (
                WEEKDAYS[wd],
                hf.by_weekday.get(wd, {}).get("handoffs", 0),
                hf.by_weekday.get(wd, {}).get("connected", 0),
                hf.by_weekday.get(wd, {}).get("no_helper", 0),
                ss.calls_by_weekday.get(wd, 0),
            )
            for wd in range(7)
        ],
    )
    tables = [headline, helper_table, no_helper, outcomes, hour_table, weekday_table]
    tables += self_service_tables(ss, item_labels or {})
    tables += callback_tables(cb)
    return Dashboard(tables=tables, handoffs=hf, self_service=ss, callbacks=cb, savings=savings)

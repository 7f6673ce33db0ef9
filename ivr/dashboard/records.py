"""The records behind a dashboard figure: handoffs, callbacks or self-service calls, filtered as
the figure was (the dashboard's filters plus what the figure counts), a page at a time.

Each query uses the report's own conditions (ivr.reporting.figures), so the number of records listed is
the figure that linked here. Rows carry words and local times, never a phone number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.reporting import rollups
from ivr.reporting.callback_figures import _callback_in_jurisdiction
from ivr.reporting.figures import seconds_between
from ivr.reporting.handoff_figures import _handoff_where
from ivr.reporting.labels import Labels
from ivr.reporting.measures import OPEN_CALLBACK_STATES, PERSON_EVENTS, Filters, clock_for
from ivr.reporting.self_service_figures import _self_service_applies
from ivr.store.callback_records import as_utc
from ivr.store.tables import callbacks, self_service_events

PAGE_SIZE = 50
"""Records per page."""

KINDS = ("handoffs", "callbacks", "self_service")
"""What a figure can count."""


class RecordsError(ValueError):
    """A drill-down value that cannot be used; the message says which."""


@dataclass(frozen=True)
class Record:
    """One listed record: when (local), what, and its details, in words."""

    when: datetime
    title: str
    facts: tuple[tuple[str, str], ...]
    flag: str = ""


@dataclass(frozen=True)
class RecordPage:
    """One page of records, the total, and what they are."""

    kind: str
    described: str
    total: int
    page: int
    records: tuple[Record, ...]

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // PAGE_SIZE))


def outside(filters: Filters, extra: Mapping[str, str]) -> bool:
    """True when a figure's hour or day is one the dashboard's own filters leave out (its
    figure is 0, so its list is empty too)."""
    hour, day = extra.get("at_hour", ""), extra.get("on_day", "")
    if hour.isdigit() and filters.hours and int(hour) not in filters.hours:
        return True
    return bool(day.isdigit() and filters.weekdays and int(day) not in filters.weekdays)


def narrowed(filters: Filters, extra: Mapping[str, str]) -> Filters:
    """The dashboard filters narrowed to one hour of day or day of week, when a figure asks."""
    if extra.get("at_hour", "").isdigit() and int(extra["at_hour"]) in range(24):
        filters = replace(filters, hours=frozenset({int(extra["at_hour"])}))
    if extra.get("on_day", "").isdigit() and int(extra["on_day"]) in range(7):
        filters = replace(filters, weekdays=frozenset({int(extra["on_day"])}))
    if extra.get("type"):
        filters = replace(filters, helper_type=extra["type"])
    return filters


def _offset(page: int) -> int:
    return (max(page, 1) - 1) * PAGE_SIZE


# ------------------------------------------------------------------ handoffs


def handoff_records(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    extra: Mapping[str, str],
    labels: Labels,
    page: int = 1,
) -> RecordPage:
    """Handoffs asked for in the filters; `reached` yes/no/first, `reason`, `outcome` narrow."""
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    empty = outside(filters, extra)
    filters = narrowed(filters, extra)
    where, _, _ = _handoff_where(engine, program, filters)
    if empty:
        where.append(sa.false())
    said = []
    reached = extra.get("reached", "")
    if reached == "yes":
        where.append(h.connected_at.is_not(None))
        said.append("that reached a helper")
    elif reached == "first":
        where.append(rollups.first_connected(handoffs, per_type=bool(filters.helper_type)))
        said.append("that diverted a call (the call's first handoff to reach a helper)")
    elif reached == "no":
        where += [h.connected_at.is_(None), h.reason_code.is_not(None)]
        said.append("that found no helper")
    elif reached:
        raise RecordsError("reached must be yes, no or first")
    if extra.get("reason"):
        where += [h.connected_at.is_(None), h.reason_code == extra["reason"]]
        said.append(f"that found no helper because: {labels.reason(extra['reason'])}")
    if extra.get("outcome"):
        where.append(h.outcome == extra["outcome"])
        said.append(f"with the outcome {labels.outcome(extra['outcome'])}")
    answer = seconds_between(engine, h.accepted_at, h.created_at).label("answer")
    duration = seconds_between(engine, h.ended_at, h.connected_at).label("duration")
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        rows = conn.execute(
            sa.select(
                h.id,
                h.live_call_id,
                h.created_at,
                h.helper_type,
                h.status,
                h.reason_code,
                h.outcome,
                h.jurisdiction,
                h.attempt,
                answer,
                duration,
            )
            .where(*where)
            .order_by(h.created_at, h.id)
            .limit(PAGE_SIZE)
            .offset(_offset(page))
        ).all()
    records = []
    for row in rows:
        facts = [
            ("Helper type", labels.helper_type(row.helper_type)),
            ("Status", labels.handoff_status(row.status)),
        ]
        if row.reason_code:
            facts.append(("Why no helper", labels.reason(row.reason_code)))
        if row.answer is not None:
            facts.append(("Answered after", f"{int(row.answer):,} s"))
        if row.duration is not None:
            facts.append(("Call length", f"{int(row.duration) / 60:,.1f} min"))
        if row.outcome:
            facts.append(("Outcome", labels.outcome(row.outcome)))
        if row.jurisdiction:
            facts.append(("Jurisdiction", labels.jurisdiction(row.jurisdiction)))
        if row.attempt and row.attempt > 1:
            facts.append(("Helpers tried", str(row.attempt)))
        records.append(
            Record(
                when=as_utc(row.created_at) or row.created_at,
                title=f"Handoff #{row.id} (call #{row.live_call_id})",
                facts=tuple(facts),
            )
        )
    scope = labels.helper_type(filters.helper_type) if filters.helper_type else "all helper types"
    described = f"Handoffs to {scope} " + ", ".join(said) if said else f"Handoffs to {scope}"
    return RecordPage("handoffs", described.strip(), int(total), page, tuple(records))


# ------------------------------------------------------------------ callbacks


CALLBACK_STATES = ("open", "overdue", "done", "failed", "cancelled")
"""The callback figures a drill-down can list."""


def callback_records(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    extra: Mapping[str, str],
    labels: Labels,
    now: datetime,
    page: int = 1,
) -> RecordPage:
    """Callbacks created in the filters; `state` and `source` narrow, as the figures count."""
    cb = callbacks.c
    empty = outside(filters, extra)
    filters = narrowed(filters, extra)
    clock = clock_for(engine, program, filters)
    where = [*clock.conditions(cb.created_at, filters), cb.status != "draft"]
    if empty:
        where.append(sa.false())
    if filters.helper_type:
        where.append(cb.helper_type == filters.helper_type)
    if filters.jurisdiction is not None:
        where.append(_callback_in_jurisdiction(program, filters.jurisdiction))
    state = extra.get("state", "")
    said = ""
    if state == "open":
        where.append(cb.status.in_(OPEN_CALLBACK_STATES))
        said = "still open"
    elif state == "overdue":
        where += [cb.status.in_(OPEN_CALLBACK_STATES), cb.deadline_at < now]
        said = "open past their deadline"
    elif state in ("done", "failed", "cancelled"):
        where.append(cb.status == state)
        said = labels.callback_status(state)
    elif state:
        raise RecordsError("state must be one of " + ", ".join(CALLBACK_STATES))
    if extra.get("source"):
        where.append(cb.source == extra["source"])
        said = (
            said + ", " if said else ""
        ) + f"asked for by: {labels.callback_source(extra['source'])}"
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        rows = conn.execute(
            sa.select(
                cb.id,
                cb.created_at,
                cb.source,
                cb.status,
                cb.helper_type,
                cb.due_at,
                cb.deadline_at,
                cb.language,
            )
            .where(*where)
            .order_by(cb.created_at, cb.id)
            .limit(PAGE_SIZE)
            .offset(_offset(page))
        ).all()
    zone = program.zone
    records = []
    for row in rows:
        deadline = as_utc(row.deadline_at)
        overdue = row.status in OPEN_CALLBACK_STATES and deadline is not None and deadline < now
        facts = [
            ("Asked for by", labels.callback_source(row.source)),
            ("Status", labels.callback_status(row.status)),
        ]
        if row.helper_type:
            facts.append(("Helper type", labels.helper_type(row.helper_type)))
        due = as_utc(row.due_at)
        if due:
            facts.append(("Due", due.astimezone(zone).strftime("%a %d %b %Y %H:%M")))
        if deadline:
            facts.append(("Deadline", deadline.astimezone(zone).strftime("%a %d %b %Y %H:%M")))
        facts.append(("Language", labels.language(row.language)))
        records.append(
            Record(
                when=as_utc(row.created_at) or row.created_at,
                title=f"Callback #{row.id}",
                facts=tuple(facts),
                flag="Overdue" if overdue else "",
            )
        )
    described = "Callbacks" + (f" {said}" if said else "")
    return RecordPage("callbacks", described, int(total), page, tuple(records))


# ------------------------------------------------------------------ self-service calls


def _call_ref(call_sid: str) -> str:
    """A short reference for a self-service call that does not show its SID."""
    return hashlib.sha256(call_sid.encode()).hexdigest()[:8]


def self_service_records(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    extra: Mapping[str, str],
    labels: Labels,
    page: int = 1,
) -> RecordPage:
    """Self-service calls (at their first event), or the events of one kind (`event`,
    `detail`), as the self-service figures count them."""
    empty = outside(filters, extra)
    filters = narrowed(filters, extra)
    ev = self_service_events.c
    if empty or not _self_service_applies(program, filters):
        return RecordPage(
            "self_service", "Self-service calls (none in this jurisdiction)", 0, 1, ()
        )
    clock = clock_for(engine, program, filters)
    event = extra.get("event", "")
    if event:
        where = clock.conditions(ev.at, filters)
        if event == "to_311":
            where.append(
                sa.or_(
                    ev.event == "to_person",
                    sa.and_(ev.event == "transfer", ev.detail == "operator"),
                )
            )
            described = "Self-service calls sent to 311 (agent queue or operator line)"
        else:
            where.append(ev.event == event)
            described = f"Self-service events: {labels.self_service_event(event)}"
        if extra.get("detail"):
            where.append(ev.detail == extra["detail"])
            detail = extra["detail"]
            shown = labels.menu_item(detail) if event == "menu_item" else labels.line(detail)
            described += f" ({shown})"
        with engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
            rows = conn.execute(
                sa.select(ev.call_sid, ev.at, ev.event, ev.detail, ev.language)
                .where(*where)
                .order_by(ev.at, ev.id)
                .limit(PAGE_SIZE)
                .offset(_offset(page))
            ).all()
        records = tuple(
            Record(
                when=as_utc(r.at) or r.at,
                title=f"Call {_call_ref(r.call_sid)}",
                facts=_event_facts(r.event, r.detail, r.language, labels),
            )
            for r in rows
        )
        return RecordPage("self_service", described, int(total), page, records)

    in_range = sa.and_(ev.at >= filters.start, ev.at < filters.end)
    person = sa.func.max(sa.case((ev.event.in_(PERSON_EVENTS), 1), else_=0)).label("person")
    per_call = (
        sa.select(
            ev.call_sid, sa.func.min(ev.at).label("first_at"), person, sa.func.count().label("n")
        )
        .where(in_range)
        .group_by(ev.call_sid)
        .subquery()
    )
    where = []
    if filters.hours:
        where.append(clock.hour(per_call.c.first_at).in_(sorted(filters.hours)))
    if filters.weekdays:
        where.append(clock.weekday(per_call.c.first_at).in_(sorted(filters.weekdays)))
    described = "Self-service calls"
    if extra.get("resolved") == "1":
        where.append(per_call.c.person == 0)
        described = "Self-service calls resolved without a person"
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(per_call).where(*where)
        ).scalar_one()
        calls = conn.execute(
            sa.select(per_call.c.call_sid, per_call.c.first_at, per_call.c.person, per_call.c.n)
            .where(*where)
            .order_by(per_call.c.first_at, per_call.c.call_sid)
            .limit(PAGE_SIZE)
            .offset(_offset(page))
        ).all()
        sids = [c.call_sid for c in calls]
        steps: dict[str, list[str]] = {sid: [] for sid in sids}
        if sids:
            for r in conn.execute(
                sa.select(ev.call_sid, ev.event, ev.detail)
                .where(ev.call_sid.in_(sids), in_range)
                .order_by(ev.at, ev.id)
            ):
                steps[r.call_sid].append(_step(r.event, r.detail, labels))
    records = tuple(
        Record(
            when=as_utc(c.first_at) or c.first_at,
            title=f"Call {_call_ref(c.call_sid)}",
            facts=(
                ("Reached a person", "yes" if c.person else "no"),
                ("What happened", "; ".join(steps.get(c.call_sid, []))),
            ),
        )
        for c in calls
    )
    return RecordPage("self_service", described, int(total), page, records)


def _step(event: str, detail: str | None, labels: Labels) -> str:
    words = labels.self_service_event(event)
    if not detail:
        return words
    if event == "menu_item":
        return f"{words}: {labels.menu_item(detail)}"
    if event == "language":
        return f"{words}: {labels.language(detail)}"
    if event in ("transfer", "crisis_words"):
        return f"{words}: {labels.line(detail)}"
    return f"{words}: {detail.replace('_', ' ')}"


def _event_facts(
    event: str, detail: str | None, language: str | None, labels: Labels
) -> tuple[tuple[str, str], ...]:
    facts = [("What happened", _step(event, detail, labels))]
    if language:
        facts.append(("Language", labels.language(language)))
    return tuple(facts)


def describe_kind(kind: str) -> str:
    """The records page's heading word."""
    return {"handoffs": "Handoffs", "callbacks": "Callbacks", "self_service": "Self-service calls"}[
        kind
    ]


def as_query(values: Mapping[str, Any]) -> dict[str, Any]:
    """Only the drill-down keys of a query string."""
    keys = ("reached", "reason", "outcome", "type", "at_hour", "on_day", "state", "source",
            "event", "detail", "resolved")  # fmt: skip
    return {k: v for k, v in values.items() if k in keys and v not in ("", None)}

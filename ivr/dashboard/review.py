"""What a QA reviewer reads about a flagged call: its handoffs with the decision-tree answers,
who was rung and what happened (local time, in words), the call-taker's notes, callbacks, the
self-service steps and the call's transcript tags. No phone number."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

import sqlalchemy as sa

from ivr import handoffs
from ivr.live import call_view
from ivr.reporting.labels import Labels
from ivr.reporting.qa_queue import QACall
from ivr.store.callbacks import as_utc
from ivr.store.tables import callbacks, self_service_events


@dataclass(frozen=True)
class Step:
    """A dated line (a self-service step, a callback's life)."""

    at: datetime | None
    text: str


@dataclass(frozen=True)
class ReviewFacts:
    """Everything shown beside the review form."""

    call: call_view.CallView | None
    callbacks: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    self_service: tuple[Step, ...]
    tags: tuple[str, ...]


def read(
    engine: sa.Engine,
    qa_call: QACall,
    questions: Mapping[str, str],
    labels: Labels,
    zone: tzinfo,
) -> ReviewFacts:
    """The facts of every record the call's flags point at."""
    live = None
    callback_facts = []
    steps: list[Step] = []
    for kind, ref in qa_call.records:
        if kind == "handoff" and ref.isdigit() and live is None:
            handoff = handoffs.get_handoff(engine, int(ref))
            if handoff is not None:
                call = handoffs.get_live_call(engine, handoff.live_call_id)
                if call is not None:
                    history = {h.id: handoffs.handoff_events(engine, h.id) for h in call.handoffs}
                    notes = call_view.read_notes(engine, call.id)
                    live = call_view.build(call, history, notes, questions, labels)
        elif kind == "callback" and ref.isdigit():
            with engine.connect() as conn:
                row = conn.execute(sa.select(callbacks).where(callbacks.c.id == int(ref))).first()
            if row is not None:
                callback_facts.append((f"Callback #{row.id}", _callback_facts(row, labels, zone)))
        elif kind == "call":
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(
                        self_service_events.c.at,
                        self_service_events.c.event,
                        self_service_events.c.detail,
                    )
                    .where(self_service_events.c.call_sid == ref)
                    .order_by(self_service_events.c.at, self_service_events.c.id)
                ).all()
            steps += [Step(as_utc(r.at), _step(r.event, r.detail, labels)) for r in rows]
    return ReviewFacts(
        call=live,
        callbacks=tuple(callback_facts),
        self_service=tuple(steps),
        tags=tuple(labels.tag(t) for t in transcript_tags(engine, qa_call.records)),
    )


def _callback_facts(row: sa.Row, labels: Labels, zone: tzinfo) -> tuple[tuple[str, str], ...]:
    facts = [
        ("Asked for by", labels.callback_source(row.source)),
        ("Status", labels.callback_status(row.status)),
    ]
    if row.helper_type:
        facts.append(("Helper type", labels.helper_type(row.helper_type)))
    for name, value in (
        ("Recorded", row.created_at),
        ("Due", row.due_at),
        ("Deadline", row.deadline_at),
    ):
        at = as_utc(value)
        if at is not None:
            facts.append((name, at.astimezone(zone).strftime("%a %d %b %Y %H:%M")))
    facts.append(("Language", labels.language(row.language)))
    return tuple(facts)


def _step(event: str, detail: str | None, labels: Labels) -> str:
    from ivr.dashboard.records import _step as words

    return words(event, detail, labels)


def transcript_tags(engine: sa.Engine, records: tuple[tuple[str, str], ...]) -> list[str]:
    """The tags understanding put on these records (ivr.store.qa_tags), when that is installed."""
    if not records or importlib.util.find_spec("ivr.store.qa_tags") is None:
        return []
    module = importlib.import_module("ivr.store.qa_tags")
    table = module.qa_tags
    conditions = [
        sa.and_(table.c.subject_kind == kind, table.c.subject_ref == ref) for kind, ref in records
    ]
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table.name):
            return []
        rows = conn.execute(sa.select(table.c.tag).where(sa.or_(*conditions))).all()
    return sorted({r[0] for r in rows})

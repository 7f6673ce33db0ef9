"""What a QA reviewer reads about a flagged call: its handoffs with the decision-tree answers,
who was rung and what happened (local time, in words), the call-taker's notes, callbacks, the
self-service steps and the call's transcript tags. No phone number."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

import sqlalchemy as sa

from ivr.flows import handoffs
from ivr.live import call_view
from ivr.reporting.labels import Labels
from ivr.reporting.qa_queue import QACall
from ivr.store.callback_records import as_utc
from ivr.store.qa_tags import qa_tags
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
    """The tags understanding put on these records (ivr.store.qa_tags), sorted."""
    return sorted({t for tags in tags_by_record(engine, records).values() for t in tags})


def tags_by_record(
    engine: sa.Engine, records: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], list[str]]:
    """{(kind, ref): tags} of the records given, in one query."""
    wanted = list(dict.fromkeys(records))
    if not wanted:
        return {}
    t = qa_tags.c
    out: dict[tuple[str, str], list[str]] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 200):
            chunk = wanted[start : start + 200]
            rows = conn.execute(
                sa.select(t.subject_kind, t.subject_ref, t.tag)
                .where(
                    sa.or_(*(sa.and_(t.subject_kind == k, t.subject_ref == r) for k, r in chunk))
                )
                .order_by(t.tag)
            ).all()
            for kind, ref, tag in rows:
                out.setdefault((kind, ref), []).append(tag)
    return out

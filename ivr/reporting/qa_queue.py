"""The QA queue as a reviewer works it: one row per call with all its reasons, mandated reviews
first, a page at a time, and the next call to review.

ivr.reporting.qa flags records (a handoff, a callback, a self-service call) once per reason; here the
flags of one call are gathered (every handoff of a live call counts as that call), ordered by
the most pressing reason, and a finding saved on the row is recorded on each of its flags.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.reporting import qa
from ivr.reporting.measures import Filters
from ivr.reporting.qa import QAItem, QAReason, SubjectKind

PRIORITY: dict[QAReason, int] = {
    QAReason.CRISIS_NOT_OFFERED: 0,
    QAReason.MENTAL_HEALTH_HANDOFF: 1,
    QAReason.DECLINED_OR_FALLBACK: 2,
    QAReason.CALLBACK_FAILED: 3,
    QAReason.CALLBACK_OVERDUE: 4,
    QAReason.RANDOM_SAMPLE: 5,
}
"""Most pressing first. The first two are reviews a state mandate requires (Minnesota: crisis
team offered or why not; mental-health, suicide and welfare calls monitored)."""

MANDATED = frozenset({QAReason.CRISIS_NOT_OFFERED, QAReason.MENTAL_HEALTH_HANDOFF})
"""Reasons whose review is required, not chosen."""

PAGE_SIZE = 25
"""Calls per page of the queue."""

QUEUE_LIMIT = 20_000
"""Most flags read for one view (a year of a large center is well under this)."""


@dataclass(frozen=True)
class QACall:
    """One call in the queue: its flags (one per record and reason), most pressing first."""

    key: str
    items: tuple[QAItem, ...]
    occurred_at: datetime
    priority: int

    @property
    def first(self) -> QAItem:
        """The flag the row links to (its most pressing one)."""
        return self.items[0]

    @property
    def reasons(self) -> tuple[QAReason, ...]:
        """Each reason once, most pressing first."""
        return tuple(dict.fromkeys(i.reason for i in self.items))

    @property
    def mandated(self) -> bool:
        """True when a mandate requires this review."""
        return any(r in MANDATED for r in self.reasons)

    @property
    def reviewed(self) -> bool:
        """True once every flag of the call has a finding."""
        return all(i.reviewed for i in self.items)

    @property
    def compliant(self) -> bool | None:
        """The finding: compliant only when every reviewed flag is (None before any review)."""
        found = [i.compliant for i in self.items if i.reviewed]
        if not found:
            return None
        return all(bool(c) for c in found)

    @property
    def helper_types(self) -> tuple[str, ...]:
        """Helper types of the call's flagged handoffs."""
        return tuple(dict.fromkeys(i.helper_type for i in self.items if i.helper_type))

    @property
    def records(self) -> tuple[tuple[str, str], ...]:
        """(kind, ref) of each record flagged, once."""
        return tuple(dict.fromkeys((i.kind.value, i.ref) for i in self.items))


def group_calls(items: Iterable[QAItem], call_of: Mapping[tuple[str, str], str]) -> list[QACall]:
    """Gather flags by call, most pressing call first (then the oldest)."""
    grouped: dict[str, list[QAItem]] = defaultdict(list)
    for item in items:
        key = call_of.get((item.kind.value, item.ref)) or f"{item.kind.value}:{item.ref}"
        grouped[key].append(item)
    calls = []
    for key, flags in grouped.items():
        flags.sort(key=lambda i: (PRIORITY[i.reason], i.occurred_at, i.id))
        calls.append(
            QACall(
                key=key,
                items=tuple(flags),
                occurred_at=min(i.occurred_at for i in flags),
                priority=PRIORITY[flags[0].reason],
            )
        )
    calls.sort(key=lambda c: (c.priority, c.occurred_at, c.key))
    return calls


def call_keys(engine: sa.Engine, items: Sequence[QAItem]) -> dict[tuple[str, str], str]:
    """Which call each flagged record belongs to: a handoff to its live call, a callback to the
    call it came from (when known), a self-service call to itself."""
    from ivr.store.handoff_tables import handoffs
    from ivr.store.tables import callbacks

    handoff_ids = sorted(
        {int(i.ref) for i in items if i.kind is SubjectKind.HANDOFF and i.ref.isdigit()}
    )
    callback_ids = sorted(
        {int(i.ref) for i in items if i.kind is SubjectKind.CALLBACK and i.ref.isdigit()}
    )
    out: dict[tuple[str, str], str] = {}
    with engine.connect() as conn:
        for chunk in _chunks(handoff_ids, 500):
            for hid, live_call_id in conn.execute(
                sa.select(handoffs.c.id, handoffs.c.live_call_id).where(handoffs.c.id.in_(chunk))
            ):
                out[("handoff", str(hid))] = f"live:{live_call_id}"
        for chunk in _chunks(callback_ids, 500):
            for cid, call_sid in conn.execute(
                sa.select(callbacks.c.id, callbacks.c.call_sid).where(callbacks.c.id.in_(chunk))
            ):
                if call_sid:
                    out[("callback", str(cid))] = f"call:{call_sid}"
    for item in items:
        if item.kind is SubjectKind.CALL:
            out[("call", item.ref)] = f"call:{item.ref}"
    return out


def _chunks(values: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, the number of calls in it, and the next call to review."""

    calls: tuple[QACall, ...]
    total: int
    page: int
    next_open: QACall | None

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // PAGE_SIZE))


def queue_page(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    *,
    show: str = "open",
    page: int = 1,
    tag: str | None = None,
) -> QueuePage:
    """The calls of the filters to show ('open', 'reviewed' or 'all'), one page of them;
    `tag` keeps the calls tagged so (suicide_self_harm, substance_use, ...)."""
    items = qa.list_queue(engine, program, filters, reviewed=None, limit=QUEUE_LIMIT, tag=tag)
    calls = group_calls(items, call_keys(engine, items))
    open_calls = [c for c in calls if not c.reviewed]
    if show == "open":
        chosen = open_calls
    elif show == "reviewed":
        chosen = [c for c in calls if c.reviewed]
    else:
        chosen = calls
    page = min(max(page, 1), max(1, -(-len(chosen) // PAGE_SIZE)))
    start = (page - 1) * PAGE_SIZE
    return QueuePage(
        calls=tuple(chosen[start : start + PAGE_SIZE]),
        total=len(chosen),
        page=page,
        next_open=open_calls[0] if open_calls else None,
    )


def call_of_item(engine: sa.Engine, item: QAItem) -> QACall:
    """Every flag of the call `item` belongs to: all its handoffs' flags, or the self-service
    call's flags with those of callbacks it asked for."""
    from ivr.store.handoff_tables import handoffs
    from ivr.store.qa_tables import qa_findings, qa_items
    from ivr.store.tables import callbacks

    keys = call_keys(engine, [item])
    key = keys.get((item.kind.value, item.ref)) or f"{item.kind.value}:{item.ref}"
    subjects: list[tuple[str, str]] = [(item.kind.value, item.ref)]
    with engine.connect() as conn:
        if key.startswith("live:"):
            live_call_id = int(key.split(":", 1)[1])
            subjects = [
                ("handoff", str(hid))
                for (hid,) in conn.execute(
                    sa.select(handoffs.c.id).where(handoffs.c.live_call_id == live_call_id)
                )
            ]
        elif key.startswith("call:"):
            sid = key.split(":", 1)[1]
            subjects = [("call", sid)] + [
                ("callback", str(cid))
                for (cid,) in conn.execute(
                    sa.select(callbacks.c.id).where(callbacks.c.call_sid == sid)
                )
            ]
        conditions = [
            sa.and_(qa_items.c.subject_kind == kind, qa_items.c.subject_ref == ref)
            for kind, ref in subjects
        ]
        rows = conn.execute(
            sa.select(
                qa_items,
                qa_findings.c.id.label("finding_id"),
                qa_findings.c.compliant,
                qa_findings.c.not_offered_reason,
                qa_findings.c.coaching_note,
                qa_findings.c.reviewer,
            )
            .select_from(qa_items.outerjoin(qa_findings, qa_findings.c.item_id == qa_items.c.id))
            .where(sa.or_(*conditions))
        ).all()
    items = [qa._item(r) for r in rows] or [item]
    return group_calls(items, {(i.kind.value, i.ref): key for i in items})[0]


def record_call_finding(
    engine: sa.Engine,
    call: QACall,
    *,
    reviewer: str,
    compliant: bool,
    not_offered_reason: str | None,
    coaching_note: str | None,
    now: datetime,
) -> int:
    """Record one finding on every flag of the call; returns how many flags it covers."""
    for item in call.items:
        qa.record_finding(
            engine,
            item.id,
            reviewer=reviewer,
            compliant=compliant,
            not_offered_reason=not_offered_reason,
            coaching_note=coaching_note,
            now=now,
        )
    return len(call.items)

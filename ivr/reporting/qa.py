"""Quality assurance: which calls go to the review queue, the findings, and their rates.

`refresh_queue` flags records of a date range (idempotent: a record is flagged once per
reason); a reviewer records one finding per flagged item; `finding_rates` reports them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from ivr.config.program import ProgramConfig
from ivr.decisions.handoffs import ATTEMPT_FAILURES, HandoffStatus
from ivr.language.lexicon import Lexicon, PhraseError, compile_phrase
from ivr.language.text import Utterance
from ivr.reporting.measures import Filters, Table, clock_for
from ivr.store.callback_records import as_utc
from ivr.store.qa_tables import qa_findings, qa_items
from ivr.store.qa_tags import tagged
from ivr.store.tables import callbacks, self_service_events

NOTE_MAX_CHARS = 2000
"""Longest coaching note kept."""


class QAReason(str, Enum):
    """Why a call is in the review queue."""

    CRISIS_NOT_OFFERED = "crisis_not_offered"
    MENTAL_HEALTH_HANDOFF = "mental_health_handoff"
    DECLINED_OR_FALLBACK = "declined_or_fallback"
    CALLBACK_OVERDUE = "callback_overdue"
    CALLBACK_FAILED = "callback_failed"
    RANDOM_SAMPLE = "random_sample"
    CRISIS_TRANSFER_FAILED = "crisis_transfer_failed"
    URGENT_REPORT = "urgent_report"


REASON_LABELS = {
    QAReason.CRISIS_NOT_OFFERED: "crisis words heard, no crisis helper offered",
    QAReason.MENTAL_HEALTH_HANDOFF: "mental-health, suicide or welfare handoff",
    QAReason.DECLINED_OR_FALLBACK: "handoff declined or fallen back",
    QAReason.CALLBACK_OVERDUE: "callback overdue",
    QAReason.CALLBACK_FAILED: "callback failed",
    QAReason.RANDOM_SAMPLE: "random sample",
    QAReason.CRISIS_TRANSFER_FAILED: "crisis line did not answer; backup line dialed",
    QAReason.URGENT_REPORT: "crisis words in a recorded report",
}
"""What the queue shows for each reason."""


class SubjectKind(str, Enum):
    """What a flagged item points at."""

    HANDOFF = "handoff"
    CALLBACK = "callback"
    CALL = "call"


class NotOfferedReason(str, Enum):
    """Why a crisis team was not offered (Travis' Law: 'offered, or why not')."""

    WEAPON = "weapon"
    IMMEDIATE_DANGER = "immediate_danger"
    MEDICAL_EMERGENCY = "medical_emergency"
    NO_TEAM_ON_DUTY = "no_team_on_duty"
    CALLER_DECLINED = "caller_declined"
    OUTSIDE_SERVICE_AREA = "outside_service_area"
    NOT_CONSIDERED = "not_considered"
    OTHER = "other"


class QAError(ValueError):
    """A finding was refused (unknown item, bad reason code)."""


@dataclass(frozen=True)
class Flag:
    """A record that should be reviewed, before it is stored."""

    kind: SubjectKind
    ref: str
    reason: QAReason
    occurred_at: datetime
    call_sid: str | None = None
    jurisdiction: str | None = None
    helper_type: str | None = None


@dataclass(frozen=True)
class QAItem:
    """A flagged item with its finding, when reviewed."""

    id: int
    kind: SubjectKind
    ref: str
    reason: QAReason
    occurred_at: datetime
    call_sid: str | None
    jurisdiction: str | None
    helper_type: str | None
    reviewed: bool
    compliant: bool | None
    not_offered_reason: str | None
    coaching_note: str | None
    reviewer: str | None


def sampled(ref: str, rate: float) -> bool:
    """A stable pseudo-random draw: the same record is always in (or out of) the sample."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(ref.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


# ------------------------------------------------------------------ what gets flagged


def self_service_flags(
    engine: sa.Engine, program: ProgramConfig, start: datetime, end: datetime
) -> list[Flag]:
    """Crisis words with no transfer to their line; a random sample of the other calls."""
    ev = self_service_events
    later = ev.alias("later")
    no_transfer = ~sa.exists(
        sa.select(later.c.id).where(
            later.c.call_sid == ev.c.call_sid,
            later.c.event == "transfer",
            later.c.detail == ev.c.detail,
        )
    )
    in_range = sa.and_(ev.c.at >= start, ev.c.at < end)
    with engine.connect() as conn:
        crisis = conn.execute(
            sa.select(ev.c.call_sid, sa.func.min(ev.c.at))
            .where(in_range, ev.c.event == "crisis_words", no_transfer)
            .group_by(ev.c.call_sid)
        ).all()
        calls = conn.execute(
            sa.select(ev.c.call_sid, sa.func.min(ev.c.at)).where(in_range).group_by(ev.c.call_sid)
        ).all()
        flagged_events = conn.execute(
            sa.select(ev.c.call_sid, ev.c.event, sa.func.min(ev.c.at))
            .where(in_range, ev.c.event.in_(list(_EVENT_REASONS)))
            .group_by(ev.c.call_sid, ev.c.event)
        ).all()
    own = program.self_service_jurisdiction
    flags = [
        Flag(SubjectKind.CALL, sid, QAReason.CRISIS_NOT_OFFERED, as_utc(at) or start, sid, own)
        for sid, at in crisis
    ]
    flags += [
        Flag(SubjectKind.CALL, sid, _EVENT_REASONS[event], as_utc(at) or start, sid, own)
        for sid, event, at in flagged_events
    ]
    flagged = {f.ref for f in flags}
    rate = program.qa.random_sample_rate
    flags += [
        Flag(SubjectKind.CALL, sid, QAReason.RANDOM_SAMPLE, as_utc(at) or start, sid, own)
        for sid, at in calls
        if sid not in flagged and sampled(f"call:{sid}", rate)
    ]
    return flags


_EVENT_REASONS = {
    "crisis_transfer_failed": QAReason.CRISIS_TRANSFER_FAILED,
    "report_urgent": QAReason.URGENT_REPORT,
}
"""Self-service events that put their call in the review queue."""


def callback_flags(engine: sa.Engine, start: datetime, end: datetime, now: datetime) -> list[Flag]:
    """Callbacks created in the range that failed, or are still open past their deadline."""
    cb = callbacks
    failed = cb.c.status == "failed"
    overdue = sa.and_(cb.c.status.in_(("pending", "dialing")), cb.c.deadline_at < now)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(cb.c.id, cb.c.call_sid, cb.c.helper_type, cb.c.created_at, failed).where(
                cb.c.created_at >= start, cb.c.created_at < end, sa.or_(failed, overdue)
            )
        ).all()
    return [
        Flag(
            SubjectKind.CALLBACK,
            str(row.id),
            QAReason.CALLBACK_FAILED if row[4] else QAReason.CALLBACK_OVERDUE,
            as_utc(row.created_at) or start,
            row.call_sid,
            None,
            row.helper_type,
        )
        for row in rows
    ]


FALLBACK_EVENTS = tuple(e.value for e in ATTEMPT_FAILURES)
"""Handoff events that mean a helper did not take the call (declined, no answer, busy...)."""


def handoff_flags(
    engine: sa.Engine,
    program: ProgramConfig,
    start: datetime,
    end: datetime,
    crisis_words: tuple[str, ...] = (),
) -> list[Flag]:
    """Mental-health/suicide/welfare handoffs, declined or fallen-back ones, crisis words with
    no crisis helper on the call, and a random sample of the rest."""
    from ivr.store.handoff_tables import handoff_events, handoffs

    h = handoffs.c
    fell_back = sa.or_(
        h.attempt > 1,  # a later member of the chain was dialed
        h.status == HandoffStatus.RETURNED.value,
        sa.exists(
            sa.select(handoff_events.c.id).where(
                handoff_events.c.handoff_id == h.id, handoff_events.c.event.in_(FALLBACK_EVENTS)
            )
        ),
    ).label("fell_back")
    jurisdiction = h.get("jurisdiction")
    columns = [h.id, h.live_call_id, h.helper_type, h.created_at, h.reason, fell_back]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*columns, jurisdiction if jurisdiction is not None else sa.null()).where(
                h.created_at >= start, h.created_at < end
            )
        ).all()
    crisis_types = set(program.crisis_helper_types)
    review_all = set(program.qa.review_all_helper_types)
    crisis_phrases = _phrases(crisis_words)
    calls_with_crisis_helper = {r.live_call_id for r in rows if r.helper_type in crisis_types}
    flags: list[Flag] = []
    for row in rows:
        ref = str(row.id)
        at = as_utc(row.created_at) or start
        reasons: list[QAReason] = []
        if row.helper_type in review_all:
            reasons.append(QAReason.MENTAL_HEALTH_HANDOFF)
        if row.fell_back:
            reasons.append(QAReason.DECLINED_OR_FALLBACK)
        text = (row.reason or "").lower()
        if (
            crisis_phrases.size
            and row.live_call_id not in calls_with_crisis_helper
            and crisis_phrases.find(Utterance.read(text))
        ):
            reasons.append(QAReason.CRISIS_NOT_OFFERED)
        if not reasons and sampled(f"handoff:{ref}", program.qa.random_sample_rate):
            reasons.append(QAReason.RANDOM_SAMPLE)
        flags += [
            Flag(SubjectKind.HANDOFF, ref, reason, at, None, row[-1], row.helper_type)
            for reason in reasons
        ]
    return flags


def _phrases(crisis_words: tuple[str, ...]) -> Lexicon[None]:
    """menus.yaml's crisis phrases, read in both languages, to find them in handoff reasons."""
    entries = []
    for text in crisis_words:
        for lang in ("en", "es"):
            try:
                compile_phrase(text, lang)
            except PhraseError:
                continue
            entries.append((None, text, lang))
    return Lexicon(entries)


def refresh_queue(
    engine: sa.Engine,
    program: ProgramConfig,
    start: datetime,
    end: datetime,
    now: datetime,
    crisis_words: tuple[str, ...] = (),
) -> int:
    """Flag every record of [start, end) that needs review; returns how many were new."""
    flags = self_service_flags(engine, program, start, end)
    flags += callback_flags(engine, start, end, now)
    flags += handoff_flags(engine, program, start, end, crisis_words)
    return store_flags(engine, flags, now)


def store_flags(engine: sa.Engine, flags: Iterable[Flag], now: datetime) -> int:
    """Insert flags not stored yet (one per record and reason)."""
    wanted = {(f.kind.value, f.ref, f.reason.value): f for f in flags}
    if not wanted:
        return 0
    with engine.begin() as conn:
        refs = sorted({ref for _, ref, _ in wanted})
        existing: set[tuple[str, str, str]] = set()
        for chunk in _chunks(refs, 500):
            existing |= {
                (r[0], r[1], r[2])
                for r in conn.execute(
                    sa.select(
                        qa_items.c.subject_kind, qa_items.c.subject_ref, qa_items.c.reason
                    ).where(qa_items.c.subject_ref.in_(chunk))
                )
            }
        new = [
            {
                "subject_kind": f.kind.value,
                "subject_ref": f.ref,
                "reason": f.reason.value,
                "call_sid": f.call_sid,
                "jurisdiction": f.jurisdiction,
                "helper_type": f.helper_type,
                "occurred_at": f.occurred_at,
                "flagged_at": now,
            }
            for key, f in wanted.items()
            if key not in existing
        ]
        if new:
            conn.execute(qa_items.insert(), new)
    return len(new)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


# ------------------------------------------------------------------ the queue and findings


def _where(engine: sa.Engine, program: ProgramConfig, filters: Filters) -> list[Any]:
    clock = clock_for(engine, program, filters)
    where = clock.conditions(qa_items.c.occurred_at, filters)
    if filters.jurisdiction:
        where.append(qa_items.c.jurisdiction == filters.jurisdiction)
    if filters.helper_type:
        where.append(qa_items.c.helper_type == filters.helper_type)
    return where


def tag_condition(tag: str | None) -> list[Any]:
    """WHERE conditions keeping the items whose call or handoff carries `tag` (none: all)."""
    if not tag:
        return []
    return [tagged(qa_items.c.subject_kind, qa_items.c.subject_ref, tag)]


def list_queue(
    engine: sa.Engine,
    program: ProgramConfig,
    filters: Filters,
    *,
    reviewed: bool | None = False,
    limit: int = 200,
    tag: str | None = None,
) -> list[QAItem]:
    """Flagged items in the filters, oldest first; `reviewed` None lists both; `tag` keeps
    the items tagged so (behavioral_health, suicide_self_harm, ...)."""
    where = _where(engine, program, filters) + tag_condition(tag)
    if reviewed is True:
        where.append(qa_findings.c.id.is_not(None))
    elif reviewed is False:
        where.append(qa_findings.c.id.is_(None))
    query = (
        sa.select(
            qa_items,
            qa_findings.c.id.label("finding_id"),
            qa_findings.c.compliant,
            qa_findings.c.not_offered_reason,
            qa_findings.c.coaching_note,
            qa_findings.c.reviewer,
        )
        .select_from(qa_items.outerjoin(qa_findings, qa_findings.c.item_id == qa_items.c.id))
        .where(*where)
        .order_by(qa_items.c.occurred_at, qa_items.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [_item(r) for r in rows]


def get_item(engine: sa.Engine, item_id: int) -> QAItem | None:
    """One flagged item with its finding."""
    query = (
        sa.select(
            qa_items,
            qa_findings.c.id.label("finding_id"),
            qa_findings.c.compliant,
            qa_findings.c.not_offered_reason,
            qa_findings.c.coaching_note,
            qa_findings.c.reviewer,
        )
        .select_from(qa_items.outerjoin(qa_findings, qa_findings.c.item_id == qa_items.c.id))
        .where(qa_items.c.id == item_id)
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return _item(row) if row else None


def _item(row: Any) -> QAItem:
    return QAItem(
        id=row.id,
        kind=SubjectKind(row.subject_kind),
        ref=row.subject_ref,
        reason=QAReason(row.reason),
        occurred_at=as_utc(row.occurred_at) or row.occurred_at,
        call_sid=row.call_sid,
        jurisdiction=row.jurisdiction,
        helper_type=row.helper_type,
        reviewed=row.finding_id is not None,
        compliant=None if row.compliant is None else bool(row.compliant),
        not_offered_reason=row.not_offered_reason,
        coaching_note=row.coaching_note,
        reviewer=row.reviewer,
    )


def record_finding(
    engine: sa.Engine,
    item_id: int,
    *,
    reviewer: str,
    compliant: bool,
    not_offered_reason: str | None,
    coaching_note: str | None,
    now: datetime,
) -> None:
    """Record (or replace) the finding on a flagged item."""
    reason = (not_offered_reason or "").strip() or None
    if reason is not None and reason not in {r.value for r in NotOfferedReason}:
        raise QAError(f"unknown reason code {reason!r}")
    note = (coaching_note or "").strip()[:NOTE_MAX_CHARS] or None
    values = {
        "reviewer": reviewer[:32],
        "compliant": bool(compliant),
        "not_offered_reason": reason,
        "coaching_note": note,
        "reviewed_at": now,
    }
    with engine.begin() as conn:
        if conn.execute(sa.select(qa_items.c.id).where(qa_items.c.id == item_id)).first() is None:
            raise QAError("no such review item")
        updated = conn.execute(
            qa_findings.update().where(qa_findings.c.item_id == item_id).values(**values)
        ).rowcount
        if not updated:
            conn.execute(qa_findings.insert().values(item_id=item_id, **values))


@dataclass(frozen=True)
class FindingRates:
    """Review counts and rates per flag reason."""

    flagged: dict[str, int]
    reviewed: dict[str, int]
    compliant: dict[str, int]
    not_offered: dict[str, int]

    def rate(self, reason: str | None = None) -> float | None:
        """Compliant share of reviewed items (all reasons when `reason` is None)."""
        reviewed = self.reviewed.get(reason, 0) if reason else sum(self.reviewed.values())
        good = self.compliant.get(reason, 0) if reason else sum(self.compliant.values())
        return good / reviewed if reviewed else None


def finding_rates(engine: sa.Engine, program: ProgramConfig, filters: Filters) -> FindingRates:
    """Flagged, reviewed and compliant counts per reason, and reasons a team was not offered."""
    where = _where(engine, program, filters)
    joined = qa_items.outerjoin(qa_findings, qa_findings.c.item_id == qa_items.c.id)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                qa_items.c.reason,
                qa_findings.c.compliant,
                qa_findings.c.not_offered_reason,
                sa.func.count(qa_items.c.id),
                sa.func.count(qa_findings.c.id),
            )
            .select_from(joined)
            .where(*where)
            .group_by(qa_items.c.reason, qa_findings.c.compliant, qa_findings.c.not_offered_reason)
        ).all()
    flagged: dict[str, int] = defaultdict(int)
    reviewed: dict[str, int] = defaultdict(int)
    compliant: dict[str, int] = defaultdict(int)
    not_offered: dict[str, int] = defaultdict(int)
    for reason, is_compliant, why, items, findings in rows:
        flagged[reason] += items
        if findings:
            reviewed[reason] += findings
        if findings and is_compliant:
            compliant[reason] += findings
        if findings and why:
            not_offered[why] += findings
    return FindingRates(dict(flagged), dict(reviewed), dict(compliant), dict(not_offered))


def rate_tables(rates: FindingRates) -> list[Table]:
    """QA findings as dashboard tables (rates as percentages)."""
    rows: list[tuple[Any, ...]] = []
    for reason in QAReason:
        key = reason.value
        if key not in rates.flagged:
            continue
        rows.append(
            (
                key,
                REASON_LABELS[reason],
                rates.flagged[key],
                rates.reviewed.get(key, 0),
                rates.compliant.get(key, 0),
                _pct(rates.rate(key)),
            )
        )
    total_flagged = sum(rates.flagged.values())
    rows.append(
        (
            "all",
            "all flagged calls",
            total_flagged,
            sum(rates.reviewed.values()),
            sum(rates.compliant.values()),
            _pct(rates.rate()),
        )
    )
    findings = Table(
        "qa_findings",
        "QA findings",
        ("reason", "label", "flagged", "reviewed", "compliant", "compliant %"),
        rows,
    )
    why = Table(
        "qa_not_offered",
        "Reasons a crisis team was not offered",
        ("reason", "findings"),
        sorted(rates.not_offered.items(), key=lambda kv: (-kv[1], kv[0])),
    )
    return [findings, why]


def _pct(share: float | None) -> str:
    return "" if share is None else f"{share * 100:.1f}"

"""What the supervisor's live wall shows, read in a few indexed queries and built by pure code.

`read_inputs` does the SQL (live calls and their handoffs, the 311 queue, open callbacks,
today's answer times); `build_wall` turns those rows, the roster and the clock into a `Wall`
without touching Flask or the database, so every rule here is tested on plain values.

A wall carries instants (when a call started waiting, when a handoff was asked for), never
"seconds elapsed": the page ticks elapsed times itself, so the wall only changes - and its
ETag with it - when something happens (a call arrives, a helper answers, a callback falls
overdue, a shift changes).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ivr.config.program import AnswerTarget, ProgramConfig
from ivr.config.roster import Roster
from ivr.decisions import routing
from ivr.decisions.handoffs import HandoffStatus, LiveCallStatus, Origin
from ivr.reporting.figures import seconds_between
from ivr.reporting.labels import Labels
from ivr.store.callback_records import as_utc
from ivr.store.tables import callbacks, self_service_events

QUEUE_WAIT_HORIZON = timedelta(hours=2)
"""A 311 caller counts as waiting only this long after joining the queue without leaving it
(Twilio always reports the end of an Enqueue; this bounds a report that never arrived)."""

QUEUE_JOINED = "to_person"
"""Self-service event: the caller was put in the 311 agent queue."""

QUEUE_ENDED = ("queue_left", "queue_callback")
"""Self-service events: the caller's wait in the 311 queue ended (answered, hung up, left)."""

RINGING_STATUSES = frozenset(
    {
        HandoffStatus.REQUESTED,
        HandoffStatus.DIALING,
        HandoffStatus.RINGING,
        HandoffStatus.SCREENING,
        HandoffStatus.FALLING_BACK,
        HandoffStatus.ACCEPTED,
    }
)
"""A helper is being sought: dialed, ringing, hearing the summary, or joining."""

IN_PROGRESS_STATUSES = RINGING_STATUSES | {HandoffStatus.CONNECTED}
"""Handoffs the wall lists: still ringing, or connected and not over."""

OPEN_CALL_STATES = tuple(s.value for s in LiveCallStatus if s is not LiveCallStatus.ENDED)
"""Live call states of a call still held in a conference."""

OPEN_CALLBACK_STATES = ("pending", "dialing")
"""Callbacks that still owe someone a call."""

PLANNER_BOUND = timedelta(days=1)
"""How far past now the wall's time ranges reach (records stamped ahead by a skewed clock).
The upper bound is for SQLite's planner: with `at >= since` alone it read the grouping
column's index instead, every row of a year (4-9 s a poll at 10M handoff events)."""


# ------------------------------------------------------------------ what the wall shows


@dataclass(frozen=True)
class WaitingCall:
    """A caller waiting for a person: in the intake conference, or in the 311 queue."""

    key: str
    where: str
    since: datetime
    call_id: int | None = None
    jurisdiction: str = ""


@dataclass(frozen=True)
class HandoffRow:
    """A handoff still ringing or connected."""

    handoff_id: int
    call_id: int
    helper_type: str
    status: str
    ringing: bool
    asked_at: datetime
    status_since: datetime
    member: str
    attempt: int
    call_taker: str


@dataclass(frozen=True)
class Staffing:
    """One helper type now: who is on duty, who is busy on a handoff, the next shift change."""

    helper_type: str
    label: str
    on_duty: tuple[str, ...]
    busy: tuple[str, ...]
    free: tuple[str, ...]
    next_change: datetime | None
    always_on: bool = False


@dataclass(frozen=True)
class CallbackCounts:
    """Open callbacks: due now (their time has come), overdue (past their deadline)."""

    open: int
    due: int
    overdue: int
    failed_waiting: int
    oldest_overdue_deadline: datetime | None
    next_due: datetime | None


@dataclass(frozen=True)
class TargetResult:
    """Today's share of answers within one target, and whether it is below the target."""

    within_seconds: int
    target_pct: float
    actual_pct: float | None
    below: bool


@dataclass(frozen=True)
class AnswerRow:
    """Today's answer times of one helper type (or of all, `helper_type` "")."""

    helper_type: str
    label: str
    answered: int
    targets: tuple[TargetResult, ...]

    @property
    def below(self) -> bool:
        """True when any target is missed."""
        return any(t.below for t in self.targets)


@dataclass(frozen=True)
class Wall:
    """Everything on the live wall at one moment."""

    waiting: tuple[WaitingCall, ...]
    handoffs: tuple[HandoffRow, ...]
    staffing: tuple[Staffing, ...]
    callbacks: CallbackCounts
    answers: tuple[AnswerRow, ...]
    today: str
    longest_wait_since: datetime | None = None
    breaches: int = 0
    live_calls: int = 0

    def version(self) -> str:
        """A short hash of the content: the same wall gives the same ETag. (The dataclasses'
        repr is deterministic and several times cheaper than asdict + JSON at 200 calls.)"""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:32]


# ------------------------------------------------------------------ what the database holds


@dataclass(frozen=True)
class HandoffNow:
    """The columns of a handoff in progress the wall needs (no answers, no numbers)."""

    id: int
    live_call_id: int
    helper_type: str
    status: HandoffStatus
    member_id: str | None
    attempt: int
    call_taker_staff_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LiveNow:
    """A call held in a conference now, with its handoffs in progress."""

    id: int
    origin: Origin
    status: LiveCallStatus
    created_at: datetime
    jurisdiction: str | None
    handoffs: tuple[HandoffNow, ...] = ()


def read_live(conn: sa.Connection) -> list[LiveNow]:
    """Calls not ended, oldest first, each with its handoffs still ringing or connected: two
    narrow indexed reads (the console's list parses every handoff's answers and chain)."""
    from ivr.store.handoff_tables import handoffs, live_calls

    lc, h = live_calls.c, handoffs.c
    calls = conn.execute(
        sa.select(lc.id, lc.origin, lc.status, lc.created_at, lc.jurisdiction)
        # IN over the open states uses the status index; "!= ended" read every call ever
        # made (2M rows at 10M handoff events: 0.4 s a poll on PostgreSQL)
        .where(lc.status.in_(OPEN_CALL_STATES))
        .order_by(lc.created_at, lc.id)
    ).all()
    ids = [c.id for c in calls]
    found: dict[int, list[HandoffNow]] = defaultdict(list)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        for r in conn.execute(
            sa.select(
                h.id,
                h.live_call_id,
                h.helper_type,
                h.status,
                h.member_id,
                h.attempt,
                h.call_taker_staff_id,
                h.created_at,
                h.updated_at,
            ).where(
                h.live_call_id.in_(chunk),
                h.status.in_([s.value for s in IN_PROGRESS_STATUSES]),
            )
        ):
            found[r.live_call_id].append(
                HandoffNow(
                    r.id,
                    r.live_call_id,
                    r.helper_type,
                    HandoffStatus(r.status),
                    r.member_id,
                    int(r.attempt or 0),
                    r.call_taker_staff_id,
                    as_utc(r.created_at) or r.created_at,
                    as_utc(r.updated_at) or r.updated_at,
                )
            )
    return [
        LiveNow(
            c.id,
            Origin(c.origin),
            LiveCallStatus(c.status),
            as_utc(c.created_at) or c.created_at,
            c.jurisdiction,
            tuple(found.get(c.id, ())),
        )
        for c in calls
    ]


@dataclass(frozen=True)
class Inputs:
    """Rows the wall is built from (read by `read_inputs`, or made up in a test)."""

    live_calls: Sequence[LiveNow]
    queue_joins: Mapping[str, datetime]
    callbacks: CallbackCounts
    answer_seconds: Mapping[str, Mapping[int, int]] = field(default_factory=dict)


def read_inputs(engine: sa.Engine, program: ProgramConfig, now: datetime) -> Inputs:
    """Live calls with their handoffs, callers in the 311 queue, callbacks, today's answers."""
    # one connection for the four reads: each checkout pings the server and each return rolls
    # back, two round trips apiece (~8 ms of a poll on the loaded bench machine)
    with engine.connect() as conn:
        return Inputs(
            live_calls=read_live(conn),
            queue_joins=queue_waiting(conn, now),
            callbacks=callback_counts(conn, now),
            answer_seconds=answer_seconds_since(conn, local_midnight(program, now)),
        )


def local_midnight(program: ProgramConfig, now: datetime) -> datetime:
    """The start of today in the program's time zone, in UTC."""
    local = now.astimezone(program.zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def queue_waiting(conn: sa.Connection, now: datetime) -> dict[str, datetime]:
    """Self-service calls in the 311 queue now: {call SID: when it joined}."""
    ev = self_service_events.c
    since = now - QUEUE_WAIT_HORIZON
    rows = conn.execute(
        sa.select(ev.call_sid, ev.event, sa.func.max(ev.at))
        .where(
            ev.at >= since,
            ev.at < now + PLANNER_BOUND,
            ev.event.in_((QUEUE_JOINED, *QUEUE_ENDED)),
        )
        .group_by(ev.call_sid, ev.event)
    ).all()
    return waiting_from_events((sid, event, as_utc(at)) for sid, event, at in rows)


def waiting_from_events(
    rows: Iterable[tuple[str, str, datetime | None]],
) -> dict[str, datetime]:
    """From (call SID, event, last time) rows: calls whose last join came after any end."""
    joined: dict[str, datetime] = {}
    ended: dict[str, datetime] = {}
    for sid, event, at in rows:
        if at is None:
            continue
        target = joined if event == QUEUE_JOINED else ended
        if sid not in target or at > target[sid]:
            target[sid] = at
    return {sid: at for sid, at in joined.items() if sid not in ended or ended[sid] < at}


OPEN_CALLBACKS_WHERE = "status IN ({})".format(", ".join(f"'{s}'" for s in OPEN_CALLBACK_STATES))
"""`OPEN_CALLBACK_STATES` as the partial index `ix_callbacks_open_deadline` spells it (migration
0018): SQLite uses a partial index only when the query's WHERE holds its WHERE word for word."""

FAILED_NOT_CLOSED_WHERE = "status = 'failed' AND closed_at IS NULL"
"""Failed callbacks nobody has closed, as `ix_callbacks_failed_not_closed` spells it."""


def callback_counts(conn: sa.Connection, now: datetime) -> CallbackCounts:
    """Open callbacks: how many, due, overdue, failed and not closed; oldest and next times.
    Each figure is one range of a partial index holding only open (or failed, unclosed) rows
    (migration 0018), so a poll never reads the callbacks done and closed and never tests each
    open row against `now`. The open ones are those past their deadline, before it, or without
    one; the due ones are the open ones minus those whose time is still ahead (due later, or no
    due time and made later). Only the overdue and the failed ranges grow with neglect."""
    cb = callbacks.c
    is_open = sa.text(OPEN_CALLBACKS_WHERE)
    count = sa.func.count()

    def part(*columns: Any, where: Any) -> Any:
        return sa.select(*columns).select_from(callbacks).where(where).subquery()

    overdue = part(count.label("n"), sa.func.min(cb.deadline_at).label("oldest"),
                   where=sa.and_(is_open, cb.deadline_at < now))  # fmt: skip
    on_time = part(count.label("n"), where=sa.and_(is_open, cb.deadline_at >= now))
    no_deadline = part(count.label("n"), where=sa.and_(is_open, cb.deadline_at.is_(None)))
    later = part(count.label("n"), sa.func.min(cb.due_at).label("next"),
                 where=sa.and_(is_open, cb.due_at > now))  # fmt: skip
    later_undated = part(count.label("n"),
                         where=sa.and_(is_open, cb.due_at.is_(None), cb.created_at > now))  # fmt: skip
    failed = part(count.label("n"), where=sa.text(FAILED_NOT_CLOSED_WHERE))
    row = conn.execute(
        sa.select(
            overdue.c.n,
            overdue.c.oldest,
            on_time.c.n,
            no_deadline.c.n,
            later.c.n,
            later.c.next,
            later_undated.c.n,
            failed.c.n,
        ).select_from(
            overdue.join(on_time, sa.true())
            .join(no_deadline, sa.true())
            .join(later, sa.true())
            .join(later_undated, sa.true())
            .join(failed, sa.true())
        )
    ).one()
    overdue_n, oldest, on_time_n, no_deadline_n, later_n, next_due, later_undated_n, failed_n = row
    open_now = int(overdue_n) + int(on_time_n) + int(no_deadline_n)
    return CallbackCounts(
        open=open_now,
        due=open_now - int(later_n) - int(later_undated_n),
        overdue=int(overdue_n),
        failed_waiting=int(failed_n),
        oldest_overdue_deadline=as_utc(_as_datetime(oldest)),
        next_due=as_utc(_as_datetime(next_due)),
    )


def _as_datetime(value: Any) -> datetime | None:
    """MIN over a CASE loses SQLAlchemy's type on SQLite: parse the stored text back."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def answer_seconds_since(conn: sa.Connection, since: datetime) -> dict[str, dict[int, int]]:
    """{helper type: {seconds to accept: handoffs}} for handoffs asked for since `since`
    (local midnight: a day at most)."""
    from ivr.store.handoff_tables import handoffs

    h = handoffs.c
    answer = seconds_between(conn.engine, h.accepted_at, h.created_at).label("answer")
    rows = conn.execute(
        sa.select(h.helper_type, answer, sa.func.count())
        .where(
            h.created_at >= since,
            h.created_at < since + timedelta(days=1) + PLANNER_BOUND,
            h.accepted_at.is_not(None),
        )
        .group_by(h.helper_type, answer)
    ).all()
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for helper_type, seconds, count in rows:
        value = max(int(seconds), 0)
        out[helper_type][value] = out[helper_type].get(value, 0) + int(count)
    return dict(out)


# ------------------------------------------------------------------ the rules


def build_wall(
    inputs: Inputs, roster: Roster, program: ProgramConfig, labels: Labels, now: datetime
) -> Wall:
    """The wall for `now`: waiting calls (longest first), handoffs, staffing, callbacks, answers."""
    waiting = waiting_calls(inputs.live_calls, inputs.queue_joins, labels)
    rows = handoff_rows(inputs.live_calls, labels)
    busy_members = {r.member_id for r in _active(inputs.live_calls) if r.member_id}
    staff = staffing(roster, labels, busy_members, now)
    answers = answer_rows(inputs.answer_seconds, program.answer_targets, labels)
    return Wall(
        waiting=waiting,
        handoffs=rows,
        staffing=staff,
        callbacks=inputs.callbacks,
        answers=answers,
        today=now.astimezone(program.zone).date().isoformat(),
        longest_wait_since=waiting[0].since if waiting else None,
        breaches=sum(1 for a in answers for t in a.targets if t.below)
        + (1 if inputs.callbacks.overdue else 0),
        live_calls=len(inputs.live_calls),
    )


def waiting_calls(
    live_calls: Iterable[LiveNow], queue_joins: Mapping[str, datetime], labels: Labels
) -> tuple[WaitingCall, ...]:
    """Intake callers no call-taker has picked up yet, and 311 callers in the queue; the
    longest wait first."""
    out = [
        WaitingCall(
            key=f"call-{call.id}",
            where=f"{labels.origin(call.origin.value)} conference",
            since=call.created_at,
            call_id=call.id,
            jurisdiction=labels.jurisdiction(call.jurisdiction),
        )
        for call in live_calls
        if call.status is LiveCallStatus.WAITING
    ]
    out += [
        WaitingCall(key=f"queue-{_short(sid)}", where="311 queue", since=at)
        for sid, at in queue_joins.items()
    ]
    return tuple(sorted(out, key=lambda w: (w.since, w.key)))


def _short(call_sid: str) -> str:
    """A stable, non-identifying key for a queued call (the SID itself stays off the page)."""
    return hashlib.sha256(call_sid.encode()).hexdigest()[:12]


def _active(live_calls: Iterable[LiveNow]) -> list[HandoffNow]:
    return [
        h
        for call in live_calls
        if call.status is not LiveCallStatus.ENDED
        for h in call.handoffs
        if h.status in IN_PROGRESS_STATUSES
    ]


def handoff_rows(live_calls: Iterable[LiveNow], labels: Labels) -> tuple[HandoffRow, ...]:
    """Handoffs still ringing or connected: the ones still ringing first, oldest first."""
    rows = [
        HandoffRow(
            handoff_id=h.id,
            call_id=h.live_call_id,
            helper_type=labels.helper_type(h.helper_type),
            status=labels.handoff_status(h.status.value),
            ringing=h.status in RINGING_STATUSES,
            asked_at=h.created_at,
            status_since=h.updated_at,
            member=labels.member(h.member_id) if h.member_id else "",
            attempt=h.attempt,
            call_taker=h.call_taker_staff_id or "",
        )
        for h in _active(live_calls)
    ]
    return tuple(sorted(rows, key=lambda r: (not r.ringing, r.asked_at, r.handoff_id)))


def staffing(
    roster: Roster, labels: Labels, busy_members: set[str], now: datetime
) -> tuple[Staffing, ...]:
    """Each helper type of the roster: on duty, busy on a handoff, free, next shift change."""
    out = []
    for type_id in roster.helper_types:
        members = routing.on_duty(roster, type_id, now)
        on = tuple(m.name for m in members)
        busy = tuple(m.name for m in members if m.member_id in busy_members)
        free = tuple(m.name for m in members if m.member_id not in busy_members)
        out.append(
            Staffing(
                helper_type=type_id,
                label=labels.helper_type(type_id),
                on_duty=on,
                busy=busy,
                free=free,
                next_change=routing.next_on_duty_change(roster, type_id, now),
                always_on=all(r.shifts is None for r in roster.helper_types[type_id].members),
            )
        )
    return tuple(out)


def answer_rows(
    answer_seconds: Mapping[str, Mapping[int, int]],
    targets: Sequence[AnswerTarget],
    labels: Labels,
) -> tuple[AnswerRow, ...]:
    """Today's answers within each target, per helper type and for all; below target marked."""
    merged: dict[int, int] = defaultdict(int)
    for hist in answer_seconds.values():
        for seconds, count in hist.items():
            merged[seconds] += count
    rows = [_answer_row("", "All helpers", merged, targets)]
    rows += [
        _answer_row(t, labels.helper_type(t), answer_seconds[t], targets)
        for t in sorted(answer_seconds)
    ]
    return tuple(rows)


def _answer_row(
    helper_type: str, label: str, hist: Mapping[int, int], targets: Sequence[AnswerTarget]
) -> AnswerRow:
    total = sum(hist.values())
    results = []
    for target in targets:
        within = sum(c for s, c in hist.items() if s <= target.within_seconds)
        actual = round(within / total * 100, 1) if total else None
        target_pct = round(target.share * 100, 1)
        results.append(
            TargetResult(
                within_seconds=target.within_seconds,
                target_pct=target_pct,
                actual_pct=actual,
                below=actual is not None and actual < target_pct,
            )
        )
    return AnswerRow(helper_type, label, total, tuple(results))

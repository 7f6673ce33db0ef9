"""Live calls, handoffs, eligibility and callbacks as the console's pages and JSON show them:
names instead of ids, local times, timers, plain words.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import (
    g,
)

from ivr.accounts import get_staff
from ivr.console import story, times
from ivr.console.blueprints import OUTCOME_LABELS, _engine, _me, _now, _roster, _tree
from ivr.decisions import routing
from ivr.decisions.handoffs import (
    EventRecord,
    EventSource,
    Handoff,
    HandoffEvent,
    HandoffStatus,
    LiveCall,
    Outcome,
)
from ivr.flows import handoffs
from ivr.reporting.labels import (
    CALLBACK_SOURCE_WORDS,
    CALLBACK_STATUS_WORDS,
    HANDOFF_STATUS_WORDS,
    reason_given,
)
from ivr.store.account_tables import call_notes

log = logging.getLogger(__name__)


def _member_json(member: routing.Member) -> dict[str, Any]:
    """A roster member for the page: never the phone number or SIP address."""
    return {"member_id": member.member_id, "name": member.name, "helper_type": member.helper_type}


def eligibility_json(answers: dict[str, bool], at: datetime) -> dict[str, Any]:
    """What the tree says for `answers`, the next question, and each eligible helper type on duty."""
    tree, roster = _tree(), _roster()
    result = routing.eligibility(tree, answers)
    offers = routing.offers(roster, result.allowed, at) if result.is_diversion else []
    return {
        "decided": result.decided,
        "next_question": routing.next_question(tree, answers),
        "allowed": list(result.allowed),
        "reason": result.reason.value if result.reason else None,
        "reason_words": story.REASON_PHRASES.get(result.reason.value, "") if result.reason else "",
        "offers": [
            {
                "helper_type": offer.helper_type,
                "label": offer.label,
                "available": offer.available,
                "on_duty": [_member_json(m) for m in offer.on_duty],
                "next_change": offer.next_change.isoformat() if offer.next_change else None,
            }
            for offer in offers
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _member_name(member_id: str | None) -> str | None:
    if not member_id:
        return None
    member = _roster().member(member_id)
    return member.name if member else member_id


def _staff_name(staff_id: str | None) -> str | None:
    """A staff member's name by staff ID (cached for the request); None if unknown."""
    if not staff_id:
        return None
    cache: dict[str, str | None] = g.setdefault("staff_names", {})
    if staff_id not in cache:
        found = get_staff(_engine(), staff_id)
        cache[staff_id] = found.name if found else None
    return cache[staff_id]


def _member_or_none(member_id: str | None) -> str | None:
    member = _roster().member(member_id) if member_id else None
    return member.name if member else None


def call_label(call: LiveCall) -> str:
    """How a call is named on the page (no phone number)."""
    return f"#{call.id} ({'transfer desk' if call.origin.value == 'desk' else 'intake'})"


def _timer(handoff: Handoff, events: list[EventRecord]) -> dict[str, Any] | None:
    """The running timer a handoff shows: ringing since, joining since, connected since."""
    if handoff.status is HandoffStatus.CONNECTED:
        return {"label": "connected", "since": _iso(handoff.connected_at)}
    if handoff.status is HandoffStatus.ACCEPTED:
        return {"label": "joining", "since": _iso(handoff.accepted_at)}
    if handoff.status in handoffs.PENDING:
        since = story.ringing_since(events, handoff.attempt) or handoff.created_at
        return {"label": "ringing", "since": _iso(since)}
    return None


def _story_json(handoff: Handoff, events: list[EventRecord]) -> list[dict[str, Any]]:
    lines = story.handoff_story(
        events,
        helper_label=_roster().label(handoff.helper_type),
        member_name=_member_or_none,
        staff_name=_staff_name,
    )
    return [{"at": _iso(line.at), "text": line.text, "kind": line.kind} for line in lines]


def handoff_json(handoff: Handoff, events: list[EventRecord] | None = None) -> dict[str, Any]:
    """A handoff for the console pages; `events` adds its history, oldest first."""
    data: dict[str, Any] = {
        "id": handoff.id,
        "live_call_id": handoff.live_call_id,
        "helper_type": handoff.helper_type,
        "helper_label": _roster().label(handoff.helper_type),
        "status": handoff.status.value,
        "reason_code": handoff.reason_code,
        "reason": handoff.reason,
        "reason_given": reason_given(handoff.reason),
        "member_id": handoff.member_id,
        "member": _member_name(handoff.member_id),
        "attempt": handoff.attempt,
        "answers": handoff.answers,
        "call_taker_staff_id": handoff.call_taker_staff_id,
        "callback_number": handoff.callback_number,
        "outcome": handoff.outcome,
        "follow_up_at": _iso(handoff.follow_up_at),
        "created_at": _iso(handoff.created_at),
        "accepted_at": _iso(handoff.accepted_at),
        "connected_at": _iso(handoff.connected_at),
        "ended_at": _iso(handoff.ended_at),
    }
    data["status_words"] = HANDOFF_STATUS_WORDS.get(handoff.status.value, handoff.status.value)
    data["reason_words"] = story.REASON_PHRASES.get(handoff.reason_code or "", "") or (
        (handoff.reason_code or "").replace("_", " ")
    )
    data["cancellable"] = handoff.status in handoffs.CANCELLABLE
    data["call_taker"] = _staff_name(handoff.call_taker_staff_id)
    if events is not None:
        data["story"] = _story_json(handoff, events)
        data["timer"] = _timer(handoff, events)
        # Twilio's callbacks name the attempt, not the helper: say who each attempt dialed.
        dialed: dict[int | None, str | None] = {
            e.attempt: e.member_id
            for e in events
            if e.event is HandoffEvent.DIALING and e.attempt is not None and e.member_id
        }
        data["events"] = [
            {
                "event": e.event.value,
                "occurred_at": _iso(e.occurred_at),
                "attempt": e.attempt,
                "member": e.member_id
                if e.source is EventSource.STAFF
                else _member_name(e.member_id or dialed.get(e.attempt)),
                "reason": e.reason,
            }
            for e in events
        ]
    return data


def _call_taker_of(call: LiveCall) -> str | None:
    """Who has the call: the live call's call-taker, else the one who started its handoffs."""
    staff_id = call.call_taker_staff_id or next(
        (h.call_taker_staff_id for h in call.handoffs if h.call_taker_staff_id), None
    )
    return _staff_name(staff_id) or (f"staff {staff_id}" if staff_id else None)


def call_json(
    call: LiveCall, events_of: dict[int, list[EventRecord]] | None = None
) -> dict[str, Any]:
    """A live call for the console list: its state derived from its handoffs, and since when."""
    events_of = events_of if events_of is not None else _events_of_active(call)
    taker = _call_taker_of(call)
    left = any(
        e.event is HandoffEvent.CALL_TAKER_LEFT for events in events_of.values() for e in events
    )
    since = {
        h.id: t
        for h in call.handoffs
        if (t := story.ringing_since(events_of.get(h.id, []), h.attempt)) is not None
    }
    state = story.call_state(
        call,
        call.handoffs,
        call_taker=taker,
        member_name=_member_or_none,
        ringing_since=since,
        call_taker_left=left,
    )
    return {
        "id": call.id,
        "label": call_label(call),
        "origin": call.origin.value,
        "status": call.status.value,
        "state": state.code,
        "state_words": state.words,
        "state_since": _iso(state.since),
        "ended": call.status.value == "ended",
        "call_taker_staff_id": call.call_taker_staff_id,
        "call_taker": taker,
        "created_at": _iso(call.created_at),
        "handoffs": [{"id": h.id, "status": h.status.value} for h in call.handoffs],
    }


def _events_of_active(call: LiveCall) -> dict[int, list[EventRecord]]:
    """The histories of a call's handoffs that are under way or connected (for its state)."""
    return {
        h.id: handoffs.handoff_events(_engine(), h.id)
        for h in call.handoffs
        if h.status in handoffs.PENDING or h.status is HandoffStatus.CONNECTED
    }


def _notes(live_call_id: int) -> list[dict[str, Any]]:
    with _engine().connect() as conn:
        rows = conn.execute(
            sa.select(call_notes)
            .where(call_notes.c.live_call_id == live_call_id)
            .order_by(call_notes.c.at, call_notes.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "staff_id": r.staff_id,
            "author": _staff_name(r.staff_id) or f"staff {r.staff_id}",
            "body": r.body,
            "at": _iso(r.at),
        }
        for r in rows
    ]


def _list_item(handoff: Handoff) -> dict[str, Any]:
    """A row of the clinician's list: local time and words, not codes."""
    data = handoff_json(handoff)
    data["created_local"] = _local(handoff.created_at)
    data["outcome_words"] = OUTCOME_LABELS.get(Outcome(handoff.outcome)) if handoff.outcome else ""
    return data


def _local(value: datetime | str | None) -> str:
    """A time on a staff page, in the program's time zone ('today 15:27')."""
    return times.local_time(value, _roster().timezone, _now())


def callback_rows() -> list[dict[str, Any]]:
    """The open callbacks as the page shows them: words, local times, a masked number."""
    from ivr.store import callbacks as callback_store

    now = _now()
    rows = callback_store.open_callbacks_with_age(_engine(), now)
    details = callback_store.list_details(_engine(), [r.id for r in rows])
    out = []
    for r in rows:
        detail = details.get(r.id)
        helper = _roster().label(r.helper_type) if r.helper_type else "anyone on duty"
        claimed = detail.claimed_by if detail else None
        out.append(
            {
                "id": r.id,
                "overdue": r.overdue,
                "escalated": r.escalated,
                "source": CALLBACK_SOURCE_WORDS.get(
                    r.source.value, r.source.value.replace("_", " ")
                ),
                "reason": (
                    detail.system_note if detail and detail.system_note else f"for {helper}"
                ),
                "number": f"ends in {detail.last_four}"
                if detail and detail.last_four
                else "no number",
                "status": CALLBACK_STATUS_WORDS.get(r.status.value, r.status.value),
                "age": times.duration(r.age.total_seconds()),
                "created_local": _local(r.created_at),
                "deadline_local": _local(r.deadline_at) or "none",
                "next_local": _local(r.next_attempt_at) or "not scheduled",
                "attempts": r.attempts_made,
                "last_outcome": (r.last_outcome or "").replace("_", " ")
                or ("in progress" if r.attempts_made else "not tried yet"),
                "claimed_by": _staff_name(claimed) or claimed,
                "claimed_by_me": claimed == _me().staff_id,
                "can_call": r.status.value == "pending",
            }
        )
    return out

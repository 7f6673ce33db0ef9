"""What a handoff's history and a live call's state say, in plain words with names (pure).

The event history holds every callback Twilio sent and every step Bridgeline took, twice where
Twilio retried or a job recorded the same dial once before and once after placing it. The
call-taker needs one line per real step ("Dana Rivera declined"), and one phrase for where the
call stands ("helper ringing: Dana Rivera"), derived from its handoffs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ivr.decisions.handoffs import (
    PENDING,
    EventRecord,
    EventSource,
    Handoff,
    HandoffEvent,
    HandoffStatus,
    LiveCall,
    LiveCallStatus,
)

Name = Callable[[str | None], str | None]
"""Looks up a roster member (or a staff member) by id; None when unknown."""


@dataclass(frozen=True)
class StoryLine:
    """One real step of a handoff, said in words."""

    at: datetime
    text: str
    kind: str  # the event code, for styling (never shown)


_ONCE_PER_ATTEMPT = frozenset(
    {
        HandoffEvent.DIALING,
        HandoffEvent.RINGING,
        HandoffEvent.ANSWERED,
        HandoffEvent.ACCEPTED,
        HandoffEvent.DECLINED,
        HandoffEvent.NO_ANSWER,
        HandoffEvent.BUSY,
        HandoffEvent.FAILED,
        HandoffEvent.CANCELED,
        HandoffEvent.NO_RESPONSE,
        HandoffEvent.DIAL_REFUSED,
        HandoffEvent.HELPER_JOINED,
        HandoffEvent.HELPER_LEFT,
    }
)

_ATTEMPT_WORDS = {
    HandoffEvent.DIALING: "Calling {who}",
    HandoffEvent.RINGING: "{who}'s phone is ringing",
    HandoffEvent.ANSWERED: "{who} answered and hears the summary",
    HandoffEvent.ACCEPTED: "{who} accepted",
    HandoffEvent.DECLINED: "{who} declined",
    HandoffEvent.NO_ANSWER: "{who} did not answer",
    HandoffEvent.BUSY: "{who}'s line was busy",
    HandoffEvent.FAILED: "The call to {who} failed",
    HandoffEvent.CANCELED: "The call to {who} was stopped",
    HandoffEvent.NO_RESPONSE: "{who} answered but did not press 1",
    HandoffEvent.DIAL_REFUSED: "{who} could not be dialed",
    HandoffEvent.HELPER_JOINED: "{who} joined the caller",
    HandoffEvent.HELPER_LEFT: "{who} left the call",
}

_ENDS_ATTEMPT = frozenset(
    {
        HandoffEvent.DECLINED,
        HandoffEvent.NO_ANSWER,
        HandoffEvent.BUSY,
        HandoffEvent.FAILED,
        HandoffEvent.CANCELED,
        HandoffEvent.NO_RESPONSE,
        HandoffEvent.DIAL_REFUSED,
    }
)


def handoff_story(
    events: Iterable[EventRecord],
    *,
    helper_label: str,
    member_name: Name,
    staff_name: Name,
) -> list[StoryLine]:
    """One line per real step of a handoff, oldest first (events come in history order)."""
    lines: list[StoryLine] = []
    who_of: dict[int, str] = {}
    seen: set[tuple[HandoffEvent, int | None]] = set()
    ended: set[int] = set()  # attempts that ended without the helper joining
    joined: set[int] = set()
    for e in events:
        if e.event is HandoffEvent.DIALING and e.attempt is not None and e.member_id:
            who_of.setdefault(e.attempt, member_name(e.member_id) or "a helper not on the roster")
        if e.event in _ONCE_PER_ATTEMPT:
            if (e.event, e.attempt) in seen or e.attempt is None:
                continue
            seen.add((e.event, e.attempt))
            if e.event is HandoffEvent.HELPER_LEFT and e.attempt not in joined:
                continue  # the leg of a helper who declined or never answered just ended
            if e.attempt in ended and e.event is not HandoffEvent.DIALING:
                continue  # Twilio's late word on a call already settled
            who = who_of.get(e.attempt, "the helper")
            text = _ATTEMPT_WORDS[e.event].format(who=who)
            if e.event in _ENDS_ATTEMPT:
                ended.add(e.attempt)
            if e.event is HandoffEvent.HELPER_JOINED:
                joined.add(e.attempt)
            lines.append(StoryLine(e.occurred_at, _capital(text), e.event.value))
            continue
        other = _other_words(e, helper_label, staff_name)
        if other:
            lines.append(StoryLine(e.occurred_at, _capital(other), e.event.value))
    return lines


def _other_words(e: EventRecord, helper_label: str, staff_name: Name) -> str | None:
    by = staff_name(e.member_id) if e.source is EventSource.STAFF else None
    if e.event is HandoffEvent.REQUESTED:
        return f"{helper_label} asked for" + (f" by {by}" if by else "")
    if e.event is HandoffEvent.NOT_STARTED:
        return "Not started: " + _reason_words(e.reason)
    if e.event is HandoffEvent.CANCELLED_BY_CALL_TAKER:
        return "Cancelled" + (f" by {by}" if by else " by the call-taker")
    if e.event is HandoffEvent.RETURNED:
        return "No helper took the call: back with the call-taker"
    if e.event is HandoffEvent.CALL_TAKER_LEFT:
        return "The call-taker left the call"
    if e.event is HandoffEvent.CALLER_LEFT:
        return "The caller hung up"
    if e.event is HandoffEvent.CONFERENCE_ENDED:
        return "The call ended"
    if e.event is HandoffEvent.CALLBACK_RECORDED:
        return "A callback to the caller was scheduled"
    if e.event is HandoffEvent.ANNOUNCED:
        return "The call-taker heard that the helper is connected"
    if e.event is HandoffEvent.OUTCOME_RECORDED:
        return "Outcome recorded" + (f" by {by}" if by else "")
    return None


REASON_PHRASES = {
    "not_eligible_weapon": "a weapon is involved",
    "not_eligible_danger": "someone is in immediate danger",
    "not_eligible_violence": "violence or a crime is in progress",
    "not_eligible_medical": "it is a medical emergency",
    "not_eligible_type": "that helper is not allowed for these answers",
    "no_consent": "the caller does not agree",
    "no_one_on_duty": "no one is on duty",
    "chain_exhausted": "everyone on the roster was tried",
    "caller_hung_up": "the caller hung up",
    "cancelled": "cancelled by the call-taker",
}
"""Why a handoff did not start or did not reach anyone, as the call-taker reads it."""


def _reason_words(code: str | None) -> str:
    return REASON_PHRASES.get(code or "", (code or "no reason given").replace("_", " "))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- the call's state


@dataclass(frozen=True)
class CallState:
    """Where a live call stands, derived from its handoffs: a code, words, since when."""

    code: str
    words: str
    since: datetime | None


def call_state(
    call: LiveCall,
    call_handoffs: Sequence[Handoff],
    *,
    call_taker: str | None,
    member_name: Name,
    ringing_since: Mapping[int, datetime] | None = None,
    call_taker_left: bool = False,
) -> CallState:
    """The live call's state for the console: helper ringing / connected, call-taker left...

    `ringing_since` gives, per handoff id, when its current helper's phone started ringing."""
    started = ringing_since or {}
    if call.status is LiveCallStatus.ENDED:
        return CallState("ended", "ended", call.ended_at)
    newest = sorted(call_handoffs, key=lambda h: h.id, reverse=True)
    connected = [h for h in newest if h.status is HandoffStatus.CONNECTED]
    if connected:
        h = connected[0]
        name = member_name(h.member_id) or "a helper"
        if call_taker_left:
            words = f"with {name}; call-taker left"
            return CallState("helper_connected_alone", words, h.connected_at)
        return CallState("helper_connected", f"helper connected: {name}", h.connected_at)
    for h in newest:
        if h.status is HandoffStatus.ACCEPTED:
            name = member_name(h.member_id) or "a helper"
            return CallState("helper_joining", f"helper joining: {name}", h.accepted_at)
        if h.status in PENDING:
            ringing = member_name(h.member_id)
            since = started.get(h.id, h.created_at)
            if h.status is HandoffStatus.SCREENING and ringing:
                return CallState("helper_ringing", f"helper hears the summary: {ringing}", since)
            if ringing and h.status in (HandoffStatus.DIALING, HandoffStatus.RINGING):
                return CallState("helper_ringing", f"helper ringing: {ringing}", since)
            return CallState("helper_ringing", "calling a helper", since)
    if call.status is LiveCallStatus.WAITING and call.origin.value == "intake":
        return CallState("waiting", "waiting for a call-taker", call.created_at)
    who = call_taker or "the call-taker"
    return CallState("with_call_taker", f"with {who}", call.created_at)


def ringing_since(events: Iterable[EventRecord], attempt: int) -> datetime | None:
    """When the current attempt's helper started being called (its first 'dialing')."""
    times = [
        e.occurred_at for e in events if e.event is HandoffEvent.DIALING and e.attempt == attempt
    ]
    return min(times) if times else None

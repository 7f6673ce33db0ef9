"""One consult at a time: may a new handoff start on a live call? (pure: no SQL, no Flask)

A live call has at most one helper being dialed, rung or whispered to at a time. A second
press of the same button (a double click, a second tab, a retried request) gets the handoff
already under way; a different helper while one is still being called is refused with a plain
reason; a second helper while one is connected needs the call-taker's explicit confirmation.
`ivr.flows.handoffs.start_handoff` asks this under a lock on the live call's row, so two web
processes cannot both decide "start".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

IN_FLIGHT = frozenset({"requested", "dialing", "ringing", "screening", "falling_back", "accepted"})
"""Handoff statuses in which a helper is still being called (ringing, whispered to, joining)."""

CONNECTED = "connected"
"""The handoff status in which a helper has the caller."""


class ConsultVerdict(str, Enum):
    """What to do with a request to conference a helper in."""

    START = "start"
    ALREADY_UNDER_WAY = "already_under_way"  # the same helper type is being called: that one
    BUSY = "busy"  # another helper type is being called: cancel it first
    NEEDS_CONFIRMATION = "needs_confirmation"  # a helper is connected: confirm a second


class HandoffLike(Protocol):
    """What the policy reads of a handoff (ivr.flows.handoffs.Handoff has it)."""

    @property
    def id(self) -> int: ...
    @property
    def helper_type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def member_id(self) -> str | None: ...


@dataclass(frozen=True)
class ConsultCheck:
    """The verdict, the handoff it is about (if any), and the reason in plain words."""

    verdict: ConsultVerdict
    existing: HandoffLike | None = None
    message: str = ""


def check_new_consult(
    call_handoffs: Sequence[HandoffLike],
    helper_type: str,
    *,
    confirm_second: bool,
    label: Callable[[str], str],
    member_name: Callable[[str | None], str | None],
) -> ConsultCheck:
    """Whether a handoff to `helper_type` may start on a call whose handoffs are `call_handoffs`.

    `label` names a helper type ("embedded clinician"), `member_name` a roster member.
    """
    in_flight = [h for h in call_handoffs if _status(h) in IN_FLIGHT]
    if in_flight:
        current = max(in_flight, key=lambda h: h.id)
        if current.helper_type == helper_type:
            return ConsultCheck(ConsultVerdict.ALREADY_UNDER_WAY, current)
        return ConsultCheck(
            ConsultVerdict.BUSY,
            current,
            f"{_who(current, label, member_name)} is still being called on this call. "
            "Cancel that call first, or wait until it ends.",
        )
    connected = [h for h in call_handoffs if _status(h) == CONNECTED]
    if connected and not confirm_second:
        current = max(connected, key=lambda h: h.id)
        return ConsultCheck(
            ConsultVerdict.NEEDS_CONFIRMATION,
            current,
            f"{_who(current, label, member_name)} is already connected to the caller. "
            "Confirm to add a second helper.",
        )
    return ConsultCheck(ConsultVerdict.START)


def _status(handoff: HandoffLike) -> str:
    """The status as plain text (a str enum's value, or the text itself)."""
    return str(getattr(handoff.status, "value", handoff.status))


def _who(
    handoff: HandoffLike,
    label: Callable[[str], str],
    member_name: Callable[[str | None], str | None],
) -> str:
    kind = label(handoff.helper_type)
    name = member_name(handoff.member_id)
    text = f"{name} ({kind})" if name else f"The {kind}"
    return text[0].upper() + text[1:]

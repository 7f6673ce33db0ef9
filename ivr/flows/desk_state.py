"""What the desk carries between steps and says: the URL state (staff ID, answers, round), the
answer codes, reason words and spoken times, and the conference labels of each leg."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from ivr.config.decision_tree import DecisionTree
from ivr.config.roster import Roster
from ivr.decisions import sign_in_throttle as throttle
from ivr.decisions.handoffs import (
    HandoffEvent,
)
from ivr.decisions.routing import ReasonCode
from ivr.phones import PhoneNumberError, callback_number

log = logging.getLogger(__name__)


DESK = "/voice/transfer-desk"
"""Entry point of the transfer desk; its steps live below it."""

INTAKE = "/voice/intake"
"""Entry point of the intake line (callers wait, a call-taker is dialed in)."""

HANDOFF = "/voice/handoff"
"""Whisper, announcements and status callbacks of handoffs."""

MAX_PIN_FAILURES_PER_CALL = 3
"""Wrong PINs after which the desk ends the call."""

LOCKOUT_WINDOW = throttle.WINDOW
"""Window in which wrong PINs are counted (staff ID lockout, calling-number slowdown)."""

MAX_TRIES = 3
"""Times the desk re-asks a question before it gives up politely."""

WHISPER_TIMEOUT_SECONDS = 8
"""How long the helper has to press 1 or 2 after the whisper."""

CALLER_CHECK_SECONDS = 12
"""After the desk starts a handoff: the announcement is over and the caller's leg should be in
the conference; a worker then checks the caller has not hung up on the way."""

CONFERENCE_EVENTS = "start end join leave"
"""Conference status callback events, space-separated as TwiML wants them."""

ANSWER_CODES = {True: "y", False: "n"}

QUESTION_CACHE_SIZE = 4096
"""At most this many built question answers are kept per process (then the cache restarts)."""


@dataclass(frozen=True)
class DeskState:
    """Where a signed-in call-taker is in the desk flow (carried in signed URLs)."""

    staff_id: str
    answers: dict[str, bool]
    round: int = 1
    # From the calling PSAP line on each request (program.yaml), not carried in the URL.
    jurisdiction: str | None = None

    def params(self, tree: DecisionTree) -> dict[str, object]:
        """URL parameters for this state."""
        return {"s": self.staff_id, "a": encode_answers(tree, self.answers), "n": self.round}


def encode_answers(tree: DecisionTree, answers: Mapping[str, bool]) -> str:
    """One letter per question in the tree's order: y, n, or - when not asked."""
    return "".join(
        ANSWER_CODES.get(answers[q.id], "-") if q.id in answers else "-" for q in tree.questions
    )


def decode_answers(tree: DecisionTree, raw: str | None) -> dict[str, bool]:
    """Inverse of encode_answers; anything else than y/n means not asked."""
    raw = (raw or "")[: len(tree.questions)]
    out: dict[str, bool] = {}
    for question, letter in zip(tree.questions, raw, strict=False):
        if letter in ("y", "n"):
            out[question.id] = letter == "y"
    return out


def with_article(label: str) -> str:
    """'an embedded clinician', 'a navigator'."""
    return f"{'an' if label[:1].lower() in 'aeiou' else 'a'} {label}"


def spoken_time(moment: datetime, now: datetime, roster: Roster) -> str:
    """'10 a.m.', 'tomorrow at 8 a.m.', 'Monday at 9:30 a.m.' in the roster's time zone."""
    local = moment.astimezone(roster.timezone)
    today = now.astimezone(roster.timezone).date()
    hour = local.hour % 12 or 12
    clock = f"{hour}:{local.minute:02d}" if local.minute else f"{hour}"
    clock += " a.m." if local.hour < 12 else " p.m."
    if local.date() == today:
        return clock
    if local.date() == today + timedelta(days=1):
        return f"tomorrow at {clock}"
    return f"{local.strftime('%A')} at {clock}"


REASON_TEXT = {
    ReasonCode.NOT_ELIGIBLE_WEAPON.value: "a weapon is involved",
    ReasonCode.NOT_ELIGIBLE_DANGER.value: "someone is in immediate danger",
    ReasonCode.NOT_ELIGIBLE_VIOLENCE.value: "violence or a crime is in progress",
    ReasonCode.NOT_ELIGIBLE_MEDICAL.value: "it is a medical emergency",
    ReasonCode.NO_CONSENT.value: "the caller does not agree",
    ReasonCode.NOT_ELIGIBLE_TYPE.value: "that helper is not allowed for these answers",
    ReasonCode.NO_ONE_ON_DUTY.value: "no one is on duty",
    ReasonCode.NO_ANSWER.value: "did not answer",
    ReasonCode.BUSY.value: "was busy",
    ReasonCode.FAILED.value: "could not be reached",
    ReasonCode.DECLINED.value: "declined",
    ReasonCode.NO_RESPONSE_TO_WHISPER.value: "answered but did not accept",
    ReasonCode.DIAL_REFUSED.value: "could not be dialed",
    ReasonCode.CANCELLED.value: "was cancelled",
}
"""How the desk says a reason code out loud."""


HELPER_CALL_EVENTS = {
    "ringing": HandoffEvent.RINGING,
    "in-progress": HandoffEvent.ANSWERED,
    "answered": HandoffEvent.ANSWERED,
    "completed": HandoffEvent.HELPER_LEFT,
    "busy": HandoffEvent.BUSY,
    "no-answer": HandoffEvent.NO_ANSWER,
    "failed": HandoffEvent.FAILED,
    "canceled": HandoffEvent.CANCELED,
}
"""Twilio CallStatus of the helper's leg -> handoff event."""


def _per_handoff(token: str | None, handoff_id: int) -> str | None:
    """Twilio's idempotency token of a callback that applies to several handoffs, made one per
    handoff (the token is unique in the handoff log: a shared one would keep only the first)."""
    return f"{token[:110]}:h{handoff_id}" if token else None


def helper_label(handoff_id: int, attempt: int) -> str:
    """Conference participant label of a helper: which handoff and which attempt."""
    return f"helper-{handoff_id}-{attempt}"


def parse_helper_label(label: str) -> tuple[int, int] | None:
    """Inverse of helper_label (None for any other label)."""
    parts = label.split("-")
    if len(parts) == 3 and parts[0] == "helper" and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return None


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


def _usable(raw: str) -> str | None:
    if not raw or not raw.startswith("+"):
        return None
    try:
        return callback_number(raw)
    except PhoneNumberError:
        return None

"""Reason codes: why a handoff did not reach a helper (the words config files and records share)."""

from __future__ import annotations

from enum import Enum


class ReasonCode(str, Enum):
    """Why a handoff did not reach a helper, or why one step of it was skipped."""

    NOT_ELIGIBLE_WEAPON = "not_eligible_weapon"
    NOT_ELIGIBLE_DANGER = "not_eligible_danger"
    NOT_ELIGIBLE_VIOLENCE = "not_eligible_violence"
    NOT_ELIGIBLE_MEDICAL = "not_eligible_medical"
    NOT_ELIGIBLE_TYPE = "not_eligible_type"
    NO_CONSENT = "no_consent"
    NO_ONE_ON_DUTY = "no_one_on_duty"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    DECLINED = "declined"
    NO_RESPONSE_TO_WHISPER = "no_response_to_whisper"
    CALLER_HUNG_UP = "caller_hung_up"
    CHAIN_EXHAUSTED = "chain_exhausted"
    DIAL_REFUSED = "dial_refused"
    CANCELLED = "cancelled"


NOT_ELIGIBLE_REASONS = frozenset(
    {
        ReasonCode.NOT_ELIGIBLE_WEAPON,
        ReasonCode.NOT_ELIGIBLE_DANGER,
        ReasonCode.NOT_ELIGIBLE_VIOLENCE,
        ReasonCode.NOT_ELIGIBLE_MEDICAL,
        ReasonCode.NO_CONSENT,
    }
)
"""Reason codes a decision-tree rule may give for allowing no helper."""

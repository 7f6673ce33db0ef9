"""One map from the codes Bridgeline stores to the words staff pages show.

Helper types, lines, jurisdictions and menu items are named by the operator in config
(roster.yaml labels, program.yaml `display_names` and `jurisdictions`, menus.yaml item labels);
reason codes, outcomes, statuses, events, QA reasons and tags are Bridgeline's own and named
here. Every staff page (live wall, dashboard, QA) asks this one object, so a code never reaches
a supervisor's screen: an unknown code is turned into plain words rather than shown raw.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from ivr.config.loader import BridgelineConfig
from ivr.config.program import ProgramConfig
from ivr.config.roster import Roster

LABELS_KEY = "bridgeline_labels"
"""app.extensions key of the app's one Labels (built by the dashboard's init_app)."""

REASON_WORDS: dict[str, str] = {
    "not_eligible_weapon": "weapon involved: not eligible",
    "not_eligible_danger": "immediate danger: not eligible",
    "not_eligible_violence": "violence: not eligible",
    "not_eligible_medical": "medical emergency: not eligible",
    "not_eligible_type": "helper type not allowed for this call",
    "no_consent": "caller did not consent",
    "no_one_on_duty": "no one on duty",
    "no_answer": "no answer",
    "busy": "line busy",
    "failed": "call failed",
    "declined": "helper declined",
    "no_response_to_whisper": "helper did not respond to the summary",
    "caller_hung_up": "caller hung up",
    "chain_exhausted": "everyone on the roster tried",
    "dial_refused": "number refused (outside US/Canada or premium)",
    "cancelled": "cancelled by the call-taker",
}
"""Why a handoff did not reach a helper (ivr.decisions.routing.ReasonCode)."""

OUTCOME_WORDS: dict[str, str] = {
    "resolved_by_phone": "resolved by phone",
    "resolved_on_scene": "resolved on scene",
    "police_backup_required": "police backup required",
    "medical_backup_required": "medical backup required",
    "transport": "transport",
    "involuntary_hold": "involuntary hold",
    "referred": "referred",
    "callback_scheduled": "callback scheduled",
}
"""What came of a handoff (ivr.flows.handoffs.Outcome), in the order programs report them."""

HANDOFF_STATUS_WORDS: dict[str, str] = {
    "requested": "asked for",
    "dialing": "dialing",
    "ringing": "ringing",
    "screening": "hearing the summary",
    "falling_back": "trying the next helper",
    "accepted": "accepted, joining",
    "connected": "connected",
    "completed": "completed",
    "returned": "back with the call-taker",
    "caller_dropped": "caller dropped",
    "not_started": "not started",
    "cancelled": "cancelled",
}
"""Where a handoff stands (ivr.flows.handoffs.HandoffStatus)."""

HANDOFF_EVENT_WORDS: dict[str, str] = {
    "requested": "asked for",
    "not_started": "not started",
    "dialing": "dialing",
    "ringing": "ringing",
    "answered": "answered, hearing the summary",
    "accepted": "accepted",
    "declined": "declined",
    "no_answer": "no answer",
    "busy": "busy",
    "failed": "call failed",
    "canceled": "call cancelled",
    "no_response": "no response to the summary",
    "dial_refused": "number refused",
    "helper_joined": "helper joined the caller",
    "helper_left": "helper left",
    "call_taker_left": "call-taker left",
    "caller_left": "caller left",
    "conference_ended": "call ended",
    "returned": "back with the call-taker",
    "callback_recorded": "callback scheduled",
    "announced": "call-taker told",
    "outcome_recorded": "outcome recorded",
    "cancelled_by_call_taker": "cancelled by the call-taker",
}
"""Lines of a handoff's history (ivr.flows.handoffs.HandoffEvent)."""

LIVE_CALL_STATUS_WORDS: dict[str, str] = {
    "waiting": "waiting for a call-taker",
    "with_call_taker": "with a call-taker",
    "ended": "ended",
}
"""Where a live call stands (ivr.flows.handoffs.LiveCallStatus)."""

ORIGIN_WORDS: dict[str, str] = {"desk": "transfer desk", "intake": "intake line"}
"""How a live call reached Bridgeline (ivr.flows.handoffs.Origin)."""

CALLBACK_STATUS_WORDS: dict[str, str] = {
    "draft": "being confirmed",
    "pending": "waiting to be placed",
    "dialing": "being dialed",
    "done": "done",
    "failed": "failed",
    "cancelled": "cancelled (opted out)",
}
"""Life of a callback (ivr.store.callbacks.CallbackStatus)."""

CALLBACK_SOURCE_WORDS: dict[str, str] = {
    "resident_menu": "resident asked on the self-service line",
    "queue_overflow": "resident left the 311 queue",
    "clinician_follow_up": "clinician's follow-up",
    "dropped_handoff": "dropped transfer",
}
"""Who asked for a callback (ivr.store.callbacks.CallbackSource)."""

QA_REASON_WORDS: dict[str, str] = {
    "crisis_not_offered": "crisis words heard, no crisis helper offered",
    "mental_health_handoff": "mental-health, suicide or welfare handoff",
    "declined_or_fallback": "handoff declined or fallen back",
    "callback_overdue": "callback overdue",
    "callback_failed": "callback failed",
    "random_sample": "random sample",
}
"""Why a call is in the QA queue (ivr.reporting.qa.QAReason)."""

NOT_OFFERED_WORDS: dict[str, str] = {
    "weapon": "a weapon was involved",
    "immediate_danger": "immediate danger",
    "medical_emergency": "medical emergency",
    "no_team_on_duty": "no crisis team on duty",
    "caller_declined": "caller declined",
    "outside_service_area": "outside the service area",
    "not_considered": "not considered",
    "other": "other",
}
"""Why a crisis team was not offered (ivr.reporting.qa.NotOfferedReason)."""

SELF_SERVICE_EVENT_WORDS: dict[str, str] = {
    "language": "language chosen",
    "menu_item": "menu item chosen",
    "to_person": "sent to a 311 agent",
    "queue_left": "left the 311 queue",
    "queue_callback": "left the 311 queue for a callback",
    "transfer": "transferred",
    "crisis_words": "crisis words heard",
    "report_filed": "report filed",
    "status_checked": "report status checked",
    "info_sms": "information sent by text",
    "callback_requested": "callback requested",
    "callback_declined": "callback declined",
    "callback_number_refused": "callback number refused",
    "attempts_exhausted": "re-asked until sent to a person",
}
"""What happened on the self-service line (self_service_events.event)."""

TAG_WORDS: dict[str, str] = {
    "behavioral_health": "behavioral health",
    "suicide_self_harm": "suicide or self-harm",
    "substance_use": "substance use",
    "welfare_check": "welfare check",
    "housing_food": "housing or food",
    "medical": "medical",
}
"""Words for the QA tags menus.yaml defines out of the box (operators' own tags read as words)."""

LANGUAGE_WORDS: dict[str, str] = {"en": "English", "es": "Spanish"}
"""Caller languages."""

REASON_NOT_GIVEN = "not given"
"""What staff pages say for a handoff whose call-taker gave no reason."""

_CODE = re.compile(r"[_:]+")


def plain(code: str) -> str:
    """Words for a code nobody named: separators become spaces (never shown raw)."""
    return _CODE.sub(" ", code).strip()


def reason_given(text: str | None) -> str:
    """The reason a call-taker gave for a handoff, already in words (typed in the console, or
    one of decision_tree.yaml's handoff_reasons picked at the desk), or "not given"."""
    return (text or "").strip() or REASON_NOT_GIVEN


_MENU_LEAD = re.compile(r"^(to|for)\s+", re.IGNORECASE)


def menu_phrase(spoken: str) -> str:
    """A menu item as a name: "To report a problem" (as the menu says it) -> "Report a problem"."""
    text = _MENU_LEAD.sub("", spoken.strip()) or spoken.strip()
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Labels:
    """Words for every code a staff page shows; operator names come from config."""

    helper_types: Mapping[str, str] = field(default_factory=dict)
    lines: Mapping[str, str] = field(default_factory=dict)
    jurisdictions: Mapping[str, str] = field(default_factory=dict)
    menu_items: Mapping[str, str] = field(default_factory=dict)
    members: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def helper_type(self, code: str | None) -> str:
        """A helper type (or line) as the operator named it."""
        if not code:
            return ""
        return self.helper_types.get(code) or self.lines.get(code) or plain(code)

    def line(self, code: str | None) -> str:
        """A phone line (lines.yaml) or helper type."""
        if not code:
            return ""
        return self.lines.get(code) or self.helper_types.get(code) or plain(code)

    def jurisdiction(self, code: str | None) -> str:
        """A jurisdiction's name (program.yaml)."""
        if not code:
            return ""
        return self.jurisdictions.get(code) or plain(code)

    def menu_item(self, code: str | None) -> str:
        """A menu item 'menu:key:action' as its menu label says it."""
        if not code:
            return ""
        return self.menu_items.get(code) or plain(code)

    def member(self, member_id: str | None) -> str:
        """A roster member's name (never their number)."""
        if not member_id:
            return ""
        return self.members.get(member_id) or "someone not on the roster"

    def reason(self, code: str | None) -> str:
        """Why a handoff found no helper."""
        return _word(REASON_WORDS, code)

    def outcome(self, code: str | None) -> str:
        """A handoff outcome."""
        return _word(OUTCOME_WORDS, code)

    def handoff_status(self, code: str | None) -> str:
        """Where a handoff stands."""
        return _word(HANDOFF_STATUS_WORDS, code)

    def handoff_event(self, code: str | None) -> str:
        """One line of a handoff's history."""
        return _word(HANDOFF_EVENT_WORDS, code)

    def live_call_status(self, code: str | None) -> str:
        """Where a live call stands."""
        return _word(LIVE_CALL_STATUS_WORDS, code)

    def origin(self, code: str | None) -> str:
        """How a live call came in."""
        return _word(ORIGIN_WORDS, code)

    def callback_status(self, code: str | None) -> str:
        """A callback's state."""
        return _word(CALLBACK_STATUS_WORDS, code)

    def callback_source(self, code: str | None) -> str:
        """Who asked for a callback."""
        return _word(CALLBACK_SOURCE_WORDS, code)

    def qa_reason(self, code: str | None) -> str:
        """Why a call is in the QA queue."""
        return _word(QA_REASON_WORDS, code)

    def not_offered(self, code: str | None) -> str:
        """Why a crisis team was not offered."""
        return _word(NOT_OFFERED_WORDS, code)

    def self_service_event(self, code: str | None) -> str:
        """What happened on the self-service line."""
        return _word(SELF_SERVICE_EVENT_WORDS, code)

    def language(self, code: str | None) -> str:
        """A caller's language."""
        return _word(LANGUAGE_WORDS, code)

    def tag(self, code: str | None) -> str:
        """A transcript or QA tag."""
        return _word(self.tags, code)


def _word(words: Mapping[str, str], code: str | None) -> str:
    if not code:
        return ""
    return words.get(code) or plain(code)


def labels_from_config(
    roster: Roster | None,
    display_names: Mapping[str, str],
    jurisdictions: Mapping[str, str],
    menu_items: Mapping[str, str],
    line_names: Mapping[str, str],
) -> Labels:
    """Labels from the validated config: program.yaml `display_names` win over roster labels."""
    helper_types: dict[str, str] = {}
    lines: dict[str, str] = dict(line_names)
    members: dict[str, str] = {}
    if roster is not None:
        groups = [*roster.helper_types.values(), *roster.lines.values()]
        if roster.call_takers is not None:
            groups.append(roster.call_takers)
        for group in groups:
            members.update({r.member.member_id: r.member.name for r in group.members})
        helper_types.update({t: g.label for t, g in roster.helper_types.items()})
        for type_id, group in roster.lines.items():
            lines.setdefault(type_id, group.label)
    for code, name in display_names.items():
        if code in lines:
            lines[code] = name
        if code in helper_types or code not in lines:
            helper_types[code] = name
    return Labels(
        helper_types=helper_types,
        lines=lines,
        jurisdictions=dict(jurisdictions),
        menu_items=dict(menu_items),
        members=members,
    )


def labels_for(
    config: BridgelineConfig | None, roster: Roster | None, program: ProgramConfig
) -> Labels:
    """The app's one Labels: roster, lines and menus from config, names from program.yaml."""
    menu_items: dict[str, str] = {}
    line_names: dict[str, str] = {}
    tags: dict[str, str] = dict(TAG_WORDS)
    if config is not None:
        tags.update({t: TAG_WORDS.get(t) or plain(t) for t in config.menus.understanding.qa_tags})
        for menu_id, menu in config.menus.menus.items():
            for item in menu.items:
                menu_items[f"{menu_id}:{item.key}:{item.action}"] = (
                    f"{menu_phrase(item.label.en)} ({plain(menu_id)} menu, key {item.key})"
                )
        line_names = {line_id: plain(line_id) for line_id in config.lines.lines}
    labels = labels_from_config(
        roster,
        program.display_names,
        {j.id: j.name for j in program.jurisdictions},
        menu_items,
        line_names,
    )
    return replace(labels, tags=tags)

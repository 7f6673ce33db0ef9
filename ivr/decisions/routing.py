"""Who to dial, decided without Flask, Redis or SQL: eligibility, who is on duty, the fallback chain.

Pure functions over the validated roster and decision tree; time is always passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ivr.config.reasons import NOT_ELIGIBLE_REASONS as NOT_ELIGIBLE_REASONS
from ivr.config.reasons import ReasonCode
from ivr.config.roster import Member as Member

if TYPE_CHECKING:
    from ivr.config.decision_tree import DecisionTree
    from ivr.config.roster import HelperType, Roster

LOOKAHEAD_DAYS = 8
"""How far ahead next_on_duty_change looks (a weekly roster repeats within 8 days)."""


@dataclass(frozen=True)
class Eligibility:
    """What the decision tree says for a set of answers (None allowed: more answers needed)."""

    decided: bool
    allowed: tuple[str, ...] = ()
    reason: ReasonCode | None = None
    rule_index: int | None = None

    @property
    def is_diversion(self) -> bool:
        """True when at least one helper type may take the call."""
        return self.decided and bool(self.allowed)


def eligibility(tree: DecisionTree, answers: Mapping[str, bool]) -> Eligibility:
    """Apply the tree's rules in order to `answers` (question id -> yes/no; missing = not asked)."""
    index, pending = tree.first_match(answers)
    if pending:
        return Eligibility(decided=False)
    if index is None:
        return Eligibility(decided=True, allowed=(), reason=ReasonCode.NOT_ELIGIBLE_TYPE)
    rule = tree.rules[index]
    return Eligibility(decided=True, allowed=rule.allow, reason=rule.reason, rule_index=index)


def next_question(tree: DecisionTree, answers: Mapping[str, bool]) -> str | None:
    """The next question to ask (one the first undecided rule needs), or None when decided."""
    for rule in tree.rules:
        missing = [q for q in rule.when if q not in answers]
        if any(answers[q] is not rule.when[q] for q in rule.when if q in answers):
            continue
        if not missing:
            return None
        order = [q.id for q in tree.questions]
        return min(missing, key=order.index)
    return None


def _local(roster: Roster, at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    return at.astimezone(roster.timezone)


def _group_on_duty(roster: Roster, group: HelperType, at: datetime) -> list[Member]:
    local = _local(roster, at)
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    return [
        r.member
        for r in group.members
        if r.shifts is None or any(s.covers(weekday, minute) for s in r.shifts)
    ]


def on_duty(roster: Roster, helper_type: str, at: datetime) -> list[Member]:
    """Members of `helper_type` (or of a fallback line, or call_taker) on duty at `at`, in roster order."""
    group = roster.group(helper_type)
    if group is None and helper_type == "call_taker":
        group = roster.call_takers
    if group is None:
        return []
    return _group_on_duty(roster, group, at)


def next_on_duty_change(roster: Roster, helper_type: str, at: datetime) -> datetime | None:
    """The first moment after `at` when who is on duty for `helper_type` changes (None: never)."""
    group = roster.group(helper_type)
    if group is None and helper_type == "call_taker":
        group = roster.call_takers
    if group is None:
        return None
    local = _local(roster, at)
    boundaries: set[datetime] = set()
    for rostered in group.members:
        for shift in rostered.shifts or ():
            for offset in range(-1, LOOKAHEAD_DAYS):
                day = (local + timedelta(days=offset)).date()
                if day.weekday() not in shift.days:
                    continue
                midnight = datetime(day.year, day.month, day.day, tzinfo=roster.timezone)
                start = midnight + timedelta(minutes=shift.start)
                if shift.end > shift.start:
                    end = midnight + timedelta(minutes=shift.end)
                else:
                    end = midnight + timedelta(days=1, minutes=shift.end)
                boundaries.update((start, end))
    now_ids = [m.member_id for m in _group_on_duty(roster, group, at)]
    for moment in sorted(b for b in boundaries if b > local):
        if [m.member_id for m in _group_on_duty(roster, group, moment)] != now_ids:
            return moment
    return None


def fallback_chain(roster: Roster, helper_type: str, at: datetime) -> list[Member]:
    """Everyone to try, in order: on-duty members of the type, then each fallback, depth first."""
    chain: list[Member] = []
    seen_types: set[str] = set()
    seen_members: set[str] = set()

    def walk(type_id: str) -> None:
        if type_id in seen_types:
            return
        seen_types.add(type_id)
        group = roster.group(type_id)
        if group is None:
            return
        for member in _group_on_duty(roster, group, at):
            if member.member_id not in seen_members:
                seen_members.add(member.member_id)
                chain.append(member)
        for target in group.fallback:
            walk(target)

    walk(helper_type)
    return chain


def ring_timeout(roster: Roster, member: Member) -> int:
    """Seconds to let `member` ring: their group's setting."""
    group = roster.group(member.helper_type)
    if group is None and roster.call_takers is not None and member.helper_type == "call_taker":
        group = roster.call_takers
    return group.ring_timeout_seconds if group else 20


@dataclass(frozen=True)
class Offer:
    """A helper type as the desk offers it: eligible, and who is on duty (or when someone is)."""

    helper_type: str
    label: str
    on_duty: tuple[Member, ...]
    next_change: datetime | None

    @property
    def available(self) -> bool:
        """True when someone in the type or its fallback chain can be dialed now."""
        return bool(self.on_duty)


def offers(
    roster: Roster, eligible: Mapping[str, bool] | tuple[str, ...], at: datetime
) -> list[Offer]:
    """For each eligible helper type: who is on duty now and, if no one, when someone will be."""
    out = []
    for type_id in eligible:
        group = roster.helper_types.get(type_id)
        if group is None:
            continue
        members = tuple(on_duty(roster, type_id, at))
        change = None if members else next_on_duty_change(roster, type_id, at)
        out.append(Offer(type_id, group.label, members, change))
    return out

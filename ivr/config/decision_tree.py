"""Load config/decision_tree.yaml: the diversion questions and the helper types each answer set allows.

Startup refuses a tree in which a "yes" to a question marked `blocks_diversion` (weapon and
immediate danger at least) could lead to any helper, and a tree some answers fall through.
Every combination of answers is checked, so the check is exhaustive, not a sample.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.config.reasons import NOT_ELIGIBLE_REASONS, ReasonCode
from ivr.config.roster import Roster
from ivr.config.yaml_source import Location, SourceFile, read_yaml

TREE_FILE = "decision_tree.yaml"
"""The decision tree file inside the config folder."""

REQUIRED_BLOCKING = ("weapon", "immediate_danger")
"""Questions every tree must ask and mark blocks_diversion: a yes can never reach a helper."""

MAX_QUESTIONS = 9
"""Keypad walk length limit (and keeps the exhaustive safety check at most 512 answer sets)."""

_ID = r"^[a-z][a-z0-9_]{0,31}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Question(_Frozen):
    """One yes/no question, asked by keypad at the desk and as a form field in the console."""

    id: Annotated[str, Field(pattern=_ID)]
    prompt: Annotated[str, Field(min_length=1, max_length=200)]
    blocks_diversion: bool = False


class Rule(_Frozen):
    """If every answer in `when` matches, `allow` these helper types (none: `reason` says why)."""

    when: dict[str, bool] = {}
    allow: tuple[str, ...] = ()
    reason: ReasonCode | None = None


MAX_HANDOFF_REASONS = 9
"""Reasons the desk offers by keypad (keys 1-9; 0 skips)."""


class TreeFile(_Frozen):
    questions: tuple[Question, ...] = Field(min_length=1, max_length=MAX_QUESTIONS)
    rules: tuple[Rule, ...] = Field(min_length=1)
    # What the call is about, picked by keypad at the desk (and offered in the console); the
    # words become the handoff's reason, so QA's crisis words find them. Empty: not asked.
    handoff_reasons: tuple[Annotated[str, Field(min_length=1, max_length=60)], ...] = Field(
        default=(), max_length=MAX_HANDOFF_REASONS
    )


@dataclass(frozen=True)
class DecisionTree:
    """The validated tree."""

    questions: tuple[Question, ...]
    rules: tuple[Rule, ...]
    handoff_reasons: tuple[str, ...] = ()

    def question(self, question_id: str) -> Question | None:
        """A question by id."""
        return next((q for q in self.questions if q.id == question_id), None)

    @property
    def blocking(self) -> tuple[str, ...]:
        """Ids of the questions whose yes forbids any diversion."""
        return tuple(q.id for q in self.questions if q.blocks_diversion)

    def first_match(self, answers: Mapping[str, bool]) -> tuple[int | None, bool]:
        """(index of the first rule `answers` satisfy or None, whether an answer it needs is
        missing): rules apply in order; a missing answer the first possible rule needs means
        "ask more" (ivr.decisions.routing.eligibility turns this into a decision)."""
        for index, rule in enumerate(self.rules):
            pending = False
            matched = True
            for question, wanted in rule.when.items():
                if question not in answers:
                    pending = True
                elif answers[question] is not wanted:
                    matched = False
                    break
            if not matched:
                continue
            return index, pending
        return None, False


def _validate(source: SourceFile) -> TreeFile:
    try:
        return TreeFile.model_validate(source.data if source.data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc: Location = tuple(first["loc"])
        raise source.error(loc, first["msg"]) from None


def all_answer_sets(tree: DecisionTree) -> list[dict[str, bool]]:
    """Every complete combination of yes/no answers to the tree's questions."""
    ids = [q.id for q in tree.questions]
    return [
        dict(zip(ids, combo, strict=True))
        for combo in itertools.product((True, False), repeat=len(ids))
    ]


def check_tree(src: SourceFile, tree: DecisionTree, roster: Roster | None) -> None:
    """Refuse a tree that is unsafe, incomplete or names unknown questions or helper types."""
    ids = [q.id for q in tree.questions]
    for index, question in enumerate(tree.questions):
        if ids.index(question.id) != index:
            raise src.error(("questions", index, "id"), f"question {question.id!r} is asked twice")
    for required in REQUIRED_BLOCKING:
        needed = tree.question(required)
        if needed is None:
            raise src.error(("questions",), f"the tree must ask {required!r}")
        if not needed.blocks_diversion:
            raise src.error(
                ("questions", ids.index(required), "blocks_diversion"),
                f"{required!r} must be marked blocks_diversion: true",
            )
    for index, rule in enumerate(tree.rules):
        loc: Location = ("rules", index)
        for question_id in rule.when:
            if question_id not in ids:
                raise src.error((*loc, "when", question_id), f"unknown question {question_id!r}")
        if rule.allow and rule.reason is not None:
            raise src.error((*loc, "reason"), "a rule that allows helpers takes no reason")
        if not rule.allow:
            if rule.reason is None:
                raise src.error(loc, "a rule allowing no helper must give a reason")
            if rule.reason not in NOT_ELIGIBLE_REASONS:
                allowed = ", ".join(sorted(r.value for r in NOT_ELIGIBLE_REASONS))
                raise src.error((*loc, "reason"), f"reason must be one of {allowed}")
        for a_index, type_id in enumerate(rule.allow):
            if roster is not None and type_id not in roster.helper_types:
                raise src.error(
                    (*loc, "allow", a_index),
                    f"unknown helper type {type_id!r} (not in roster.yaml)",
                )
    for answers in all_answer_sets(tree):
        rule_index, _ = tree.first_match(answers)  # every question answered: never pending
        if rule_index is None:
            raise src.error(("rules",), f"no rule matches the answers {_spoken(answers)}")
        allows = tree.rules[rule_index].allow
        blocked = [q for q in tree.blocking if answers[q]]
        if blocked and allows:
            raise src.error(
                ("rules", rule_index, "allow"),
                f"unsafe: with {blocked[0]} = yes this rule allows a diversion "
                f"({', '.join(allows)}); answers {_spoken(answers)}",
            )


def _spoken(answers: dict[str, bool]) -> str:
    return ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in answers.items())


def parse_tree(src: SourceFile, roster: Roster | None) -> DecisionTree:
    """Validate parsed YAML into a DecisionTree; raise ConfigError on the first problem."""
    spec = _validate(src)
    tree = DecisionTree(
        questions=spec.questions, rules=spec.rules, handoff_reasons=spec.handoff_reasons
    )
    seen: list[str] = []
    for index, text in enumerate(spec.handoff_reasons):
        if text.strip().lower() in seen:
            raise src.error(("handoff_reasons", index), f"reason {text!r} is listed twice")
        seen.append(text.strip().lower())
    check_tree(src, tree, roster)
    return tree


def load_decision_tree(folder: Path, roster: Roster | None = None) -> DecisionTree:
    """Read and check `folder`/decision_tree.yaml (helper types checked against `roster`)."""
    return parse_tree(read_yaml(folder / TREE_FILE), roster)

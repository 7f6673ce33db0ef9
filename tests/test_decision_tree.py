"""The diversion decision tree: a weapon or an immediate danger never reaches a diversion."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.config import ConfigError, load_decision_tree, load_roster
from ivr.config.decision_tree import all_answer_sets, parse_tree
from ivr.config.yaml_source import SourceFile
from ivr.decisions import routing

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config"
ROSTER = load_roster(REPO_CONFIG)
TREE = load_decision_tree(REPO_CONFIG, ROSTER)
QUESTION_IDS = [q.id for q in TREE.questions]
HELPER_TYPES = sorted(ROSTER.helper_types)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO_CONFIG, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


answer_sets = st.dictionaries(st.sampled_from(QUESTION_IDS), st.booleans())


@given(answer_sets)
@settings(max_examples=400, deadline=None)
def test_no_answers_with_a_weapon_or_immediate_danger_ever_reach_a_diversion(
    answers: dict[str, bool],
) -> None:
    result = routing.eligibility(TREE, answers)
    if answers.get("weapon") or answers.get("immediate_danger"):
        assert not result.is_diversion
        assert result.allowed == ()
    if result.decided and not result.allowed:
        assert result.reason is not None


@given(answer_sets)
@settings(max_examples=300, deadline=None)
def test_walking_the_tree_question_by_question_always_ends_in_a_decision(
    answers: dict[str, bool],
) -> None:
    # Answer the questions the walk asks with the generated answers (no for the rest).
    given_answers: dict[str, bool] = {}
    for _ in QUESTION_IDS:
        question = routing.next_question(TREE, given_answers)
        if question is None:
            break
        given_answers[question] = answers.get(question, False)
    result = routing.eligibility(TREE, given_answers)
    assert result.decided
    complete = {q: given_answers.get(q, answers.get(q, False)) for q in QUESTION_IDS}
    # Stopping early never changes the outcome the full set of answers would have had.
    assert routing.eligibility(TREE, complete).allowed == result.allowed


rule_strategy = st.fixed_dictionaries(
    {
        "when": st.dictionaries(st.sampled_from(QUESTION_IDS), st.booleans(), max_size=3),
        "allow": st.lists(st.sampled_from(HELPER_TYPES), max_size=3, unique=True),
    }
)


def _tree_source(rules: list[dict[str, Any]]) -> SourceFile:
    data = yaml.safe_load((REPO_CONFIG / "decision_tree.yaml").read_text())
    for rule in rules:
        if not rule["allow"]:
            rule["reason"] = "not_eligible_danger"
    data["rules"] = [*rules, {"when": {}, "allow": [], "reason": "no_consent"}]
    return SourceFile(Path("decision_tree.yaml"), data, {})


@given(st.lists(rule_strategy, min_size=1, max_size=6))
@settings(max_examples=300, deadline=None)
def test_any_tree_startup_accepts_is_safe_for_every_answer_set(
    rules: list[dict[str, Any]],
) -> None:
    try:
        tree = parse_tree(_tree_source(rules), ROSTER)
    except ConfigError as err:
        assert "unsafe" in err.reason
        return
    for answers in all_answer_sets(tree):
        result = routing.eligibility(tree, answers)
        if answers["weapon"] or answers["immediate_danger"]:
            assert not result.is_diversion


def test_the_shipped_tree_diverts_a_calm_mental_health_call_and_a_health_question() -> None:
    calm = dict.fromkeys(QUESTION_IDS, False) | {"consent": True}
    assert routing.eligibility(TREE, calm).allowed == (
        "embedded_clinician",
        "crisis_988",
        "navigator",
    )
    health = calm | {"health_question": True}
    assert routing.eligibility(TREE, health).allowed == ("telehealth_nurse", "telehealth_doctor")
    assert (
        routing.eligibility(TREE, {"weapon": True}).reason is routing.ReasonCode.NOT_ELIGIBLE_WEAPON
    )
    assert routing.next_question(TREE, {}) == "weapon"
    assert routing.next_question(TREE, {"weapon": True}) is None


def test_startup_refuses_a_tree_where_a_weapon_could_reach_a_helper(config_dir: Path) -> None:
    _edit(
        config_dir / "decision_tree.yaml",
        "  - when: {weapon: yes}\n    allow: []\n    reason: not_eligible_weapon\n",
        "",
    )
    _edit(
        config_dir / "decision_tree.yaml",
        "  - when: {health_question: no}\n",
        "  - when: {weapon: yes, immediate_danger: no, violence: no}\n    allow: [navigator]\n"
        "  - when: {health_question: no}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_decision_tree(config_dir, load_roster(config_dir))
    assert err.value.file.endswith("decision_tree.yaml")
    assert err.value.line is not None
    assert "unsafe: with weapon = yes" in err.value.reason
    assert err.value.field.startswith("rules[")


def test_startup_refuses_a_tree_without_the_weapon_question(config_dir: Path) -> None:
    _edit(
        config_dir / "decision_tree.yaml", "blocks_diversion: true\n", "blocks_diversion: false\n"
    )
    with pytest.raises(ConfigError) as err:
        load_decision_tree(config_dir, load_roster(config_dir))
    assert err.value.field == "questions[0].blocks_diversion"


def test_startup_refuses_a_tree_some_answers_fall_through(config_dir: Path) -> None:
    _edit(
        config_dir / "decision_tree.yaml",
        "  - when: {health_question: no}\n    allow: [embedded_clinician, crisis_988, navigator]\n",
        "",
    )
    with pytest.raises(ConfigError) as err:
        load_decision_tree(config_dir, load_roster(config_dir))
    assert "no rule matches the answers" in err.value.reason


def test_startup_refuses_an_unknown_helper_type_or_question(config_dir: Path) -> None:
    _edit(config_dir / "decision_tree.yaml", "allow: [telehealth_nurse,", "allow: [paramedic,")
    with pytest.raises(ConfigError) as err:
        load_decision_tree(config_dir, load_roster(config_dir))
    assert err.value.field == "rules[5].allow[0]"
    assert "unknown helper type 'paramedic'" in err.value.reason


def test_a_rule_that_allows_no_one_must_say_why(config_dir: Path) -> None:
    _edit(config_dir / "decision_tree.yaml", "    reason: not_eligible_medical\n", "")
    with pytest.raises(ConfigError) as err:
        load_decision_tree(config_dir, load_roster(config_dir))
    assert "must give a reason" in err.value.reason

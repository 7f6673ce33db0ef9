"""The QA queue: which calls are flagged, once each, and findings reported as rates."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from ivr.config.program import ProgramConfig, QASettings
from ivr.reporting import qa
from ivr.reporting.measures import Filters
from ivr.reporting.qa import QAReason
from ivr.store.qa_tables import qa_items
from tests.dashboard_fixtures import (
    _forget_handoffs,
    add_callback,
    add_event,
    add_handoff,
    add_live_call,
    program,
    utc,
)

FIXTURES = (program, _forget_handoffs)
"""Fixtures this module uses from tests/dashboard_fixtures.py (pytest finds them here)."""

START, END = utc(2026, 11, 1), utc(2026, 12, 1)
NOW = utc(2026, 11, 20)
CRISIS_WORDS = ("suicide", "kill myself")


def _no_sample(program: ProgramConfig) -> ProgramConfig:
    return program.model_copy(update={"qa": QASettings(random_sample_rate=0.0)})


def _flags(engine: sa.Engine) -> set[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(qa_items.c.subject_kind, qa_items.c.subject_ref, qa_items.c.reason)
        ).all()
    return {(r[0], r[1], r[2]) for r in rows}


def test_each_rule_flags_the_calls_it_names_and_nothing_else(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    prog = _no_sample(program)
    t = utc(2026, 11, 10, 18)
    c1 = add_live_call(engine, "CA-1", t)
    clinician = add_handoff(engine, c1, "embedded_clinician", t, answer_s=10, duration_s=60)
    c2 = add_live_call(engine, "CA-2", t)
    nurse_ok = add_handoff(engine, c2, "telehealth_nurse", t, answer_s=10, duration_s=60)
    c3 = add_live_call(engine, "CA-3", t)
    nurse_fell = add_handoff(
        engine,
        c3,
        "telehealth_nurse",
        t,
        answer_s=40,
        duration_s=60,
        attempt=2,
        events=("declined",),
    )
    c4 = add_live_call(engine, "CA-4", t)
    returned = add_handoff(
        engine, c4, "telehealth_doctor", t, status="returned", reason_code="chain_exhausted"
    )
    c5 = add_live_call(engine, "CA-5", t)
    crisis_missed = add_handoff(
        engine,
        c5,
        "telehealth_nurse",
        t,
        answer_s=5,
        duration_s=60,
        reason="says she wants to kill myself tonight",
    )
    c6 = add_live_call(engine, "CA-6", t)
    add_handoff(
        engine, c6, "telehealth_nurse", t, answer_s=5, duration_s=60, reason="talk of suicide"
    )
    crisis_given = add_handoff(engine, c6, "crisis_988", t + timedelta(minutes=1), answer_s=5)
    # self-service: crisis words with no transfer to the crisis line; another with one.
    add_event(engine, "CA-ss1", "crisis_words", "crisis_988", t)
    add_event(engine, "CA-ss2", "crisis_words", "crisis_988", t)
    add_event(engine, "CA-ss2", "transfer", "crisis_988", t)
    failed = add_callback(engine, status="failed", created_at=t, deadline_at=t + timedelta(hours=1))
    late = add_callback(engine, status="pending", created_at=t, deadline_at=t + timedelta(hours=1))
    add_callback(engine, status="pending", created_at=t, deadline_at=NOW + timedelta(hours=1))
    add_callback(engine, status="done", created_at=t, deadline_at=t + timedelta(hours=1))

    new = qa.refresh_queue(engine, prog, START, END, NOW, CRISIS_WORDS)
    expected = {
        ("handoff", str(clinician), "mental_health_handoff"),
        ("handoff", str(nurse_fell), "declined_or_fallback"),
        ("handoff", str(returned), "declined_or_fallback"),
        ("handoff", str(crisis_missed), "crisis_not_offered"),
        ("handoff", str(crisis_given), "mental_health_handoff"),
        ("call", "CA-ss1", "crisis_not_offered"),
        ("callback", str(failed), "callback_failed"),
        ("callback", str(late), "callback_overdue"),
    }
    assert _flags(engine) == expected
    assert new == len(expected)
    assert ("handoff", str(nurse_ok), "random_sample") not in _flags(engine)
    # refreshing again flags nothing twice
    assert qa.refresh_queue(engine, prog, START, END, NOW, CRISIS_WORDS) == 0


def test_the_random_sample_is_stable_and_close_to_the_configured_rate(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    drawn = [qa.sampled(f"handoff:{i}", 0.05) for i in range(4000)]
    assert drawn == [qa.sampled(f"handoff:{i}", 0.05) for i in range(4000)]
    assert 140 <= sum(drawn) <= 260  # 5% of 4000 = 200, well inside a binomial spread
    assert not any(qa.sampled(f"x{i}", 0.0) for i in range(100))
    assert all(qa.sampled(f"x{i}", 1.0) for i in range(100))
    everything = program.model_copy(
        update={"qa": QASettings(random_sample_rate=1.0, review_all_helper_types=())}
    )
    t = utc(2026, 11, 10, 18)
    call = add_live_call(engine, "CA-s", t)
    nurse = add_handoff(engine, call, "telehealth_nurse", t, answer_s=5, duration_s=30)
    add_event(engine, "CA-ss", "language", "en", t)
    qa.refresh_queue(engine, everything, START, END, NOW)
    assert _flags(engine) == {
        ("handoff", str(nurse), "random_sample"),
        ("call", "CA-ss", "random_sample"),
    }


def test_findings_are_reported_as_rates_per_reason(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    prog = _no_sample(program)
    t = utc(2026, 11, 12, 18)
    ids = []
    for n in range(4):
        call = add_live_call(engine, f"CA-r{n}", t)
        ids.append(add_handoff(engine, call, "embedded_clinician", t, answer_s=5, duration_s=9))
    call = add_live_call(engine, "CA-r9", t)
    add_handoff(
        engine, call, "telehealth_nurse", t, status="returned", reason_code="chain_exhausted"
    )
    qa.refresh_queue(engine, prog, START, END, NOW)
    items = qa.list_queue(engine, prog, Filters(START, END))
    assert len(items) == 5
    mh = [i for i in items if i.reason is QAReason.MENTAL_HEALTH_HANDOFF]
    for item, ok in zip(mh[:3], (True, True, False), strict=True):
        qa.record_finding(
            engine,
            item.id,
            reviewer="7001",
            compliant=ok,
            not_offered_reason=None if ok else "no_team_on_duty",
            coaching_note="note",
            now=NOW,
        )
    # changing one's mind replaces the finding rather than adding a second
    qa.record_finding(
        engine,
        mh[2].id,
        reviewer="7001",
        compliant=False,
        not_offered_reason="caller_declined",
        coaching_note=None,
        now=NOW,
    )
    rates = qa.finding_rates(engine, prog, Filters(START, END))
    assert rates.flagged == {"mental_health_handoff": 4, "declined_or_fallback": 1}
    assert rates.reviewed == {"mental_health_handoff": 3}
    assert rates.rate("mental_health_handoff") == 2 / 3
    assert rates.rate() == 2 / 3
    assert rates.not_offered == {"caller_declined": 1}
    assert rates.rate("declined_or_fallback") is None
    table = qa.rate_tables(rates)[0]
    assert table.lookup("mental_health_handoff", "compliant %") == "66.7"
    assert len(qa.list_queue(engine, prog, Filters(START, END), reviewed=False)) == 2
    assert len(qa.list_queue(engine, prog, Filters(START, END), reviewed=True)) == 3
    nurse_only = Filters(START, END, helper_type="telehealth_nurse")
    assert [i.reason for i in qa.list_queue(engine, prog, nurse_only, reviewed=None)] == [
        QAReason.DECLINED_OR_FALLBACK
    ]


def test_a_finding_with_an_unknown_reason_or_item_is_refused(
    engine: sa.Engine, program: ProgramConfig
) -> None:
    t = utc(2026, 11, 12, 18)
    call = add_live_call(engine, "CA-x", t)
    add_handoff(engine, call, "crisis_988", t, answer_s=5, duration_s=9)
    qa.refresh_queue(engine, _no_sample(program), START, END, NOW)
    item = qa.list_queue(engine, program, Filters(START, END))[0]
    with pytest.raises(qa.QAError):
        qa.record_finding(
            engine,
            item.id,
            reviewer="7001",
            compliant=False,
            not_offered_reason="because",
            coaching_note=None,
            now=NOW,
        )
    with pytest.raises(qa.QAError):
        qa.record_finding(
            engine,
            item.id + 999,
            reviewer="7001",
            compliant=True,
            not_offered_reason=None,
            coaching_note=None,
            now=NOW,
        )
    assert qa.get_item(engine, item.id).reviewed is False  # type: ignore[union-attr]

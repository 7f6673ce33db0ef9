# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""At the desk the call-taker says what the call is about by keypad (decision_tree.yaml
handoff_reasons), so the helper's whisper, the clinician's page and QA's crisis words get
"suicide or self-harm" instead of "transfer desk". Off unless the program lists reasons."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from flask import Flask

from ivr import create_app
from ivr.accounts import Staff
from ivr.config.yaml_source import ConfigError
from ivr.flows import handoffs
from ivr.flows.desk import TransferDesk
from ivr.simulator import Call
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    PSAP_LINE,
    call_taker,
    desk,
)
from tests.test_transfer_desk import _walk_to_offer

REASONS = [
    "mental health",
    "suicide or self-harm",
    "welfare check",
    "substance use",
    "housing or food",
    "medical question",
]
REPO = Path(__file__).resolve().parent.parent


def config_with_reasons(folder: Path, reasons: list[str]) -> Path:
    shutil.copytree(REPO / "config", folder, dirs_exist_ok=True)
    tree_file = folder / "decision_tree.yaml"
    tree = yaml.safe_load(tree_file.read_text())
    tree["handoff_reasons"] = reasons
    tree_file.write_text(yaml.safe_dump(tree, sort_keys=False))
    return folder


@pytest.fixture
def app(env: dict[str, str], _table_names: list[str], tmp_path: Path) -> Iterator[Flask]:
    folder = config_with_reasons(tmp_path / "config", REASONS)
    application = create_app({**env, "BRIDGELINE_CONFIG": str(folder), "TESTING": True})
    engine = application.extensions["bridgeline"].engine
    with engine.begin() as conn:
        for name in _table_names:
            conn.exec_driver_sql(f"DELETE FROM {name}")
    yield application
    engine.dispose()


def test_the_call_taker_picks_the_reason_by_keypad_and_the_helper_hears_it(
    call: Callable[..., Call], call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    c = call("/voice/transfer-desk", from_number=PSAP_LINE)
    _walk_to_offer(c)
    c.press("1")  # embedded clinician
    heard = c.heard_since_last()
    assert "What is the call about? For mental health, press 1." in heard
    assert "For suicide or self-harm, press 2." in heard and "To skip, press 0." in heard
    c.press("7")  # not a choice: asked again
    assert "That is not one of the choices." in c.heard_since_last()
    c.press("2")
    assert "callback number" in c.heard_since_last()
    c.press("5205550123#")
    assert "Calling an embedded clinician now." in c.heard_since_last()
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    assert handoff.reason == "suicide or self-harm"
    assert "Reason: suicide or self-harm." in desk.whisper_text(handoff)


def test_skipping_the_reason_or_a_bad_number_keeps_the_flow_going(
    call: Callable[..., Call], call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    c = call("/voice/transfer-desk", from_number=PSAP_LINE)
    _walk_to_offer(c)
    c.press("1")
    c.press("4")  # substance use
    c.press("12#")  # not a number that can be called back: asked again, the reason kept
    assert "That number cannot be called back." in c.heard_since_last()
    c.press("#")
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    assert handoff.reason == "substance use"

    skipped = call("/voice/transfer-desk", from_number=PSAP_LINE)
    _walk_to_offer(skipped)
    skipped.press("1")
    skipped.press("0")
    skipped.press("#")
    other = handoffs.live_call_by_sid(engine, skipped.call_sid)
    assert other is not None
    (second,) = handoffs.handoffs_for_call(engine, other.id)
    assert second.reason == "transfer desk"


@pytest.mark.parametrize(
    ("reasons", "message"),
    [
        ([f"reason {n}" for n in range(10)], "handoff_reasons"),
        (["welfare check", "Welfare check"], "is listed twice"),
        ([""], "handoff_reasons"),
    ],
)
def test_a_bad_reason_list_stops_startup_naming_the_file_and_field(
    tmp_path: Path, reasons: list[str], message: str
) -> None:
    from ivr.config.decision_tree import load_decision_tree
    from ivr.config.roster import load_roster

    folder = config_with_reasons(tmp_path / "config", reasons)
    with pytest.raises(ConfigError) as refused:
        load_decision_tree(folder, load_roster(folder))
    text = str(refused.value)
    assert "decision_tree.yaml" in text and message in text

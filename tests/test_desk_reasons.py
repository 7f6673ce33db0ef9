# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""At the desk the call-taker says what the call is about by keypad (decision_tree.yaml
handoff_reasons: mental health, suicide or self-harm, welfare check, substance use, housing or
food, medical question), so the helper's whisper, the clinician's page and QA get "suicide or
self-harm" instead of "transfer desk", and QA's crisis flags work for desk handoffs too."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import responses
import sqlalchemy as sa
import yaml
from flask import Flask
from flask.testing import FlaskClient

from ivr import create_app
from ivr.accounts import Staff
from ivr.config.yaml_source import ConfigError
from ivr.decisions.handoffs import HandoffStatus
from ivr.flows import handoffs
from ivr.flows.desk import TransferDesk
from ivr.simulator import Call
from ivr.store.handoff_tables import live_calls
from ivr.store.qa_tags import tags_of
from tests.console_fixtures import (
    CLINICIAN_STAFF_ID,
    PASSWORD,
    LoggedIn,
    MakeStaff,
    logged_in_client,
    make_staff,
    write_console_config,
)
from tests.dashboard_fixtures import _forget_handoffs, sign_in
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    PSAP_LINE,
    call_json,
    call_taker,
    desk,
    worker_clock,
)
from tests.test_dashboard import CODE, visible_text
from tests.test_handoff_log import CALLER_ID, HELPER_1, _expect_helper_dial
from tests.test_transfer_desk import _walk_to_offer

FIXTURES = (make_staff, logged_in_client, _forget_handoffs)
"""Fixtures this module uses from the console and dashboard fixture modules."""

REASONS = [
    "mental health",
    "suicide or self-harm",
    "welfare check",
    "substance use",
    "housing or food",
    "medical question",
]
REPO = Path(__file__).resolve().parent.parent
NOV = {"start": "2026-11-01", "end": "2026-11-30"}
"""The month of the desk's clock (Wednesday 25 November 2026)."""

Place = Callable[..., Call]


def config_with_reasons(folder: Path, reasons: list[str]) -> Path:
    shutil.copytree(REPO / "config", folder, dirs_exist_ok=True)
    tree_file = folder / "decision_tree.yaml"
    tree = yaml.safe_load(tree_file.read_text())
    tree["handoff_reasons"] = reasons
    tree_file.write_text(yaml.safe_dump(tree, sort_keys=False))
    return folder


@pytest.fixture
def app(env: dict[str, str], _table_names: list[str], tmp_path: Path) -> Iterator[Flask]:
    """The shipped config, with the clinicians linked to console accounts and always on duty."""
    folder = write_console_config(tmp_path / "config")
    application = create_app({**env, "BRIDGELINE_CONFIG": str(folder), "TESTING": True})
    engine = application.extensions["bridgeline"].engine
    with engine.begin() as conn:
        for name in _table_names:
            conn.exec_driver_sql(f"DELETE FROM {name}")
    yield application
    engine.dispose()


def _to_reason_prompt(call: Place, helper_key: str = "1") -> Call:
    """Sign in, answer the tree for a calm caller, pick helper `helper_key`: the reason prompt."""
    c = call("/voice/transfer-desk", from_number=PSAP_LINE)
    _walk_to_offer(c)
    c.press(helper_key)
    assert "What is the call about?" in c.heard_since_last()
    assert c.waiting_for == "Gather"
    return c


def _the_handoff(engine: sa.Engine, c: Call) -> handoffs.Handoff:
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    return handoff


def _qa_rows(html: str) -> list[tuple[str, str]]:
    """(first item id, reasons) of each row of the QA queue, in order."""
    return re.findall(
        r'<tr data-item="(\d+)" data-reason="[a-z_]+" data-reasons="([a-z_ ]+)">', html
    )


def _qa_page(client: FlaskClient, **query: str) -> str:
    answer = client.get("/dashboard/qa", query_string=query, base_url="https://localhost")
    assert answer.status_code == 200, answer.status_code
    return answer.get_data(as_text=True)


def test_the_shipped_desk_asks_what_the_call_is_about_in_plain_words(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    c = _to_reason_prompt(call)
    assert c.heard.splitlines()[-1] == (
        "What is the call about? For mental health, press 1. For suicide or self-harm, press 2. "
        "For welfare check, press 3. For substance use, press 4. For housing or food, press 5. "
        "For medical question, press 6. To end without a transfer, press 0."
    )


def test_suicide_or_self_harm_on_the_keypad_reaches_the_clinicians_page_and_the_qa_queue(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    worker_clock: Callable[..., None],
    logged_in_client: LoggedIn,
    make_staff: MakeStaff,
) -> None:
    """The call-taker presses 2 (suicide or self-harm) for an embedded clinician; Dana Rivera
    hears it in the whisper and accepts, her page shows it in words, and the supervisor's QA
    queue lists the handoff tagged suicide or self-harm."""
    c = _to_reason_prompt(call, "1")  # embedded clinician
    c.press("2")
    assert "callback number" in c.heard_since_last()
    c.press("5205550123#")
    assert "Calling an embedded clinician now." in c.heard_since_last()
    handoff = _the_handoff(engine, c)
    assert handoff.reason == "suicide or self-harm"
    assert tags_of(engine, "handoff", str(handoff.id)) == ["suicide_self_harm"]

    _expect_helper_dial(twilio_api, HELPER_1)
    assert run_jobs() == 1
    helper = call(
        f"/voice/handoff/whisper?h={handoff.id}&at=1", from_number=CALLER_ID, call_sid=HELPER_1
    )
    assert "Reason: suicide or self-harm." in helper.heard_since_last()
    helper.press("1")
    accepted = handoffs.get_handoff(engine, handoff.id)
    assert accepted is not None and accepted.status is HandoffStatus.ACCEPTED

    clinician = logged_in_client(
        "clinician", staff_id=CLINICIAN_STAFF_ID, name="Dana Rivera",
        helper_type="embedded_clinician",
    )  # fmt: skip
    page = clinician.get(f"/console/clinician/handoffs/{handoff.id}").get_data(as_text=True)
    assert '<dd id="handoff-reason-given">suicide or self-harm</dd>' in page
    listed = clinician.get("/api/console/clinician/handoffs").json["handoffs"]
    assert [(h["id"], h["reason_given"]) for h in listed] == [(handoff.id, "suicide or self-harm")]

    supervisor = app.test_client()
    staff = make_staff("supervisor", staff_id="7100")
    assert sign_in(supervisor, staff.staff_id, PASSWORD).status_code == 302
    queue = _qa_page(supervisor, tag="suicide_self_harm", **NOV)
    ((_, reasons),) = _qa_rows(queue)
    assert "mental_health_handoff" in reasons.split()
    text = visible_text(queue)
    assert f"Call #{handoff.live_call_id}" in text and "suicide or self-harm" in text
    assert CODE.findall(text) == []
    # Another tag's queue does not list it: the flag is the reason the call-taker pressed.
    assert _qa_rows(_qa_page(supervisor, tag="housing_food", **NOV)) == []


def test_suicide_or_self_harm_handed_to_a_navigator_is_flagged_as_crisis_not_offered(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    make_staff: MakeStaff,
) -> None:
    """As a self-service call with crisis words and no crisis line: a mandated review."""
    c = _to_reason_prompt(call, "3")  # community navigator (not a crisis helper type)
    c.press("2")  # suicide or self-harm
    c.press("#")
    handoff = _the_handoff(engine, c)
    assert handoff.helper_type == "navigator" and handoff.reason == "suicide or self-harm"

    supervisor = app.test_client()
    staff = make_staff("supervisor", staff_id="7100")
    assert sign_in(supervisor, staff.staff_id, PASSWORD).status_code == 302
    queue = _qa_page(supervisor, **NOV)
    ((_, reasons),) = _qa_rows(queue)
    assert reasons.split()[0] == "crisis_not_offered"
    assert "crisis words heard, no crisis helper offered" in visible_text(queue)


def test_a_wrong_key_is_asked_again_in_plain_words_and_the_reason_kept_to_the_end(
    call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    c = _to_reason_prompt(call)
    c.press("7")  # six reasons: 7 is not one of them
    heard = c.heard_since_last()
    assert "That is not one of the choices.\nWhat is the call about?" in heard
    assert "callback number" not in heard
    c.press("4")  # substance use
    c.press("12#")  # not a number that can be called back: asked again, the reason kept
    assert "That number cannot be called back." in c.heard_since_last()
    c.press("#")
    handoff = _the_handoff(engine, c)
    assert handoff.reason == "substance use"
    assert tags_of(engine, "handoff", str(handoff.id)) == ["substance_use"]
    assert "Reason: substance use." in desk.whisper_text(handoff)


def test_no_key_is_asked_again_then_the_transfer_goes_on_with_no_reason_given(
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    logged_in_client: LoggedIn,
) -> None:
    """A call-taker busy with the caller does not lose the transfer: asked twice more, then on."""
    c = _to_reason_prompt(call)
    c.silence()
    assert "No key was pressed.\nWhat is the call about?" in c.heard_since_last()
    c.silence()
    assert "No key was pressed.\nWhat is the call about?" in c.heard_since_last()
    c.silence()
    heard = c.heard_since_last()
    assert "No key was pressed. The transfer goes on with no reason given.\n" in heard
    assert "callback number" in heard and not c.ended
    c.press("5205550123#")
    assert "Calling an embedded clinician now." in c.heard_since_last()
    handoff = _the_handoff(engine, c)
    assert handoff.reason is None
    assert "Reason: not given." in desk.whisper_text(handoff)
    assert tags_of(engine, "handoff", str(handoff.id)) == []
    call_taker_page = logged_in_client("call_taker", staff_id="4601", name="Casey Call-Taker")
    detail = call_taker_page.get(f"/api/console/calls/{handoff.live_call_id}").json
    assert [h["reason_given"] for h in detail["handoffs"]] == ["not given"]


def test_0_at_the_reason_prompt_ends_without_a_transfer_as_at_the_offer(
    call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    """The desk's caller is the 911 call-taker, so no desk menu has a "dial 911" key: its way
    back to the police/EMS route is 0, "end without a transfer", one key away here as at the
    offer. 9 is not a reason (six are listed) and is asked again, never taken as one."""
    c = _to_reason_prompt(call)
    c.press("9")
    assert "That is not one of the choices." in c.heard_since_last()
    c.press("0")
    assert "No transfer was made. Goodbye." in c.heard_since_last()
    assert c.ended
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(live_calls)).scalar() == 0


def test_without_a_reason_list_the_desk_does_not_ask_and_records_transfer_desk(
    env: dict[str, str], _table_names: list[str], tmp_path: Path
) -> None:
    """A program that lists no handoff_reasons keeps the desk's old key sequence."""
    from ivr.accounts import create_staff
    from ivr.simulator import FlaskTransport
    from ivr.voice.desk_routes import DESK_KEY
    from tests.conftest import AUTH_TOKEN, PUBLIC_BASE
    from tests.desk_fixtures import CALL_TAKER_ID, CALL_TAKER_PIN, WEDNESDAY_11AM
    from tests.twiml_check import check_twiml

    folder = config_with_reasons(tmp_path / "config", [])
    application = create_app({**env, "BRIDGELINE_CONFIG": str(folder), "TESTING": True})
    engine = application.extensions["bridgeline"].engine
    try:
        with engine.begin() as conn:
            for name in _table_names:
                conn.exec_driver_sql(f"DELETE FROM {name}")
        create_staff(engine, staff_id=CALL_TAKER_ID, name="Casey Morgan", roles=["call_taker"],
                     pin=CALL_TAKER_PIN)  # fmt: skip
        application.extensions[DESK_KEY].clock = lambda: WEDNESDAY_11AM
        c = Call(
            FlaskTransport(application.test_client(), PUBLIC_BASE), AUTH_TOKEN, PUBLIC_BASE,
            from_number=PSAP_LINE, on_response=lambda url, body: check_twiml(body),
        ).start("/voice/transfer-desk")  # fmt: skip
        _walk_to_offer(c)
        c.press("1")
        assert "callback number" in c.heard_since_last()
        c.press("#")
        assert _the_handoff(engine, c).reason == "transfer desk"
    finally:
        engine.dispose()


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

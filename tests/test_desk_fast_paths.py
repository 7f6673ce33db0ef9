# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""The desk's fast paths keep their answers exact: a sign-in read in one query and a question
built once per process still greet each call-taker by name and carry their own state, and a
conference callback read without the call's handoffs still applies exactly once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from ivr import accounts
from ivr.accounts import Staff
from ivr.flows.desk import TransferDesk
from ivr.simulator import Call
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    CALL_TAKER_ID,
    CALL_TAKER_PIN,
    PSAP_LINE,
    call_taker,
    desk,
)

Place = Callable[..., Call]
DESK = "/voice/transfer-desk"


def _sign_in(c: Call, staff_id: str, pin: str) -> str:
    c.press(staff_id + "#")
    c.press(pin + "#")
    return c.heard_since_last()


def _waiting_state(c: Call) -> dict[str, list[str]]:
    assert c.waiting is not None
    return parse_qs(urlsplit(c.waiting.attrib["action"]).query)


def test_two_call_takers_signing_in_in_turn_each_hear_their_own_name_and_keep_their_own_state(
    call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    accounts.create_staff(
        engine, staff_id="5173", name="Robin Diaz", roles=["supervisor", "call_taker"], pin="9753"
    )
    for staff_id, pin, name in (
        (CALL_TAKER_ID, CALL_TAKER_PIN, "Casey Morgan"),
        ("5173", "9753", "Robin Diaz"),
        (CALL_TAKER_ID, CALL_TAKER_PIN, "Casey Morgan"),  # built once, answered again
    ):
        c = call(DESK, from_number=PSAP_LINE)
        heard = _sign_in(c, staff_id, pin)
        assert f"Signed in, {name}." in heard
        assert "Is a weapon involved?" in heard
        assert _waiting_state(c)["s"] == [staff_id]


def test_a_clinician_without_a_desk_role_is_refused_even_with_the_right_pin(
    call: Place, desk: TransferDesk, engine: sa.Engine
) -> None:
    accounts.create_staff(engine, staff_id="6200", name="Lee Park", roles=["clinician"], pin="1357")
    c = call(DESK, from_number=PSAP_LINE)
    heard = _sign_in(c, "6200", "1357")
    assert "That staff ID and PIN do not match." in heard
    assert "Signed in" not in heard


def test_a_disabled_account_cannot_sign_in_after_a_good_sign_in_was_remembered(
    call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    first = call(DESK, from_number=PSAP_LINE)
    assert "Signed in, Casey Morgan." in _sign_in(first, CALL_TAKER_ID, CALL_TAKER_PIN)
    accounts.set_active(engine, CALL_TAKER_ID, False)
    second = call(DESK, from_number=PSAP_LINE)
    assert "That staff ID and PIN do not match." in _sign_in(second, CALL_TAKER_ID, CALL_TAKER_PIN)


def test_a_database_that_fails_at_the_pin_step_is_said_plainly_and_the_call_ends(
    call: Place, call_taker: Staff, desk: TransferDesk, tmp_path: Path
) -> None:
    from ivr.store.db import make_engine

    c = call(DESK, from_number=PSAP_LINE)
    c.press(CALL_TAKER_ID + "#")
    working = desk.engine
    desk.engine = make_engine(f"sqlite:///{tmp_path / 'no-tables.sqlite3'}")  # every query fails
    try:
        c.press(CALL_TAKER_PIN + "#")
    finally:
        desk.engine.dispose()
        desk.engine = working
    heard = c.heard_since_last()
    assert "cannot record transfers right now" in heard
    assert "Signed in" not in heard
    assert c.ended


def test_a_database_that_cannot_be_reached_at_the_pin_step_is_said_plainly(
    call: Place, call_taker: Staff, desk: TransferDesk, tmp_path: Path
) -> None:
    from ivr.store.db import make_engine

    c = call(DESK, from_number=PSAP_LINE)
    c.press(CALL_TAKER_ID + "#")
    working = desk.engine
    unreachable = tmp_path / "a-folder"
    unreachable.mkdir()
    desk.engine = make_engine(f"sqlite:///{unreachable}")  # a folder: cannot be opened
    try:
        c.press(CALL_TAKER_PIN + "#")
    finally:
        desk.engine.dispose()
        desk.engine = working
    heard = c.heard_since_last()
    assert "cannot record transfers right now" in heard
    assert c.ended

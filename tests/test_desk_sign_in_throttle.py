# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""One person must not lock a 911 center out of the transfer desk.

A PSAP calls the desk from a few shared trunk numbers. Wrong PINs lock the staff ID that was
tried, never the calling number: the number is slowed down (a pause Twilio plays before the staff
ID prompt, doubling with each wrong PIN), a call-taker with the right staff ID and PIN always
gets in, and a supervisor sees the line in the audit trail and in /metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from lxml import etree
from prometheus_client.parser import text_string_to_metric_families

from ivr.accounts import Staff
from ivr.decisions.sign_in_throttle import (
    MAX_DELAY_PSAP_SECONDS,
    MAX_DELAY_SECONDS,
    caller_delay_seconds,
    should_alert,
    staff_locked,
)
from ivr.flows.desk import TransferDesk
from ivr.simulator import Call
from ivr.store import audit
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    CALL_TAKER_ID,
    CALL_TAKER_PIN,
    WEDNESDAY_11AM,
    call_taker,
    desk,
)

Place = Callable[..., Call]
DESK = "/voice/transfer-desk"
AGENT = "/voice/agent-line"

PSAP_TRUNK = "+15205550172"
"""A PSAP line listed in config/program.yaml (call_jurisdictions.desk_callers)."""

STRANGER = "+15205550177"
"""A number the program does not know."""


def _pause_before_prompt(c: Call) -> int:
    """Seconds of <Pause> Twilio plays before the staff ID prompt in the last answer."""
    root = etree.fromstring(c.last_xml)
    return sum(int(p.get("length", "1")) for p in root.iter("Pause"))


def _wrong_pins(place: Place, number: str, times: int, staff_id: str = "9999") -> None:
    """`times` wrong PINs from `number`, three per call (the desk ends a call at the third)."""
    c = place(DESK, from_number=number)
    for n in range(times):
        if n and n % 3 == 0:
            c = place(DESK, from_number=number)
        c.press(staff_id + "#")
        c.press(f"{1000 + n}#")


def _sign_in(c: Call) -> str:
    c.press(CALL_TAKER_ID + "#")
    c.press(CALL_TAKER_PIN + "#")
    return c.heard_since_last()


def test_a_shared_psap_line_after_many_wrong_pins_still_lets_a_call_taker_in(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    _wrong_pins(call, PSAP_TRUNK, 9)  # three calls, nine wrong PINs, one mistyping colleague
    c = call(DESK, from_number=PSAP_TRUNK)
    heard = c.heard_since_last()
    assert "This line is locked" not in heard and not c.ended
    assert "Please wait" in heard and "Enter your staff ID" in heard
    assert 0 < _pause_before_prompt(c) <= MAX_DELAY_PSAP_SECONDS
    assert "Signed in, Casey Morgan." in _sign_in(c)


def test_a_stranger_guessing_pins_waits_longer_each_time_but_the_right_pin_still_works(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    waits = []
    for _ in range(4):
        _wrong_pins(call, STRANGER, 3)
        c = call(DESK, from_number=STRANGER)
        waits.append(_pause_before_prompt(c))
    assert waits == sorted(waits) and waits[0] < waits[-1] <= MAX_DELAY_SECONDS
    assert waits[-1] > MAX_DELAY_PSAP_SECONDS  # a stranger is slowed more than a PSAP line
    assert "Signed in, Casey Morgan." in _sign_in(c)
    # Another number is not slowed down at all.
    other = call(DESK, from_number="+15205550178")
    assert _pause_before_prompt(other) == 0


def test_the_wrong_pins_are_forgotten_after_the_window(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    _wrong_pins(call, STRANGER, 6)
    assert _pause_before_prompt(call(DESK, from_number=STRANGER)) > 0
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(minutes=16)
    assert _pause_before_prompt(call(DESK, from_number=STRANGER)) == 0


def test_the_staff_id_that_was_guessed_is_locked_on_the_desk_and_the_agent_line(
    call: Place, call_taker: Staff, desk: TransferDesk
) -> None:
    _wrong_pins(call, STRANGER, 5, staff_id=CALL_TAKER_ID)
    for path in (DESK, AGENT):
        c = call(path, from_number=PSAP_TRUNK)
        assert "That staff ID and PIN do not match." in _sign_in(c)


def test_repeated_wrong_pins_from_one_line_alert_a_supervisor_without_the_number(
    call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine, client: FlaskClient
) -> None:
    now = datetime.now(UTC)  # /metrics counts the last 15 minutes of the real clock
    desk.clock = lambda: now
    _wrong_pins(call, PSAP_TRUNK, 4)
    assert [e for e in audit.entries(engine) if e.action == "desk.repeated_wrong_pins"] == []
    _wrong_pins(call, PSAP_TRUNK, 1)
    [alert] = [e for e in audit.entries(engine) if e.action == "desk.repeated_wrong_pins"]
    assert alert.subject.startswith("caller:") and "5205550172" not in alert.subject + alert.details
    assert '"wrong_pins":5' in alert.details and '"psap_line":true' in alert.details
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        for s in family.samples
    }
    assert samples["bridgeline_desk_lines_with_repeated_wrong_pins"] == 1
    assert samples["bridgeline_desk_wrong_pins_recent"] == 5


@pytest.mark.parametrize(
    ("failures", "psap", "seconds"),
    [(0, False, 0), (2, False, 0), (3, False, 2), (4, False, 4), (5, False, 8), (6, False, 16),
     (7, False, 30), (50, False, 30), (3, True, 2), (4, True, 4), (5, True, 5), (500, True, 5)],
)  # fmt: skip
def test_the_wait_doubles_per_wrong_pin_and_is_capped(
    failures: int, psap: bool, seconds: int
) -> None:
    assert caller_delay_seconds(failures, psap) == seconds


def test_a_staff_id_locks_at_five_and_an_alert_fires_at_every_fifth_wrong_pin() -> None:
    assert not staff_locked(4) and staff_locked(5)
    assert [n for n in range(1, 16) if should_alert(n)] == [5, 10, 15]

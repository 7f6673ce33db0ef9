"""311 agents sign in on the agent line and take the residents waiting for a person."""

# ruff: noqa: F811 (fixtures imported from tests.console_fixtures are test parameters)

from __future__ import annotations

from collections.abc import Callable

from ivr.simulator import Call
from tests.console_fixtures import PIN, make_staff  # noqa: F401 — fixtures pytest finds by name
from tests.twiml_check import check_twiml

Place = Callable[..., Call]
AGENT_PHONE = "+15205550177"


def test_agent_signs_in_and_is_connected_to_the_longest_waiting_resident(
    call: Place, make_staff
) -> None:
    make_staff("call_taker", staff_id="7001", name="Robin Diaz")
    c = call("/voice/agent-line", from_number=AGENT_PHONE)
    assert "City agent line. Enter your staff ID" in c.heard_since_last().replace("\n", " ")
    c.press("7001#")
    c.press(PIN + "#")
    heard = c.heard_since_last()
    assert "Signed in, Robin Diaz." in heard and "Connecting you to the next resident." in heard
    queue = check_twiml(c.last_xml).find("./Dial/Queue")
    assert queue is not None and queue.text == "311-agents"
    assert queue.get("url") == "https://bridgeline.example.org/voice/agent-line/connecting"
    c.answer_dial("completed")  # the resident and the agent talked; the resident hung up
    assert "To take the next resident, press 1" in c.heard_since_last()
    c.press("1")
    assert "Connecting you to the next resident." in c.heard_since_last()
    c.answer_dial("no-answer")  # nobody joined the queue in time
    assert "No resident is waiting right now." in c.heard_since_last()
    c.silence()
    assert "Signed out. Goodbye." in c.heard_since_last()
    assert c.ended


def test_the_resident_hears_in_both_languages_that_an_agent_is_joining(signed_post) -> None:
    root = check_twiml(signed_post("/voice/agent-line/connecting").data)
    assert [say.get("language") for say in root.iter("Say")] == ["en-US", "es-US"]


def test_three_wrong_pins_end_the_agent_call(call: Place, make_staff) -> None:
    make_staff("call_taker", staff_id="7002")
    c = call("/voice/agent-line", from_number=AGENT_PHONE)
    for _ in range(3):
        c.press("7002#")
        c.press("0000#")
    assert "Too many wrong PINs. This attempt has been recorded." in c.heard_since_last()
    assert c.ended


def test_a_staff_id_locked_at_the_desk_is_locked_on_the_agent_line(call: Place, make_staff) -> None:
    make_staff("call_taker", staff_id="7003")
    for caller in ("+15205550181", "+15205550182"):
        desk = call("/voice/transfer-desk", from_number=caller)
        for _ in range(3):
            if desk.ended:
                break
            desk.press("7003#")
            desk.press("9999#")
    c = call("/voice/agent-line", from_number=AGENT_PHONE)
    c.press("7003#")
    c.press(PIN + "#")  # the right PIN, but the ID is locked
    assert "That staff ID and PIN do not match." in c.heard_since_last()


def test_a_clinician_cannot_take_311_calls(call: Place, make_staff) -> None:
    make_staff("clinician", staff_id="7004", helper_type="embedded_clinician")
    c = call("/voice/agent-line", from_number=AGENT_PHONE)
    c.press("7004#")
    c.press(PIN + "#")
    assert "That staff ID and PIN do not match." in c.heard_since_last()


def test_the_queue_steps_without_a_signed_in_agent_go_back_to_sign_in(signed_post) -> None:
    for step in ("/voice/agent-line/next", "/voice/agent-line/again"):
        root = check_twiml(signed_post(step, {"Digits": "1"}).data)
        assert "staff ID" in " ".join(s.text or "" for s in root.iter("Say"))

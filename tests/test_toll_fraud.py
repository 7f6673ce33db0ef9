"""Toll fraud: Bridgeline dials the United States and Canada only, never a premium-rate number.

+1 is not "North America": it is shared by 25 countries and territories. A callback to +1 876
(Jamaica) or +1 809 (the Dominican Republic) costs international rates and is the classic
callback-fraud target, so every number is judged by the region `phonenumbers` gives it, on every
path where a number is accepted (keyed in, offered from caller ID, configured) or dialed.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import responses as responses_lib
import sqlalchemy as sa

from ivr import twilio_rest
from ivr.phones import NumberProblem, PhoneNumberError, callback_number, dialable_number
from ivr.simulator import Call
from ivr.store import callbacks as store
from ivr.store.callback_records import CallbackStatus
from ivr.store.tables import callbacks
from tests.callback_fixtures import CallbackWorld, clock, world
from tests.conftest import ACCOUNT_SID

FIXTURES = (clock, world)

Place = Callable[..., Call]

CARIBBEAN = {
    "+18765550123": "Jamaica",
    "+18095550123": "Dominican Republic",
    "+12462501234": "Barbados",
    "+12843001234": "British Virgin Islands",
    "+16492311234": "Turks and Caicos",
    "+18682911234": "Trinidad and Tobago",
}


@pytest.mark.parametrize("number", list(CARIBBEAN), ids=list(CARIBBEAN.values()))
def test_a_plus_one_number_outside_the_us_and_canada_is_never_dialable(number: str) -> None:
    with pytest.raises(PhoneNumberError) as refused:
        callback_number(number)
    assert refused.value.problem is NumberProblem.OUTSIDE_US_CANADA
    # The same number keyed in as ten digits, read in the US region, is refused too.
    with pytest.raises(PhoneNumberError):
        callback_number(number[2:])


def test_us_and_canadian_numbers_are_dialable_and_premium_rate_never_is() -> None:
    assert callback_number("520 555 0123") == "+15205550123"
    assert callback_number("(416) 555-0123") == "+14165550123"  # Toronto
    assert callback_number("+1 604 555 0123") == "+16045550123"  # Vancouver
    with pytest.raises(PhoneNumberError) as premium:
        callback_number("+1 900 555 0123")
    assert premium.value.problem is NumberProblem.PREMIUM_RATE
    # A line an operator marks international may be abroad, but still never premium-rate.
    assert dialable_number("+44 20 7946 0958", international=True) == "+442079460958"
    with pytest.raises(PhoneNumberError):
        dialable_number("+44 909 879 0000", international=True)


def test_resident_keying_in_a_jamaican_number_hears_the_rule_and_nothing_is_saved(
    call: Place, engine: sa.Engine
) -> None:
    c = call()
    c.press("1")
    c.press("5")
    c.press("2")  # a different number than caller ID
    c.press("8765550123#")
    heard = c.heard_since_last()
    assert "We can only call back numbers in the United States and Canada." in heard
    assert "You entered" not in heard  # never read back as if it were fine
    assert "enter the 10 digit phone number" in heard
    c.press("18095550123#")  # with the 1 in front: the Dominican Republic
    assert "only call back numbers in the United States and Canada" in c.heard_since_last()
    c.press("4165550123#")  # Toronto is fine
    assert "You entered 4 1 6, 5 5 5, 0 1 2 3" in c.heard_since_last()
    with engine.connect() as conn:
        numbers = conn.execute(sa.select(callbacks.c.phone_number)).scalars().all()
    assert numbers == ["+14165550123"]


def test_a_caller_from_the_dominican_republic_is_not_offered_their_own_number(
    call: Place, engine: sa.Engine
) -> None:
    c = call(from_number="+18095550123")
    c.press("1")
    c.press("5")
    heard = c.heard_since_last()
    assert "We cannot call back the number you are calling from" in heard
    assert "8 0 9" not in heard
    assert "enter the 10 digit phone number" in heard
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(callbacks)).scalar_one() == 0


def test_a_caribbean_callback_recorded_elsewhere_is_raised_to_a_supervisor_not_dialed(
    world: CallbackWorld,
) -> None:
    callback = world.new_callback(phone_number="+18765550123")
    world.sweep()
    world.settle()
    assert world.create_requests() == []
    after = store.get(world.engine, callback.id)
    assert after is not None and after.status is CallbackStatus.FAILED
    assert after.last_outcome == "invalid_number"
    assert ("not_placed", "number outside_us_canada") in store.events_of(world.engine, callback.id)


def test_the_rest_client_refuses_to_dial_a_number_outside_the_us_and_canada() -> None:
    """The last line of defence: whatever a future path hands it, no such call is placed."""
    from datetime import UTC, datetime

    from twilio.rest import Client

    client = Client(ACCOUNT_SID, "token")
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as api:
        with pytest.raises(PhoneNumberError):
            twilio_rest.create_call(
                client,
                to="+18765550123",
                from_="+15205550100",
                attempt_started=datetime.now(UTC),
                url="https://example.org/x",
            )
        with pytest.raises(PhoneNumberError):
            twilio_rest.add_participant(
                client, "CF" + "1" * 32, label="helper", from_="+15205550100", to="+19005550123"
            )
        assert len(api.calls) == 0


def test_a_caller_from_jamaica_is_told_no_text_can_be_sent_and_none_is(
    call: Place, run_jobs, twilio_api, engine: sa.Engine
) -> None:
    c = call(from_number="+18765550123")
    c.press("1")
    c.press("3")
    c.press("1")
    c.press("1")  # "text me the hours"
    assert "We are sending a text message" not in c.heard_since_last()
    assert run_jobs() == 0


def test_a_text_recorded_to_a_caribbean_number_is_refused_by_the_worker(
    run_jobs, twilio_api, engine: sa.Engine, queues
) -> None:
    from ivr.store import outbox

    sms_id = outbox.queue_sms(
        engine, key="t1", to_number="+18095550123", from_number="+15205550100", body="hours"
    )
    queues.enqueue("sms", "workers.sms.send_sms", sms_id, job_id=f"sms-{sms_id}")
    run_jobs()
    assert len(twilio_api.calls) == 0
    sms = outbox.get(engine, sms_id)
    assert sms is not None and sms.status.value == "failed"

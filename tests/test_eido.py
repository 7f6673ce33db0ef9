# ruff: noqa: F811 (fixtures imported from tests.desk_fixtures are test parameters)
"""Every handoff reads as an EIDO that NENA's own schema accepts: 0 errors, 0 members the
schema does not define, at every step of real desk and intake handoffs (requested, ringing,
connected, declined, dropped, completed, never started)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from flask import Flask

from ivr.accounts import Staff
from ivr.config import load_program
from ivr.decisions.handoffs import EventSource, HandoffEvent, HandoffStatus
from ivr.flows import handoffs
from ivr.flows.desk import TransferDesk
from ivr.partners.eido_http import context_of
from ivr.reporting import eido as eido_export
from ivr.simulator import Call
from tests.conftest import REPO
from tests.console_fixtures import LoggedIn, logged_in_client, make_staff
from tests.desk_fixtures import (  # noqa: F401 — fixtures pytest finds by name
    WEDNESDAY_11AM,
    call_json,
    call_taker,
    call_url,
    desk,
    twilio_post,
    worker_clock,
)
from tests.eido_check import assert_conforms, sample_document, schema_errors, unknown_members
from tests.test_handoff_log import (
    HELPER_1,
    HELPER_2,
    _conference,
    _desk_to_conference,
    _expect_helper_dial,
    _status,
)

FIXTURES = (make_staff, logged_in_client)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

Place = Callable[..., Call]
Post = Callable[..., Any]
ANSWERS_CALM = {
    "weapon": False,
    "immediate_danger": False,
    "violence": False,
    "medical": False,
    "consent": True,
    "health_question": False,
}


def eido_of(app: Flask, handoff_id: int) -> dict[str, Any]:
    """The handoff's EIDO as the app builds it, checked against NENA's schema."""
    document = eido_export.export_eido(
        app.extensions["bridgeline"].engine, handoff_id, context_of(app)
    )
    assert document is not None
    assert_conforms(document)
    assert_references_resolve(document)
    assert "null" not in json.dumps(document), "a member with no value must be left out"
    return document


def _ids(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        if isinstance(document.get("$id"), str):
            yield document["$id"]
        for value in document.values():
            yield from _ids(value)
    elif isinstance(document, list):
        for item in document:
            yield from _ids(item)


def _refs(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        if isinstance(document.get("$ref"), str):
            yield document["$ref"]
        for value in document.values():
            yield from _refs(value)
    elif isinstance(document, list):
        for item in document:
            yield from _refs(item)


def assert_references_resolve(document: dict[str, Any]) -> None:
    """Every `$ref` names a component of the same document, and every `$id` is unique."""
    ids = list(_ids(document))
    assert len(ids) == len(set(ids)), f"duplicate $id: {ids}"
    missing = sorted(set(_refs(document)) - set(ids))
    assert not missing, f"$ref to nothing in the document: {missing}"


def by_id(document: dict[str, Any], member: str) -> dict[str, dict[str, Any]]:
    return {c["$id"]: c for c in document.get(member, [])}


def status_of(document: dict[str, Any]) -> tuple[list[str], list[str]]:
    incident = document["incidentComponent"]
    return incident["incidentStatusCommonRegistryText"], incident["incidentStatusInternalText"]


# --------------------------------------------------------------------------- the checks' own test


def test_nenas_own_sample_passes_the_checks_and_invented_members_do_not() -> None:
    sample = sample_document()
    assert schema_errors(sample) == []
    assert unknown_members(sample) == []
    sample["callComponent"][0]["callbackNumber"] = "+15205550123"
    sample["transferHistory"] = []
    sample["agencyComponent"][0]["agencyType"] = "psap"
    del sample["eidoVersion"]
    assert unknown_members(sample) == ["/callComponent/0/callbackNumber", "/transferHistory"]
    errors = schema_errors(sample)
    assert any("eidoVersion" in e for e in errors)
    assert any(e.startswith("agencyComponent/0/agencyType") for e in errors)


# --------------------------------------------------------------------------- desk handoffs


def test_a_desk_handoff_reads_as_a_conforming_eido_at_every_step_to_completed(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Post,
    worker_clock: Callable[..., None],
) -> None:
    c = _desk_to_conference(call, "2")  # 988
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    hid = handoff.id

    # Requested: recorded before anyone is dialed.
    requested = eido_of(app, hid)
    assert status_of(requested) == (["Active"], ["requested"])
    assert requested["$id"] == (
        f"urn:emergency:uid:incidentid:h{hid}t20261125180000:tucsonaz.gov"
    )  # the PSAP line maps to no jurisdiction: the default, the city
    assert requested["eidoVersion"] == "1.0"
    assert requested["issuingElementIdentification"] == "bridgeline.tucsonaz.gov"
    agencies = by_id(requested, "agencyComponent")
    assert list(agencies) == ["tucsonaz.gov", "988.tucsonaz.gov"]
    assert agencies["tucsonaz.gov"]["agencyRoleDescriptionRegistryText"] == ["CallReceiving"]
    assert agencies["tucsonaz.gov"]["incidentOwningAgencyIndicator"] is True
    assert "City of Tucson" in agencies["tucsonaz.gov"]["agencyJcard"]
    assert agencies["988.tucsonaz.gov"]["agencyRoleDescriptionRegistryText"] == ["TransferredTo"]
    assert "Regional 988 center" in agencies["988.tucsonaz.gov"]["agencyJcard"]
    assert "Bridgeline" not in json.dumps(requested)
    (call_part,) = requested["callComponent"]
    assert call_part["$id"] == f"urn:emergency:uid:callid:{c.call_sid}:tucsonaz.gov"
    assert call_part["direction"] == "incoming"
    assert call_part["callStateRegistryText"] == "callAnswered"
    assert call_part["localCallType"] == "desk"
    # The caller: a person component with role Caller, pointing at the callback component.
    (person,) = requested["personComponent"]
    assert person["personIncidentRoleRegistryText"] == ["Caller"]
    assert person["callIdentifier"] == [call_part["$id"]]
    (callback,) = requested["callbackComponent"]
    assert callback["callBackInformationUri"] == ["tel:+15205550123"]
    assert person["callBackReference"] == {"$ref": callback["$id"]}
    assert call_part["callBackReference"] == {"$ref": callback["$id"]}
    assert callback["$id"].startswith("urn:emergency:uid:eidodatacomponent:")
    # The call-taker: user@agency, in the Call Taking role, of the PSAP.
    (agent,) = requested["agentComponent"]
    assert agent["$id"] == "4821@tucsonaz.gov"
    assert agent["agentRoleRegistryText"] == ["Call Taking"]
    assert agent["agencyReference"] == {"$ref": "tucsonaz.gov"}
    incident = requested["incidentComponent"]
    assert incident["incidentTypeCommonRegistryText"] == "MNTL"
    assert incident["incidentTypeInternalCode"] == "crisis_988"
    (note,) = requested["notesComponent"]
    assert incident["notesReference"] == [{"$ref": note["$id"]}]
    text = note["notesActionComments"]
    assert "Is a weapon involved? No" in text and "Does the caller agree" in text
    assert "Reason: mental health" in text

    # Ringing.
    _expect_helper_dial(twilio_api, HELPER_1)
    assert run_jobs() == 1
    _status(twilio_post, hid, 1, HELPER_1, "ringing", 1, 3)
    assert status_of(eido_of(app, hid)) == (["Active"], ["ringing"])

    # Connected: the helper accepts at the whisper and joins.
    helper = call(
        f"/voice/handoff/whisper?h={hid}&at=1", from_number="+15205550100", call_sid=HELPER_1
    )
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=8)
    helper.press("1")
    _conference(twilio_post, live, "conference-start", 1, 1)
    _conference(twilio_post, live, "participant-join", 2, 1, label="caller", sid=c.call_sid)
    _conference(twilio_post, live, "participant-join", 4, 9, label=f"helper-{hid}-1", sid=HELPER_1)
    connected = eido_of(app, hid)
    assert status_of(connected) == (["Active"], ["connected"])
    agents = by_id(connected, "agentComponent")
    assert list(agents) == ["4821@tucsonaz.gov", "crisis-988-center@988.tucsonaz.gov"]
    assert agents["crisis-988-center@988.tucsonaz.gov"]["agencyReference"] == {
        "$ref": "988.tucsonaz.gov"
    }
    assert connected["callComponent"][0]["agentReference"] == [
        {"$ref": "4821@tucsonaz.gov"},
        {"$ref": "crisis-988-center@988.tucsonaz.gov"},
    ]

    # Completed, then the helper records an outcome: one more note, by the helper's agency.
    _conference(twilio_post, live, "participant-leave", 6, 300, label="caller", sid=c.call_sid)
    _conference(twilio_post, live, "conference-end", 7, 300)
    handoffs.record_outcome(
        engine, hid, "resolved_by_phone", "private words", None, "5101",
        now=WEDNESDAY_11AM + timedelta(minutes=10),
    )  # fmt: skip
    completed = eido_of(app, hid)
    assert status_of(completed) == (["Closed"], ["completed"])
    assert completed["callComponent"][0]["callStateRegistryText"] == "callEnd"
    diversion, outcome = completed["notesComponent"]
    assert "Diversion answers" in diversion["notesActionComments"]
    assert "Outcome: Resolved by phone" in outcome["notesActionComments"]
    assert "private words" not in json.dumps(completed)
    assert outcome["updatedByAgencyReference"] == {"$ref": "988.tucsonaz.gov"}
    assert outcome["lastUpdateTimeStamp"] == "2026-11-25T18:10:00.000Z"
    # Current state only: no history, no member the standard does not define.
    assert "transferHistory" not in completed


def test_a_declined_handoff_that_runs_out_of_helpers_reads_closed_with_the_reason(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Post,
    worker_clock: Callable[..., None],
) -> None:
    c = _desk_to_conference(call, "3")  # navigator: one member, no fallback
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    hid = handoff.id
    _expect_helper_dial(twilio_api, HELPER_1)
    assert run_jobs() == 1
    _status(twilio_post, hid, 1, HELPER_1, "in-progress", 2, 6)
    helper = call(
        f"/voice/handoff/whisper?h={hid}&at=1", from_number="+15205550100", call_sid=HELPER_1
    )
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=10)
    helper.press("2")
    declined = eido_of(app, hid)
    assert status_of(declined) == (["Active"], ["falling_back"])
    _status(twilio_post, hid, 1, HELPER_1, "completed", 3, 12)
    worker_clock(WEDNESDAY_11AM + timedelta(seconds=13))
    twilio_api.add(responses.POST, call_url(c.call_sid), body=call_json(c.call_sid))
    assert run_jobs() == 2  # attempt 2 finds the chain exhausted; the desk leg is returned
    returned = handoffs.get_handoff(engine, hid)
    assert returned is not None and returned.status is HandoffStatus.RETURNED
    document = eido_of(app, hid)
    assert status_of(document) == (["Closed"], ["returned"])
    (note,) = document["notesComponent"]
    assert "Not reached: helper declined" in note["notesActionComments"]
    assert document["incidentComponent"]["incidentTypeCommonRegistryText"] == "WELFARE"
    # Nobody at the helper's agency took the call: it is not named as an agent.
    assert [a["$id"] for a in document["agentComponent"]] == ["4821@tucsonaz.gov"]


def test_a_caller_who_drops_before_anyone_accepts_stays_active_until_called_back(
    app: Flask,
    call: Place,
    call_taker: Staff,
    desk: TransferDesk,
    engine: sa.Engine,
    run_jobs: Callable[[], int],
    twilio_api: responses.RequestsMock,
    twilio_post: Post,
    worker_clock: Callable[..., None],
) -> None:
    c = _desk_to_conference(call, "1")  # embedded clinician
    live = handoffs.live_call_by_sid(engine, c.call_sid)
    assert live is not None
    (handoff,) = handoffs.handoffs_for_call(engine, live.id)
    _expect_helper_dial(twilio_api, HELPER_2)
    run_jobs()
    _status(twilio_post, handoff.id, 1, HELPER_2, "ringing", 1, 2)
    desk.clock = lambda: WEDNESDAY_11AM + timedelta(seconds=10)
    _conference(twilio_post, live, "participant-leave", 3, 9, label="caller", sid=c.call_sid)
    dropped = eido_of(app, handoff.id)
    assert status_of(dropped) == (["Active"], ["caller_dropped"])
    assert dropped["callComponent"][0]["callStateRegistryText"] == "callEnd"
    assert "caller hung up" in dropped["notesComponent"][0]["notesActionComments"]
    # Once the promised callback is made, the incident is closed.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE callbacks SET status = 'done' WHERE id = ?"
            if engine.dialect.name == "sqlite"
            else "UPDATE callbacks SET status = 'done' WHERE id = %s",
            (handoff_callback_id(engine, handoff.id),),
        )
    assert status_of(eido_of(app, handoff.id)) == (["Closed"], ["caller_dropped"])


def handoff_callback_id(engine: sa.Engine, handoff_id: int) -> int:
    found = handoffs.get_handoff(engine, handoff_id)
    assert found is not None and found.callback_id is not None
    return found.callback_id


def test_a_handoff_the_tree_refuses_reads_cancelled_with_no_helper_agency(
    app: Flask, call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    c = call("/voice/intake", from_number="+15205550123")
    with app.app_context():
        handoff = handoffs.start_handoff(
            engine,
            app.extensions["bridgeline"].queues,
            call_sid=c.call_sid,
            call_taker_staff_id="4821",
            helper_type="navigator",
            answers={**ANSWERS_CALM, "weapon": True},
            reason="console",
            now=WEDNESDAY_11AM,
        )
    assert handoff.status is HandoffStatus.NOT_STARTED
    document = eido_of(app, handoff.id)
    assert status_of(document) == (["Cancelled"], ["not_started"])
    assert [a["$id"] for a in document["agencyComponent"]] == ["tucsonaz.gov"]
    assert "Is a weapon involved? Yes" in document["notesComponent"][0]["notesActionComments"]


def test_a_handoff_the_call_taker_cancels_while_it_rings_reads_cancelled(
    app: Flask, call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    c = call("/voice/intake", from_number="+15205550123")
    queues = app.extensions["bridgeline"].queues
    with app.app_context():
        handoff = handoffs.start_handoff(
            engine,
            queues,
            call_sid=c.call_sid,
            call_taker_staff_id="4821",
            helper_type="navigator",
            answers=ANSWERS_CALM,
            reason="console",
            now=WEDNESDAY_11AM,
        )
    assert status_of(eido_of(app, handoff.id)) == (["Active"], ["requested"])
    handoffs.cancel_handoff(
        engine, queues, handoff.id, "4821", now=WEDNESDAY_11AM + timedelta(seconds=5)
    )
    document = eido_of(app, handoff.id)
    assert status_of(document) == (["Cancelled"], ["cancelled"])
    assert (
        "Not reached: cancelled by the call-taker"
        in (document["notesComponent"][0]["notesActionComments"])
    )


# --------------------------------------------------------------------------- intake handoffs


def test_an_intake_handoff_reads_as_a_conforming_eido_under_the_intake_lines_jurisdiction(
    app: Flask, call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine
) -> None:
    # The intake number of the south side (program.yaml) was called.
    c = call("/voice/intake", from_number="+15205550123", to_number="+15205550180")
    with app.app_context():
        handoff = handoffs.start_handoff(
            engine,
            app.extensions["bridgeline"].queues,
            call_sid=c.call_sid,
            call_taker_staff_id="4821",
            helper_type="embedded_clinician",
            answers=ANSWERS_CALM,
            reason="console",
            now=WEDNESDAY_11AM,
        )
    assert handoff.jurisdiction == "south_side"
    document = eido_of(app, handoff.id)
    assert status_of(document) == (["Active"], ["requested"])
    assert document["$id"].endswith(":southside.tucsonaz.gov")
    agencies = by_id(document, "agencyComponent")
    assert list(agencies) == [
        "southside.tucsonaz.gov",
        "embedded-clinician.southside.tucsonaz.gov",
    ]
    assert (
        "South side neighborhoods embedded clinician"
        in (agencies["embedded-clinician.southside.tucsonaz.gov"]["agencyJcard"])
    )
    assert document["callComponent"][0]["localCallType"] == "intake"


def test_an_intake_handoff_read_through_the_console_conforms_at_every_step(
    app: Flask, call: Place, call_taker: Staff, desk: TransferDesk, engine: sa.Engine,
    logged_in_client: LoggedIn,
) -> None:  # fmt: skip
    c = call("/voice/intake", from_number="+15205550123", to_number="+15205550180")
    with app.app_context():
        handoff = handoffs.start_handoff(
            engine,
            app.extensions["bridgeline"].queues,
            call_sid=c.call_sid,
            call_taker_staff_id="4821",
            helper_type="embedded_clinician",
            answers=ANSWERS_CALM,
            reason="console",
            now=WEDNESDAY_11AM,
        )
    supervisor = logged_in_client("supervisor", staff_id="9001")

    def console_copy() -> dict[str, Any]:
        answer = supervisor.get(f"/api/console/handoffs/{handoff.id}/eido")
        assert answer.status_code == 200 and answer.mimetype == "application/json"
        assert answer.json == eido_of(app, handoff.id)  # the same conforming document
        return answer.json  # type: ignore[no-any-return]

    steps = [
        (HandoffEvent.DIALING, {"attempt": 1, "member_id": "clin-rivera"}, "dialing", "Active"),
        (HandoffEvent.RINGING, {"attempt": 1}, "ringing", "Active"),
        (
            HandoffEvent.DECLINED,
            {"attempt": 1, "member_id": "clin-rivera"},
            "falling_back",
            "Active",
        ),
        (
            HandoffEvent.DIALING,
            {"attempt": 2, "member_id": "crisis-988-center"},
            "dialing",
            "Active",
        ),
        (HandoffEvent.ACCEPTED, {"attempt": 2}, "accepted", "Active"),
        (HandoffEvent.HELPER_JOINED, {"attempt": 2}, "connected", "Active"),
        (HandoffEvent.CALLER_LEFT, {}, "completed", "Closed"),
    ]
    assert status_of(console_copy()) == (["Active"], ["requested"])
    for second, (event, fields, internal, common) in enumerate(steps, start=1):
        handoffs.record_event(
            engine,
            handoff.id,
            event,
            source=EventSource.TWILIO,
            dedupe_key=f"intake-story:{second}",
            occurred_at=WEDNESDAY_11AM + timedelta(seconds=second),
            **fields,  # type: ignore[arg-type]
        )
        assert status_of(console_copy()) == ([common], [internal]), event
    agents = [a["$id"] for a in console_copy()["agentComponent"]]
    # The helper who took it works for the 988 center (the fallback), not the clinicians.
    assert agents == ["4821@southside.tucsonaz.gov", "crisis-988-center@988.tucsonaz.gov"]


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("status", "callback_open", "expected"),
    [
        (HandoffStatus.REQUESTED, False, "Active"),
        (HandoffStatus.RINGING, False, "Active"),
        (HandoffStatus.FALLING_BACK, False, "Active"),
        (HandoffStatus.CONNECTED, False, "Active"),
        (HandoffStatus.COMPLETED, False, "Closed"),
        (HandoffStatus.RETURNED, False, "Closed"),
        (HandoffStatus.CALLER_DROPPED, True, "Active"),
        (HandoffStatus.CALLER_DROPPED, False, "Closed"),
        (HandoffStatus.NOT_STARTED, False, "Cancelled"),
        (HandoffStatus.CANCELLED, False, "Cancelled"),
    ],
)
def test_each_handoff_status_maps_to_a_value_of_nenas_incident_status_registry(
    status: HandoffStatus, callback_open: bool, expected: str
) -> None:
    assert eido_export.incident_status(status, callback_open) == expected


def test_program_yaml_refuses_an_incident_type_outside_nenas_registry(tmp_path: Any) -> None:
    from ivr.config import ConfigError

    text = (REPO / "config" / "program.yaml").read_text()
    (tmp_path / "program.yaml").write_text(
        text.replace("navigator: {incident_type: WELFARE}", "navigator: {incident_type: crisis}")
    )
    with pytest.raises(ConfigError) as caught:
        load_program(tmp_path)
    assert "eido.helper_agencies.navigator.incident_type" in str(caught.value)
    assert "program.yaml, line" in str(caught.value)

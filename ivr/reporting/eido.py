"""A handoff as a NENA Emergency Incident Data Object (EIDO, NENA-STA-021.1b, EIDO version 1.0).

One handoff is one incident. The EIDO carries its current state only (the standard: "only
known current state of the Incident is included"); its history stays in the handoff log.

- The document `$id` is the incident tracking identifier
  `urn:emergency:uid:incidentid:<unique>:<agency>`; the call is `urn:emergency:uid:callid:…`;
  components without an identifier of their own are `urn:emergency:uid:eidodatacomponent:…`;
  agencies are named by their `agency_id` (program.yaml) and agents are `user@agency`.
- Agencies: the jurisdiction the call was recorded under (role CallReceiving, owning the
  incident) and, once a helper is being reached, the helper's agency (role TransferredTo).
- The caller is a person component (role Caller) pointing at the callback component that
  holds the callback number; the call and the incident point at it with `$ref`.
- Notes: the diversion answers and the reason (written at the PSAP), and the outcome the
  helper recorded (written at the helper's agency).
- Incident type and status are values from NENA's registries; our own status and helper type
  ride along in the members the standard gives for internal codes.

`build_eido(facts, context)` is pure; `export_eido(engine, handoff_id, context)` reads the rows.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ivr.config import nena_registries as nena
from ivr.config.program import HelperAgency, Jurisdiction, ProgramConfig
from ivr.decisions.handoffs import (
    PENDING,
    REACHED,
    Handoff,
    HandoffStatus,
    LiveCall,
    LiveCallStatus,
    Origin,
)
from ivr.reporting.labels import HANDOFF_STATUS_WORDS, OUTCOME_WORDS, REASON_WORDS, plain
from ivr.store.handoff_tables import handoffs as handoffs_table
from ivr.store.handoffs import get_handoff, get_live_call_only
from ivr.store.tables import callbacks as callbacks_table

EIDO_VERSION = "1.0"
"""The EIDO structure version NENA-STA-021.1b defines."""

OPEN_CALLBACK_STATUSES = frozenset({"draft", "pending", "dialing", "failed"})
"""Callback statuses in which the promise to call a dropped caller back is not yet kept."""

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


@dataclass(frozen=True)
class EidoContext:
    """What the configuration says about agencies, helpers and questions."""

    program: ProgramConfig
    helper_labels: Mapping[str, str] = field(default_factory=dict)
    member_types: Mapping[str, str] = field(default_factory=dict)
    question_prompts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EidoFacts:
    """The rows one EIDO is made from."""

    handoff: Handoff
    live: LiveCall
    outcome_at: datetime | None = None
    callback_open: bool = False


@dataclass(frozen=True)
class _Agency:
    agency_id: str
    name: str
    agency_type: tuple[str, ...]


def context_from(program: ProgramConfig, roster: Any = None, tree: Any = None) -> EidoContext:
    """An EidoContext from validated config (roster and decision tree optional)."""
    labels: dict[str, str] = {}
    members: dict[str, str] = {}
    if roster is not None:
        for group in [*roster.helper_types.values(), *roster.lines.values()]:
            labels[group.type_id] = group.label
            for rostered in group.members:
                members[rostered.member.member_id] = group.type_id
    prompts = {q.id: q.prompt for q in tree.questions} if tree is not None else {}
    return EidoContext(program, labels, members, prompts)


# --------------------------------------------------------------------------- pure decisions


def incident_status(status: HandoffStatus, callback_open: bool = False) -> str:
    """NENA's EIDO-IncidentStatus-Common value for a handoff's status.

    Being worked (requested to connected): Active. Never started, or stopped by the call-taker
    while the helper was still being called: Cancelled. A caller who
    dropped stays Active while the callback promised to them is not yet made. Anything else
    that ended (completed, returned to the call-taker): Closed.
    """
    if status in PENDING or status in (HandoffStatus.ACCEPTED, HandoffStatus.CONNECTED):
        return nena.INCIDENT_ACTIVE
    if status in (HandoffStatus.NOT_STARTED, HandoffStatus.CANCELLED):
        return nena.INCIDENT_CANCELLED
    if status is HandoffStatus.CALLER_DROPPED and callback_open:
        return nena.INCIDENT_ACTIVE
    return nena.INCIDENT_CLOSED


def call_state(live: LiveCall) -> str:
    """The IANA Call States value of the caller's call right now."""
    if live.status is LiveCallStatus.ENDED or live.ended_at is not None:
        return nena.CALL_END
    if live.status is LiveCallStatus.WAITING and live.origin is Origin.INTAKE:
        return nena.CALL_BEGIN
    return nena.CALL_ANSWERED


def incident_type(helper_type: str, program: ProgramConfig) -> str:
    """The EIDO-IncidentType-Common value of a handoff to `helper_type`."""
    configured = program.eido.helper_agencies.get(helper_type)
    if configured is not None and configured.incident_type:
        return configured.incident_type
    if helper_type in program.crisis_helper_types:
        return nena.MENTAL_HEALTH_INCIDENT_TYPE
    return nena.WELFARE_INCIDENT_TYPE


def _domain_label(value: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", value.lower()).strip("-") or "agency"


def _jurisdiction(program: ProgramConfig, jurisdiction_id: str | None) -> Jurisdiction:
    chosen = jurisdiction_id or program.call_jurisdictions.default
    if chosen is not None:
        found = program.jurisdiction(chosen)
        if found is not None:
            return found
    if chosen is None and program.jurisdictions:
        return program.jurisdictions[0]
    label = _domain_label(chosen or "local")
    return Jurisdiction(id=label, name=chosen or "Local agency", kind="agency")


def jurisdiction_of(facts: EidoFacts, context: EidoContext) -> str:
    """The jurisdiction id a handoff's EIDO is issued under (a partner key must cover it)."""
    return _jurisdiction(context.program, facts.handoff.jurisdiction).id


def _psap_agency(place: Jurisdiction) -> _Agency:
    agency_id = place.agency_id or _domain_label(place.id)
    return _Agency(agency_id, place.name, place.agency_type)


def _helper_agency(
    helper_type: str, place: Jurisdiction, psap: _Agency, context: EidoContext
) -> _Agency:
    configured = context.program.eido.helper_agencies.get(helper_type) or HelperAgency()
    label = context.helper_labels.get(helper_type, helper_type.replace("_", " "))
    return _Agency(
        configured.agency_id or f"{_domain_label(helper_type)}.{psap.agency_id}",
        configured.name or f"{place.name} {label}",
        configured.agency_type or psap.agency_type,
    )


def _stamp(value: datetime) -> str:
    """RFC 3339 / W3C date-time in UTC, milliseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jcard(name: str, kind: str) -> str:
    """A jCard (RFC 7095) with a formatted name, as the string the schema asks for."""
    properties = [["version", {}, "text", "4.0"], ["fn", {}, "text", name]]
    properties.append(["kind", {}, "text", kind])
    return json.dumps(["vcard", properties], separators=(",", ":"))


def _words(code: str, words: Mapping[str, str] | None = None) -> str:
    """A stored code in the words staff pages use (ivr.reporting.labels)."""
    return (words or {}).get(code) or plain(code)


# --------------------------------------------------------------------------- the document


def build_eido(facts: EidoFacts, context: EidoContext) -> dict[str, Any]:
    """The EIDO of one handoff, from its rows and the configuration. Pure."""
    handoff, live = facts.handoff, facts.live
    program = context.program
    place = _jurisdiction(program, handoff.jurisdiction)
    psap = _psap_agency(place)
    reached_type = context.member_types.get(handoff.member_id or "", handoff.helper_type)
    helper = _helper_agency(reached_type, place, psap, context)
    # The helper's agency is named while the call is going to it or once it has had it; the
    # helper (an agent) once they have taken it.
    helper_reached = handoff.status in REACHED or handoff.connected_at is not None
    helper_listed = helper_reached or handoff.status in PENDING

    unique = f"h{handoff.id}t{handoff.created_at.astimezone(UTC):%Y%m%d%H%M%S}"

    def component_id(kind: str, agency: _Agency = psap) -> str:
        return f"urn:emergency:uid:eidodatacomponent:{unique}{kind}:{agency.agency_id}"

    def ref(target: str) -> dict[str, str]:
        return {"$ref": target}

    def prologue(
        component: str, at: datetime, agency: _Agency = psap, agent: str | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "$id": component,
            "lastUpdateTimeStamp": _stamp(at),
            "updatedByAgencyReference": ref(agency.agency_id),
        }
        if agent:
            out["updatedByAgentReference"] = ref(agent)
        return out

    incident_id = f"urn:emergency:uid:incidentid:{unique}:{psap.agency_id}"
    call_unique = _NOT_ALNUM.sub("", live.call_sid) or f"live{live.id}"
    call_id = f"urn:emergency:uid:callid:{call_unique}:{psap.agency_id}"
    caller_id = component_id("caller")
    callback_id = component_id("callback")
    updated = max(handoff.updated_at, handoff.created_at)

    call_taker = (
        f"{_NOT_ALNUM.sub('', handoff.call_taker_staff_id)}@{psap.agency_id}"
        if handoff.call_taker_staff_id and _NOT_ALNUM.sub("", handoff.call_taker_staff_id)
        else None
    )
    helper_agent = (
        f"{re.sub(r'[^A-Za-z0-9._-]', '', handoff.member_id)}@{helper.agency_id}"
        if handoff.member_id
        else None
    )

    # Agencies: the PSAP owns the incident; the helper's agency is where the call is going.
    agencies = [
        {
            **prologue(psap.agency_id, handoff.created_at),
            "agencyJcard": _jcard(place.name, "org"),
            "agencyRoleDescriptionRegistryText": [nena.AGENCY_CALL_RECEIVING],
            "incidentOwningAgencyIndicator": True,
            "agencyType": list(psap.agency_type),
        }
    ]
    if helper_listed and helper.agency_id != psap.agency_id:
        agencies.append(
            {
                **prologue(helper.agency_id, handoff.created_at),
                "agencyJcard": _jcard(helper.name, "org"),
                "agencyRoleDescriptionRegistryText": [nena.AGENCY_TRANSFERRED_TO],
                "incidentOwningAgencyIndicator": False,
                "agencyType": list(helper.agency_type),
            }
        )

    agents: list[dict[str, Any]] = []
    if call_taker:
        agents.append(
            {
                **prologue(call_taker, handoff.created_at, agent=call_taker),
                "agentRoleRegistryText": [nena.AGENT_CALL_TAKING],
                "agencyReference": ref(psap.agency_id),
            }
        )
    if helper_agent and helper_reached:
        agents.append(
            {
                **prologue(
                    helper_agent,
                    handoff.connected_at or handoff.accepted_at or updated,
                    helper,
                    helper_agent,
                ),
                "agentRoleRegistryText": [nena.AGENT_CALL_TAKING],
                "agencyReference": ref(helper.agency_id),
            }
        )
    agent_refs = [ref(a["$id"]) for a in agents]

    # Notes: what the call-taker asked and why; what the helper recorded.
    notes: list[dict[str, Any]] = []
    lines = [
        f"<li>{html.escape(context.question_prompts.get(q, _words(q)))} "
        f"{'Yes' if answer else 'No'}</li>"
        for q, answer in handoff.answers.items()
    ]
    helper_label = context.helper_labels.get(handoff.helper_type, _words(handoff.helper_type))
    summary = [
        f"<p>Handoff to {html.escape(helper_label)} ({html.escape(_words(handoff.status.value, HANDOFF_STATUS_WORDS))}).</p>"
    ]
    if handoff.reason:
        summary.append(f"<p>Reason: {html.escape(handoff.reason)}</p>")
    if handoff.reason_code:
        summary.append(
            f"<p>Not reached: {html.escape(_words(handoff.reason_code, REASON_WORDS))}</p>"
        )
    if lines:
        summary.append(f"<p>Diversion answers:</p><ul>{''.join(lines)}</ul>")
    diversion_note = component_id("diversion")
    notes.append(
        {
            **prologue(diversion_note, updated, agent=call_taker),
            "notesActionComments": "".join(summary),
            **({"agentReference": ref(call_taker)} if call_taker else {}),
        }
    )
    if handoff.outcome:
        outcome_words = [
            f"<p>Outcome: {html.escape(_words(handoff.outcome, OUTCOME_WORDS).capitalize())}</p>"
        ]
        if handoff.follow_up_at is not None:
            outcome_words.append(f"<p>Follow-up: {_stamp(handoff.follow_up_at)}</p>")
        author = helper_agent if helper_agent and helper_reached else None
        notes.append(
            {
                **prologue(
                    component_id("outcome", helper if author else psap),
                    facts.outcome_at or updated,
                    helper if author else psap,
                    author,
                ),
                "notesActionComments": "".join(outcome_words),
                **({"agentReference": ref(author)} if author else {}),
            }
        )
    note_refs = [ref(n["$id"]) for n in notes]

    callbacks: list[dict[str, Any]] = []
    if handoff.callback_number:
        callbacks.append(
            {
                **prologue(callback_id, live.created_at),
                "callBackInformationUri": [f"tel:{handoff.callback_number}"],
            }
        )
    callback_ref = {"callBackReference": ref(callback_id)} if callbacks else {}

    person = {
        **prologue(caller_id, live.created_at),
        "personIncidentRoleRegistryText": [nena.PERSON_CALLER],
        "callIdentifier": [call_id],
        **callback_ref,
    }

    call_updated = live.ended_at or max(live.created_at, handoff.created_at)
    call: dict[str, Any] = {
        **prologue(call_id, call_updated, agent=call_taker),
        "standardPrimaryCallType": nena.PRIMARY_CALL_TYPE_EMERGENCY,
        "localCallType": live.origin.value,
        "direction": "incoming",
        "callStartTimestamp": _stamp(live.created_at),
        "callStateRegistryText": call_state(live),
        **callback_ref,
        "personReference": [ref(caller_id)],
    }
    if agent_refs:
        call["agentReference"] = agent_refs

    incident: dict[str, Any] = {
        **prologue(component_id("incident"), updated),
        "incidentTypeInternalCode": handoff.helper_type,
        "incidentTypeInternalText": helper_label,
        "incidentTypeCommonRegistryText": incident_type(handoff.helper_type, program),
        "incidentStatusInternalText": [handoff.status.value],
        "incidentStatusCommonRegistryText": [incident_status(handoff.status, facts.callback_open)],
        "internalIncidentId": str(handoff.id),
        "personReference": [ref(caller_id)],
        "notesReference": note_refs,
    }
    if agent_refs:
        incident["agentReference"] = agent_refs

    document: dict[str, Any] = {
        **prologue(incident_id, updated, agent=call_taker),
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": program.eido.issuing_element or psap.agency_id,
        "incidentComponent": incident,
        "callComponent": [call],
        "agencyComponent": agencies,
        "personComponent": [person],
        "notesComponent": notes,
    }
    if callbacks:
        document["callbackComponent"] = callbacks
    if agents:
        document["agentComponent"] = agents
    return document


# --------------------------------------------------------------------------- reading rows


def load_facts(engine: sa.Engine, handoff_id: int) -> EidoFacts | None:
    """The rows of one handoff's EIDO, or None when there is no such handoff."""
    handoff = get_handoff(engine, handoff_id)
    if handoff is None:
        return None
    live = get_live_call_only(engine, handoff.live_call_id)
    if live is None:
        return None
    with engine.connect() as conn:
        outcome_at = conn.execute(
            sa.select(handoffs_table.c.outcome_at).where(handoffs_table.c.id == handoff_id)
        ).scalar_one_or_none()
        callback_status = None
        if handoff.callback_id is not None:
            callback_status = conn.execute(
                sa.select(callbacks_table.c.status).where(
                    callbacks_table.c.id == handoff.callback_id
                )
            ).scalar_one_or_none()
    if outcome_at is not None and outcome_at.tzinfo is None:
        outcome_at = outcome_at.replace(tzinfo=UTC)
    return EidoFacts(
        handoff=handoff,
        live=live,
        outcome_at=outcome_at,
        callback_open=callback_status in OPEN_CALLBACK_STATUSES,
    )


def context_for(config_dir: Path, default_timezone: str = "UTC") -> EidoContext:
    """An EidoContext read from the config folder (for workers and the CLI)."""
    from ivr.config import load_decision_tree, load_program, load_roster

    roster = load_roster(config_dir)
    tree = load_decision_tree(config_dir, roster)
    return context_from(load_program(config_dir, default_timezone), roster, tree)


def export_eido(engine: sa.Engine, handoff_id: int, context: EidoContext) -> dict[str, Any] | None:
    """The EIDO of handoff `handoff_id` as it stands now, or None when there is no such one."""
    facts = load_facts(engine, handoff_id)
    return build_eido(facts, context) if facts is not None else None

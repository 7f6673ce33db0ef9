"""Values from the registries NENA-STA-021.1b (EIDO) names, for the members that must hold them.

Taken from the standard's section 3 (IANA actions) and its sample; only the values Bridgeline
uses or lets operators choose are listed. The incident types are the APCO ANS 2.103.2-2019 codes
in NENA's "EIDO-IncidentType-Common" registry.
"""

from __future__ import annotations

INCIDENT_TYPES: dict[str, str] = {
    "NONEMERG": "The Incident is not an emergency",
    "EDP": "EDP, Emotional Disturbance, Abnormal Behavior",
    "MNTL": "Mental Person Non-Violent",
    "MTLV": "Mental Person Violent",
    "SUICIDE": "Suicide",
    "SUICTHRT": "Attempt Or Threatening Suicide",
    "WELFARE": "Man Down Check, Welfare Check",
    "SUSP": "Suspicious Incident, Circumstances, Unknown Problems",
}
"""EIDO-IncidentType-Common values an operator may map a helper type to (program.yaml)."""

MENTAL_HEALTH_INCIDENT_TYPE = "MNTL"
"""The incident type of a crisis helper type (program.yaml crisis_helper_types) by default."""

WELFARE_INCIDENT_TYPE = "WELFARE"
"""The incident type of any other helper type by default."""

INCIDENT_ACTIVE = "Active"
INCIDENT_CLOSED = "Closed"
INCIDENT_CANCELLED = "Cancelled"
"""EIDO-IncidentStatus-Common values."""

AGENCY_CALL_RECEIVING = "CallReceiving"
AGENCY_TRANSFERRED_TO = "TransferredTo"
"""EIDO-AgencyRole values."""

AGENT_CALL_TAKING = "Call Taking"
"""The "Agent Roles" registry value (NENA-STA-010) for whoever takes the call at an agency:
the call-taker at the PSAP, the helper at the agency the call was transferred to."""

PERSON_CALLER = "Caller"
"""EIDO-PersonRole value of the person who called."""

CALL_BEGIN = "callBegin"
CALL_ANSWERED = "callAnswered"
CALL_END = "callEnd"
"""IANA Call States values."""

PRIMARY_CALL_TYPE_EMERGENCY = "emergency"
"""LogEvent CallTypes "Primary" value of an emergency call (as in NENA's sample)."""

AGENCY_TYPE_PSAP = "psap"
"""urn:emergency:service:responder value (without the prefix) of a PSAP, as in NENA's sample."""

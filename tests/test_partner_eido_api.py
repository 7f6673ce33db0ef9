"""A partner agency reads a handoff's EIDO with its key: `GET /api/eido/incidents/<id>`,
only for its own jurisdictions and with the eido scope; the console's EIDO route returns the
same conforming document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from ivr import partners
from ivr.flows import handoffs
from ivr.simulator import Call
from ivr.store.audit_tables import audit_log
from tests.console_fixtures import LoggedIn, logged_in_client, make_staff
from tests.desk_fixtures import WEDNESDAY_11AM
from tests.eido_check import assert_conforms

FIXTURES = (make_staff, logged_in_client)
"""Fixtures this module uses from tests/console_fixtures.py (pytest finds them here)."""

CALM = {
    "weapon": False,
    "immediate_danger": False,
    "violence": False,
    "medical": False,
    "consent": True,
    "health_question": False,
}
SOUTH_SIDE_INTAKE = "+15205550180"


def intake_handoff(app: Flask, call: Callable[..., Call], to_number: str) -> handoffs.Handoff:
    """A caller rings an intake number and a call-taker hands them to a navigator."""
    c = call("/voice/intake", from_number="+15205550123", to_number=to_number)
    with app.app_context():
        return handoffs.start_handoff(
            app.extensions["bridgeline"].engine,
            app.extensions["bridgeline"].queues,
            call_sid=c.call_sid,
            call_taker_staff_id="4821",
            helper_type="navigator",
            answers=CALM,
            reason="console",
            now=WEDNESDAY_11AM,
        )


@pytest.fixture
def south_side(app: Flask, call: Callable[..., Call]) -> handoffs.Handoff:
    return intake_handoff(app, call, SOUTH_SIDE_INTAKE)


@pytest.fixture
def city(app: Flask, call: Callable[..., Call]) -> handoffs.Handoff:
    return intake_handoff(app, call, "+15205550100")


def read(client: FlaskClient, incident: Any, key: str | None, how: str = "bearer") -> Any:
    headers = {}
    query = ""
    if key is not None and how == "bearer":
        headers["Authorization"] = f"Bearer {key}"
    elif key is not None and how == "header":
        headers["X-API-Key"] = key
    elif key is not None:
        query = f"?api_key={key}"
    return client.get(f"/api/eido/incidents/{incident}{query}", headers=headers)


def test_a_partner_reads_its_jurisdictions_eido_as_application_json(
    client: FlaskClient, engine: sa.Engine, south_side: handoffs.Handoff
) -> None:
    key = partners.create_partner(
        engine, name="South side navigators", scopes=["eido"], jurisdictions=["south_side"]
    ).key
    answer = read(client, south_side.id, key)
    assert answer.status_code == 200
    assert answer.mimetype == "application/json"
    assert answer.headers["Cache-Control"] == "no-store"
    document = answer.json
    assert_conforms(document)
    assert document["incidentComponent"]["internalIncidentId"] == str(south_side.id)
    # By its incident tracking identifier too, and with the key in a header or the query.
    by_tracking_id = read(client, document["$id"], key, how="header")
    assert by_tracking_id.status_code == 200 and by_tracking_id.json == document
    assert read(client, south_side.id, key, how="query").json == document
    wrong_tracking_id = document["$id"].replace(":southside.", ":elsewhere.")
    assert read(client, wrong_tracking_id, key).status_code == 404


def test_keys_are_refused_with_a_reason_and_the_use_is_audited(
    client: FlaskClient,
    engine: sa.Engine,
    south_side: handoffs.Handoff,
    city: handoffs.Handoff,
) -> None:
    south = partners.create_partner(
        engine, name="South side navigators", scopes=["eido"], jurisdictions=["south_side"]
    )
    crm = partners.create_partner(engine, name="City CRM", scopes=["open311"])
    no_key = read(client, south_side.id, None)
    assert no_key.status_code == 401 and no_key.json["reason"] == "unknown"
    assert no_key.headers["WWW-Authenticate"].startswith("Bearer")
    assert read(client, south_side.id, "bl_00000000_" + "x" * 43).status_code == 401
    other_place = read(client, city.id, south.key)
    assert other_place.status_code == 403 and other_place.json["reason"] == "out_of_jurisdiction"
    wrong_scope = read(client, south_side.id, crm.key)
    assert wrong_scope.status_code == 403 and wrong_scope.json["reason"] == "out_of_scope"
    missing = read(client, 999999, south.key)
    assert missing.status_code == 404 and missing.json["reason"] == "not_found"
    partners.set_enabled(engine, south.partner.key_prefix, False)
    assert read(client, south_side.id, south.key).json["reason"] == "disabled"
    with engine.connect() as conn:
        uses = conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action, audit_log.c.subject).where(
                audit_log.c.action.in_(["partner.use", "partner.refused"])
            )
        ).all()
    assert (
        f"partner:{south.partner.key_prefix}",
        "partner.refused",
        f"eido:incident/{city.id}",
    ) in uses
    assert (f"partner:{south.partner.key_prefix}", "partner.use", "eido:incident/999999") in uses
    assert len(uses) == 6  # one entry per request above


def test_a_partner_over_its_rate_limit_is_told_to_wait(
    client: FlaskClient, engine: sa.Engine, city: handoffs.Handoff
) -> None:
    key = partners.create_partner(
        engine, name="County CAD", scopes=["eido"], rate_limit_per_minute=2
    ).key
    answers = [read(client, city.id, key) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "60"


def test_the_console_route_returns_the_same_conforming_document_as_the_partner_api(
    client: FlaskClient,
    engine: sa.Engine,
    logged_in_client: LoggedIn,
    south_side: handoffs.Handoff,
) -> None:
    key = partners.create_partner(engine, name="County CAD", scopes=["eido"]).key
    partner_copy = read(client, south_side.id, key).json
    supervisor = logged_in_client("supervisor", staff_id="9001")
    console = supervisor.get(f"/api/console/handoffs/{south_side.id}/eido")
    assert console.status_code == 200 and console.mimetype == "application/json"
    assert console.json == partner_copy
    assert_conforms(console.json)

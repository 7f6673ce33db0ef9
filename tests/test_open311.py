"""Open311 GeoReport v2 as a city's work-order system reads it: through `georeport`, a client
library someone else wrote (PyPI), over real HTTP on loopback, and through the form posts the
specification describes. Element names, wrappers, dates and error lists are the specification's.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from georeport import GeoReport
from lxml import etree
from werkzeug.serving import make_server

from ivr import partners
from ivr.simulator import Call
from ivr.store import audit, service_requests
from ivr.store.tables import service_requests as requests_table

Place = Callable[..., Call]

SERVICE_CODES = ["streetlight", "pothole", "noise", "abandoned_vehicle", "other"]
W3C = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}([+-]\d{2}:\d{2}|Z)$"


@pytest.fixture
def endpoint(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on loopback; the Open311 endpoint's root URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/open311/v2"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def city_crm(engine: sa.Engine) -> partners.NewPartner:
    return partners.create_partner(
        engine, name="City CRM", scopes=[partners.Scope.OPEN311], jurisdictions=["city"]
    )


def phone_report(call: Place, engine: sa.Engine, where: str | None = "Speedway and Euclid") -> str:
    """A resident files a pothole report by phone; its reference number."""
    c = call()
    c.press("1")  # English
    c.press("1")  # report
    c.press("2")  # pothole
    c.record(seconds=11)
    if where is None:
        c.press("1")  # skip the address
    else:
        c.speak(where)
        c.press("1")  # that is right
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(requests_table.c.reference).order_by(requests_table.c.id.desc())
            ).scalar()
        )


def xml_of(response: requests.Response) -> Any:
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return etree.fromstring(response.content)


# ---------------------------------------------------------------------------- services


def test_a_partner_lists_the_report_categories_as_services_in_json_and_xml(endpoint: str) -> None:
    services = GeoReport(endpoint).get_service_list()
    assert [s["service_code"] for s in services] == SERVICE_CODES
    pothole = services[1]
    assert pothole == {
        "service_code": "pothole",
        "service_name": "Pothole or road damage",
        "description": "A pothole, sinkhole or broken pavement in a street.",
        "metadata": False,
        "type": "realtime",
        "keywords": "pothole, road, pavement",
        "group": "streets",
    }
    as_xml = GeoReport(endpoint, output_format="xml").get_service_list()
    assert [s["service_code"] for s in as_xml] == SERVICE_CODES
    assert as_xml[1]["metadata"] == "false" and as_xml[1]["type"] == "realtime"
    root = xml_of(requests.get(f"{endpoint}/services.xml", timeout=5))
    assert root.tag == "services" and {child.tag for child in root} == {"service"}


def test_a_service_definition_and_an_unknown_service_code(endpoint: str) -> None:
    client = GeoReport(endpoint)
    assert client.get_service_definition("noise") == {"service_code": "noise", "attributes": []}
    root = xml_of(requests.get(f"{endpoint}/services/noise.xml", timeout=5))
    assert root.tag == "service_definition" and root.findtext("service_code") == "noise"
    with pytest.raises(requests.HTTPError) as refused:
        client.get_service_definition("graffiti")
    assert refused.value.response.status_code == 404
    assert refused.value.response.json() == [
        {"code": 404, "description": "service_code was not found"}
    ]


def test_the_discovery_document_names_the_specification_and_the_formats(endpoint: str) -> None:
    found = requests.get(f"{endpoint}/discovery.json", timeout=5).json()
    (entry,) = found["endpoints"]
    assert entry["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert entry["url"] == "https://bridgeline.example.org/open311/v2"
    assert entry["formats"] == ["text/xml", "application/json"]
    root = xml_of(requests.get(f"{endpoint}/discovery.xml", timeout=5))
    assert [f.text for f in root.iter("format")] == ["text/xml", "application/json"]


# -------------------------------------------------------------------- reading requests


def test_a_phone_report_reads_back_through_open311_in_json_and_xml(
    call: Place, engine: sa.Engine, endpoint: str
) -> None:
    reference = phone_report(call, engine)
    report = GeoReport(endpoint).get_service_request(reference)
    assert report["service_request_id"] == reference
    assert report["status"] == "open" and report["status_notes"] is None
    assert report["service_code"] == "pothole"
    assert report["service_name"] == "Pothole or road damage"
    assert report["address"] == "Speedway and Euclid"
    assert report["agency_responsible"] == "Streets Maintenance"
    assert report["description"] is None  # the resident's recording stays with staff
    assert re.match(W3C, report["requested_datetime"]) and re.match(W3C, report["updated_datetime"])
    assert report["requested_datetime"].endswith("-07:00")  # Arizona, no daylight saving
    for stamp in (report["requested_datetime"], report["updated_datetime"]):
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(hours=-7)
    as_xml = GeoReport(endpoint, output_format="xml").get_service_request(reference)
    assert as_xml["service_request_id"] == reference and as_xml["status"] == "open"
    assert as_xml["address"] == "Speedway and Euclid"
    root = xml_of(requests.get(f"{endpoint}/requests/{reference}.xml", timeout=5))
    assert root.tag == "service_requests"
    (request,) = root
    assert request.tag == "request"
    assert [child.tag for child in request][:3] == ["service_request_id", "status", "status_notes"]
    assert request.findtext("requested_datetime") == report["requested_datetime"]


def test_a_report_whose_caller_skipped_the_address_still_reads(
    call: Place, engine: sa.Engine, endpoint: str
) -> None:
    reference = phone_report(call, engine, where=None)
    report = GeoReport(endpoint).get_service_request(reference)
    assert report["address"] is None and report["status"] == "open"
    root = xml_of(requests.get(f"{endpoint}/requests/{reference}.xml", timeout=5))
    assert root.find("request/address").text is None  # an empty element, as the spec shows


def test_requests_are_filtered_the_way_the_specification_says(
    call: Place, engine: sa.Engine, endpoint: str
) -> None:
    first = phone_report(call, engine)
    second = phone_report(call, engine, where="Main and Congress")
    found = service_requests.find_by_reference(engine, second)
    assert found is not None
    service_requests.change(
        engine,
        found.id,
        actor="staff:4101",
        status=service_requests.RequestStatus.RESOLVED,
        public_note="Filled on Tuesday.",
        internal_note=None,
        assigned_to=None,
    )
    client = GeoReport(endpoint)
    both = client.get_service_requests(service_request_id=f"{first},{second}")
    assert {r["service_request_id"] for r in both} == {first, second}
    closed = client.get_service_requests(status="closed")
    assert [r["service_request_id"] for r in closed] == [second]
    assert closed[0]["status_notes"] == "Filled on Tuesday."
    assert [r["service_request_id"] for r in client.get_service_requests(status="open")] == [first]
    assert client.get_service_requests(service_code="noise") == []
    assert len(client.get_service_requests(service_code="noise,pothole")) == 2
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(client.get_service_requests(start_date=an_hour_ago)) == 2
    assert client.get_service_requests(end_date="2020-01-01T00:00:00Z") == []
    recent = client.get_service_requests(start_date="2020-01-01T00:00:00Z")
    assert recent == []  # 2020-01-01 plus the 90 days the specification allows


def test_bad_filters_answer_400_with_the_error_list(endpoint: str) -> None:
    for query, description in (
        ("status=pending", "status must be open or closed"),
        ("service_code=graffiti", "service_code is not a service of this endpoint (see services)"),
        ("start_date=yesterday", "start_date must be a W3C date-time, e.g. 2010-01-01T00:00:00Z"),
        (
            "start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z",
            "start_date and end_date may not span more than 90 days",
        ),
    ):
        answer = requests.get(f"{endpoint}/requests.json?{query}", timeout=5)
        assert answer.status_code == 400, query
        assert answer.json() == [{"code": 400, "description": description}]
        as_xml = requests.get(f"{endpoint}/requests.xml?{query}", timeout=5)
        root = xml_of(as_xml)
        assert root.tag == "errors" and root.findtext("error/code") == "400"
        assert root.findtext("error/description") == description


def test_unknown_things_answer_404_in_the_format_asked_for(endpoint: str) -> None:
    missing = requests.get(f"{endpoint}/requests/99999999.json", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == [{"code": 404, "description": "service_request_id was not found"}]
    wrong_place = requests.get(f"{endpoint}/services.json?jurisdiction_id=atlantis", timeout=5)
    assert wrong_place.status_code == 404
    assert wrong_place.json()[0]["description"] == "jurisdiction_id was not found"
    nowhere = requests.get(f"{endpoint}/tokens/1.xml", timeout=5)
    assert nowhere.status_code == 404 and xml_of(nowhere).tag == "errors"


ROUTES = [
    ("GET", "/services"),
    ("GET", "/services/pothole"),
    ("GET", "/requests"),
    ("GET", "/requests/12345678"),
    ("POST", "/requests"),
]
"""Every route that reads the format, the jurisdiction and the key the same way."""


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_refuses_a_bad_format_place_or_key_the_same_way(
    endpoint: str, city_crm: partners.NewPartner, method: str, path: str
) -> None:
    def ask(suffix: str, **values: str) -> requests.Response:
        url = f"{endpoint}{path}{suffix}"
        if method == "POST":
            return requests.post(url, data=values, timeout=5)
        return requests.get(url, params=values, timeout=5)

    csv = ask(".csv", api_key=city_crm.key)
    assert csv.status_code == 404
    assert xml_of(csv).findtext("error/description") == "formats are xml and json"
    atlantis = ask(".json", jurisdiction_id="atlantis", api_key=city_crm.key)
    assert atlantis.status_code == 404
    assert atlantis.json() == [{"code": 404, "description": "jurisdiction_id was not found"}]
    wrong = ask(".json", api_key=city_crm.key[:-4] + "AAAA")
    assert wrong.status_code == 403
    assert wrong.json() == [
        {"code": 403, "description": "Invalid api_key received -- can't proceed"}
    ]
    no_key = ask(".xml")
    if method == "POST":  # filing needs a key; reading does not
        assert no_key.status_code == 403
        assert "api_key is missing" in xml_of(no_key).findtext("error/description")
    else:
        assert no_key.status_code in (200, 404)  # read freely; 404 only for the unknown number
        assert xml_of(no_key).tag != "errors" or no_key.status_code == 404


# -------------------------------------------------------------------- filing requests


def test_a_partner_files_a_request_with_its_api_key_and_reads_it_back(
    engine: sa.Engine, endpoint: str, city_crm: partners.NewPartner
) -> None:
    form = {
        "api_key": city_crm.key,
        "service_code": "streetlight",
        "lat": "32.2319",
        "long": "-110.9501",
        "address_string": "Campbell Ave and Speedway Blvd, Tucson",
        "description": "Signal dark in all directions.\nSince 6 pm.",
        "first_name": "Ana",
        "last_name": "Soto",
        "email": "ana@example.org",
    }
    answer = requests.post(f"{endpoint}/requests.json", data=form, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    ((created),) = answer.json()
    assert set(created) == {"service_request_id", "service_notice", "account_id"}
    reference = created["service_request_id"]
    report = GeoReport(endpoint).get_service_request(reference)
    assert report["description"] == "Signal dark in all directions.\nSince 6 pm."
    assert report["lat"] == pytest.approx(32.2319) and report["long"] == pytest.approx(-110.9501)
    assert report["address"] == "Campbell Ave and Speedway Blvd, Tucson"
    assert "Ana" not in str(report) and "ana@example.org" not in str(report)
    saved = service_requests.find_by_reference(engine, reference)
    assert saved is not None and saved.jurisdiction == "city"
    assert saved.source is service_requests.RequestSource.OPEN311
    uses = [e for e in audit.entries(engine) if e.action == "partner.use"]
    assert uses and uses[-1].subject == "open311:create_request"


def test_a_partner_posting_xml_with_the_key_in_the_query_string_like_older_clients(
    endpoint: str, city_crm: partners.NewPartner
) -> None:
    # The `open311` client of 2011 puts api_key and jurisdiction_id in the URL, fields in the body.
    answer = requests.post(
        f"{endpoint}/requests.xml?jurisdiction_id=city&api_key={city_crm.key}",
        data={"service_code": "noise", "address_string": "400 N 4th Ave"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    root = xml_of(answer)
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id").isdigit()


def test_a_retried_post_with_the_same_idempotency_key_files_one_request(
    engine: sa.Engine, endpoint: str, city_crm: partners.NewPartner
) -> None:
    form = {"api_key": city_crm.key, "service_code": "noise", "address_string": "1 Main St"}
    headers = {"Idempotency-Key": "crm-ticket-881"}
    first = requests.post(f"{endpoint}/requests.json", data=form, headers=headers, timeout=5)
    again = requests.post(f"{endpoint}/requests.json", data=form, headers=headers, timeout=5)
    assert first.json() == again.json()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(requests_table)).scalar() == 1


def test_a_missing_wrong_or_disabled_key_gets_open311s_403(
    engine: sa.Engine, endpoint: str, city_crm: partners.NewPartner
) -> None:
    form = {"service_code": "noise", "address_string": "1 Main St"}
    missing = requests.post(f"{endpoint}/requests.json", data=form, timeout=5)
    assert missing.status_code == 403
    assert missing.json()[0]["code"] == 403 and "api_key" in missing.json()[0]["description"]
    wrong = requests.post(
        f"{endpoint}/requests.xml", data={**form, "api_key": city_crm.key[:-4] + "AAAA"}, timeout=5
    )
    assert wrong.status_code == 403
    root = xml_of(wrong)
    assert root.findtext("error/code") == "403"
    assert root.findtext("error/description") == "Invalid api_key received -- can't proceed"
    partners.set_enabled(engine, city_crm.partner.key_prefix, False)
    disabled = requests.post(
        f"{endpoint}/requests.json", data={**form, "api_key": city_crm.key}, timeout=5
    )
    assert disabled.status_code == 403
    assert disabled.json() == [{"code": 403, "description": "this API key has been disabled"}]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(requests_table)).scalar() == 0
    refused = [e for e in audit.entries(engine) if e.action == "partner.refused"]
    assert len(refused) == 2  # the wrong key and the disabled one; no key is nobody to audit


def test_bad_input_gets_400_with_every_problem_listed(
    endpoint: str, city_crm: partners.NewPartner, engine: sa.Engine
) -> None:
    answer = requests.post(
        f"{endpoint}/requests.json",
        data={"api_key": city_crm.key, "service_code": "graffiti", "description": "x" * 4001},
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json() == [
        {"code": 400, "description": "description is longer than 4000 characters"},
        {
            "code": 400,
            "description": "service_code is not a service of this endpoint (see services)",
        },
        {
            "code": 400,
            "description": "a location is required: lat and long, address_string or address_id",
        },
    ]
    half = requests.post(
        f"{endpoint}/requests.xml",
        data={"api_key": city_crm.key, "service_code": "noise", "lat": "32.2"},
        timeout=5,
    )
    assert half.status_code == 400
    assert "lat and long must both be given" in xml_of(half).findtext("error/description")
    no_code = requests.post(
        f"{endpoint}/requests.json",
        data={"api_key": city_crm.key, "lat": "1", "long": "2"},
        timeout=5,
    )
    assert no_code.json() == [{"code": 400, "description": "service_code was not provided"}]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(requests_table)).scalar() == 0


def test_a_partner_limited_to_the_county_sees_only_county_requests(
    call: Place, engine: sa.Engine, endpoint: str
) -> None:
    reference = phone_report(call, engine)  # the self-service line serves the city
    county = partners.create_partner(
        engine, name="County CAD", scopes=[partners.Scope.OPEN311], jurisdictions=["county"]
    )
    mine = requests.get(f"{endpoint}/requests.json", params={"api_key": county.key}, timeout=5)
    assert mine.status_code == 200 and mine.json() == []
    theirs = requests.get(
        f"{endpoint}/requests/{reference}.json", params={"api_key": county.key}, timeout=5
    )
    assert theirs.status_code == 404
    city = requests.get(
        f"{endpoint}/requests.json",
        params={"api_key": county.key, "jurisdiction_id": "city"},
        timeout=5,
    )
    assert city.status_code == 403
    filed = requests.post(
        f"{endpoint}/requests.json",
        data={"api_key": county.key, "service_code": "noise", "address_string": "Ajo Way"},
        timeout=5,
    )
    assert filed.status_code == 200
    found = service_requests.find_by_reference(engine, filed.json()[0]["service_request_id"])
    assert found is not None and found.jurisdiction == "county"


def test_nothing_a_partner_or_a_resident_said_reaches_the_log(
    endpoint: str, city_crm: partners.NewPartner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    requests.post(
        f"{endpoint}/requests.json",
        data={
            "api_key": city_crm.key,
            "service_code": "noise",
            "address_string": "Calle Zarzamora 12",
            "description": "Vecino con música alta",
            "phone": "5205550199",
        },
        timeout=5,
    )
    for secret in ("Zarzamora", "música", "5205550199", city_crm.key):
        assert secret not in caplog.text

"""Open311 GeoReport v2, the shape a city's work-order system reads (pure: no Flask, no SQL).

The specification (wiki.open311.org/GeoReport_v2) in the parts Bridgeline serves:

- every answer comes as `.xml` (text/xml) or `.json` (application/json), UTF-8; JSON is the
  Spark mapping of the XML: a list answer is a JSON array, its XML a wrapper element with one
  child per item (`<services><service>`, `<service_requests><request>`, `<errors><error>`);
- date-times are W3C (ISO 8601) with their offset, e.g. 2010-04-14T06:37:38-08:00;
- `status` is `open` or `closed` (Bridgeline's received/in progress are open, resolved/closed
  are closed); `status_notes` is the public note staff wrote with the latest change;
- errors are a list of {code, description}: 400 for a request that cannot be fulfilled, 403
  for a missing or wrong api_key, 404 for what does not exist.

What a resident said stays out of it: a phone report's recording and transcript are for staff;
Open311 shows its category, status, public note, address and times.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from ivr.config.models import ReportCategory
from ivr.store.service_requests import RequestSource, ServiceRequest, assigned_department

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
"""The specification URL partners find in the discovery document."""

MAX_SPAN = timedelta(days=90)
"""GET requests covers at most 90 days (the specification's default and limit)."""

MAX_RESULTS = 1000
"""GET requests answers at most this many requests (the specification's volume limit)."""

MAX_IDS = 200
"""At most this many service_request_id values in one GET requests."""

LIMITS: Mapping[str, int] = {
    "description": 4000,  # the specification's limit
    "address_string": 400,
    "address_id": 64,
    "email": 254,
    "first_name": 100,
    "last_name": 100,
    "phone": 32,
    "device_id": 128,
    "account_id": 128,
    "media_url": 1024,
    "service_code": 64,
    "jurisdiction_id": 64,
}
"""Longest value accepted for each field of POST requests (characters)."""

_ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
"""The XML child element of each list (the Spark convention the specification follows)."""

_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Format(str, Enum):
    """The answer formats, chosen by the resource's extension."""

    XML = "xml"
    JSON = "json"

    @property
    def content_type(self) -> str:
        return (
            "text/xml; charset=utf-8" if self is Format.XML else "application/json; charset=utf-8"
        )


def format_of(extension: str | None) -> Format | None:
    """`xml`/`json` (any case) to a Format; no extension means XML, the required format."""
    if not extension:
        return Format.XML
    try:
        return Format(extension.lower())
    except ValueError:
        return None


# ------------------------------------------------------------------------------ rendering


@dataclass(frozen=True)
class Document:
    """An answer body: JSON and XML are built from the same values."""

    root: str
    value: Any

    def render(self, fmt: Format) -> bytes:
        if fmt is Format.JSON:
            return json.dumps(self.value, ensure_ascii=False, separators=(",", ":")).encode()
        element = _element(self.root, self.value)
        body = ET.tostring(element, encoding="unicode")
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + body).encode()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _XML_UNSAFE.sub("", str(value))


def _element(name: str, value: Any) -> ET.Element:
    element = ET.Element(name)
    if isinstance(value, Mapping):
        for key, child in value.items():
            element.append(_element(key, child))
    elif isinstance(value, list | tuple):
        item = _ITEM_NAMES.get(name, "item")
        for child in value:
            element.append(_element(item, child))
    else:
        element.text = _text(value)
    return element


@dataclass(frozen=True)
class Error:
    """One entry of an Open311 error list."""

    code: int
    description: str


@dataclass(frozen=True)
class Failure:
    """An error answer: its HTTP status and the list of errors."""

    status: int
    errors: tuple[Error, ...]

    def document(self) -> Document:
        return Document(
            "errors", [{"code": e.code, "description": e.description} for e in self.errors]
        )


def failure(status: int, *descriptions: str) -> Failure:
    """An error answer whose entries carry the HTTP status as their code."""
    return Failure(status, tuple(Error(status, d) for d in descriptions))


# ---------------------------------------------------------------------------- what is shown


def w3c(at: datetime | None, zone: ZoneInfo) -> str | None:
    """An instant in W3C date-time form with the program's local offset."""
    if at is None:
        return None
    return at.astimezone(zone).isoformat(timespec="seconds")


def open_or_closed(status: str) -> str:
    """Bridgeline's four statuses as Open311's two."""
    return "open" if status in ("received", "in_progress") else "closed"


def service(category: ReportCategory) -> dict[str, Any]:
    """One entry of GET services."""
    return {
        "service_code": category.code,
        "service_name": category.service_name,
        "description": category.description or category.label.en,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(category.keywords) if category.keywords else None,
        "group": category.group,
    }


def service_definition(category: ReportCategory) -> dict[str, Any]:
    """GET services/{code}: Bridgeline's categories ask for no extra attributes."""
    return {"service_code": category.code, "attributes": []}


def request_view(
    request: ServiceRequest, category: ReportCategory | None, zone: ZoneInfo
) -> dict[str, Any]:
    """One request as GET requests shows it, in the specification's order of fields."""
    from_partner = request.source is RequestSource.OPEN311
    return {
        "service_request_id": request.reference,
        "status": open_or_closed(request.status.value),
        "status_notes": request.status_note,
        "service_name": category.service_name if category else request.category,
        "service_code": request.category,
        # A resident's own words (the recording, its transcript) are for staff only.
        "description": request.description if from_partner else None,
        # The department that has it; a person's name stays inside the city.
        "agency_responsible": assigned_department(request.assigned_to)
        or (category.department if category else None),
        "service_notice": None,
        "requested_datetime": w3c(request.created_at, zone),
        "updated_datetime": w3c(request.updated_at or request.created_at, zone),
        "expected_datetime": None,
        "address": request.address,
        "address_id": request.address_id,
        "zipcode": None,
        "lat": request.latitude,
        "long": request.longitude,
        "media_url": request.media_url if from_partner else None,
    }


def discovery(base_url: str, changeset: datetime, contact: str, zone: ZoneInfo) -> dict[str, Any]:
    """The service discovery document partners start from."""
    stamp = w3c(changeset, zone)
    return {
        "changeset": stamp,
        "contact": contact,
        "key_service": contact,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base_url,
                "changeset": stamp,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


# ------------------------------------------------------------------------------- requests in


def _one(values: Mapping[str, str], name: str) -> str:
    """A parameter's value; empty counts as absent ("Optional Arguments" in the specification)."""
    return (values.get(name) or "").strip()


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_w3c(value: str, zone: ZoneInfo) -> datetime | None:
    """A W3C date-time (offset or Z required when a time is given) or a date (local midnight)."""
    text = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=zone)
        except ValueError:
            return None
    if not re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})", text
    ):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Query:
    """GET requests, understood: either references, or filters over a date range."""

    references: tuple[str, ...] = ()
    service_codes: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    start: datetime | None = None
    end: datetime | None = None


_STATUS_FILTER = {"open": ("received", "in_progress"), "closed": ("resolved", "closed")}


def parse_query(
    values: Mapping[str, str], known_codes: Iterable[str], now: datetime, zone: ZoneInfo
) -> Query | Failure:
    """The filters of GET requests, or the 400 that says what is wrong with them."""
    ids = _split(_one(values, "service_request_id"))
    if ids:  # "This overrides all other arguments."
        if len(ids) > MAX_IDS:
            return failure(400, f"at most {MAX_IDS} service_request_id values at once")
        return Query(references=tuple(dict.fromkeys(i[:16] for i in ids)))
    problems: list[str] = []
    codes = frozenset(_split(_one(values, "service_code")))
    if codes - set(known_codes):
        problems.append("service_code is not a service of this endpoint (see services)")
    statuses: set[str] = set()
    for word in _split(_one(values, "status")):
        found = _STATUS_FILTER.get(word.lower())
        if found is None:
            problems.append("status must be open or closed")
            break
        statuses.update(found)
    start = end = None
    raw_start, raw_end = _one(values, "start_date"), _one(values, "end_date")
    if raw_start:
        start = parse_w3c(raw_start, zone)
        if start is None:
            problems.append("start_date must be a W3C date-time, e.g. 2010-01-01T00:00:00Z")
    if raw_end:
        end = parse_w3c(raw_end, zone)
        if end is None:
            problems.append("end_date must be a W3C date-time, e.g. 2010-01-01T00:00:00Z")
    if problems:
        return failure(400, *problems)
    if start is None and end is None:
        end, start = now, now - MAX_SPAN
    elif start is None:
        assert end is not None
        start = end - MAX_SPAN
    elif end is None:
        end = start + MAX_SPAN
    if end < start:
        return failure(400, "end_date is before start_date")
    if end - start > MAX_SPAN:
        return failure(400, "start_date and end_date may not span more than 90 days")
    return Query(service_codes=codes, statuses=frozenset(statuses), start=start, end=end)


@dataclass(frozen=True)
class NewRequest:
    """POST requests, checked: what a partner's request will be saved with."""

    service_code: str
    jurisdiction_id: str | None
    details: dict[str, Any] = field(default_factory=dict)


def _number(raw: str, low: float, high: float) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def parse_new_request(
    values: Mapping[str, str], known_codes: Sequence[str], partner_id: int | None
) -> NewRequest | Failure:
    """The fields of POST requests, or a 400 listing every problem found."""
    problems: list[str] = []
    for name, limit in LIMITS.items():
        if len(values.get(name) or "") > limit:
            problems.append(f"{name} is longer than {limit} characters")
    code = _one(values, "service_code")
    if not code:
        problems.append("service_code was not provided")
    elif code not in known_codes:
        problems.append("service_code is not a service of this endpoint (see services)")
    lat_raw, long_raw = _one(values, "lat"), _one(values, "long")
    address = _one(values, "address_string")[: LIMITS["address_string"]]
    address_id = _one(values, "address_id")[: LIMITS["address_id"]]
    lat = long = None
    if lat_raw or long_raw:
        lat = _number(lat_raw, -90, 90) if lat_raw else None
        long = _number(long_raw, -180, 180) if long_raw else None
        if lat is None or long is None:
            problems.append(
                "lat and long must both be given, as WGS84 degrees (-90 to 90, -180 to 180)"
            )
    elif not address and not address_id:
        problems.append("a location is required: lat and long, address_string or address_id")
    description = (values.get("description") or "").strip()
    if _XML_UNSAFE.search(description) or _XML_UNSAFE.search(address):
        problems.append("description or address_string contains control characters")
    email = _one(values, "email")
    if email and not _EMAIL.match(email):
        problems.append("email is not an email address")
    media_url = _one(values, "media_url")
    if media_url and not re.match(r"^https?://[^\s]+$", media_url):
        problems.append("media_url must be an http or https URL")
    if problems:
        return failure(400, *problems)
    name = " ".join(p for p in (_one(values, "first_name"), _one(values, "last_name")) if p)
    details: dict[str, Any] = {
        "partner_id": partner_id,
        "address": address or None,
        "address_id": address_id or None,
        "latitude": lat,
        "longitude": long,
        "description": description or None,
        "media_url": media_url or None,
        "contact_name": name or None,
        "contact_email": email or None,
        "contact_phone": _one(values, "phone") or None,
        "account_id": _one(values, "account_id") or None,
        "device_id": _one(values, "device_id") or None,
    }
    return NewRequest(code, _one(values, "jurisdiction_id") or None, details)

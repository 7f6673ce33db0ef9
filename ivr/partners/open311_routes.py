"""Open311 GeoReport v2 at /open311/v2/: thin routes over ivr.partners.open311 and the store.

Reading (discovery, services, requests) needs no key, as the specification says; a key that is
given is checked, and then only its jurisdictions are shown. Filing (POST requests) needs a
partner key with the `open311` scope. Every answer is `.xml` or `.json`, errors included.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from ivr import auth, partners
from ivr.config.models import ReportCategory
from ivr.config.program import ProgramConfig
from ivr.partners import open311
from ivr.partners.open311 import Document, Failure, Format, failure
from ivr.store import service_requests
from ivr.store.service_requests import Filters, RequestSource

log = logging.getLogger(__name__)

PREFIX = "/open311/v2"
"""Where the endpoint lives (its URL is PUBLIC_BASE_URL + PREFIX)."""

EXTENSION_KEY = "bridgeline_open311"
"""app.extensions key of this endpoint's Endpoint."""

IDEMPOTENCY_HEADER = "Idempotency-Key"
"""A partner that retries a POST with the same value of this header files one request."""

bp = Blueprint("open311", __name__, url_prefix=PREFIX)


@dataclass(frozen=True)
class Endpoint:
    """What the Open311 routes read: categories, jurisdictions, the clock's zone, the engine."""

    engine: sa.Engine
    categories: tuple[ReportCategory, ...]
    program: ProgramConfig
    base_url: str
    reference_digits: int
    started_at: datetime

    @property
    def zone(self) -> ZoneInfo:
        return self.program.zone

    @property
    def codes(self) -> list[str]:
        return [c.code for c in self.categories]

    def category(self, code: str) -> ReportCategory | None:
        return next((c for c in self.categories if c.code == code), None)

    @property
    def jurisdiction_ids(self) -> frozenset[str]:
        return frozenset(j.id for j in self.program.jurisdictions)


def endpoint() -> Endpoint:
    return current_app.extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------ answering


def _answer(document: Document, fmt: Format, status: int = 200) -> Response:
    return Response(document.render(fmt), status=status, content_type=fmt.content_type)


def _fail(result: Failure, fmt: Format) -> Response:
    response = _answer(result.document(), fmt, result.status)
    if result.status == 429:
        response.headers["Retry-After"] = "60"
    return response


def _split_name(name: str) -> tuple[str, Format | None]:
    """'123.json' -> ('123', JSON); '123' -> ('123', XML); '123.csv' -> ('123', None)."""
    stem, dot, extension = name.rpartition(".")
    if not dot:
        return name, Format.XML
    return stem, open311.format_of(extension)


def _values() -> dict[str, str]:
    """Query string and form fields together (clients put api_key in either)."""
    values = {k: v for k, v in request.args.items()}
    if request.method == "POST":
        values.update({k: v for k, v in request.form.items()})
    return values


def _jurisdiction(values: dict[str, str]) -> str | Failure | None:
    """The jurisdiction asked for: None when not given, a Failure (404) when unknown."""
    wanted = (values.get("jurisdiction_id") or "").strip()
    if not wanted:
        return None
    if wanted not in endpoint().jurisdiction_ids:
        return failure(404, "jurisdiction_id was not found")
    return wanted


def _partner(
    values: dict[str, str], jurisdiction: str | None, subject: str, required: bool
) -> partners.Partner | Failure | None:
    """The partner whose api_key came with the request; None when no key came and none is
    needed; a Failure (403, or 429 over the rate limit) when the key is refused."""
    key = partners.presented_key(cast(Mapping[str, str], request.headers), values)
    if not key:
        if required:
            return failure(403, "api_key is missing -- can't proceed with create_request")
        return None
    result = partners.authenticate(
        endpoint().engine, key, partners.Scope.OPEN311, jurisdiction, subject=subject
    )
    if result.allowed:
        return result.partner
    refusal = result.refusal
    if refusal is partners.Refusal.RATE_LIMITED:
        return failure(429, refusal.message)
    if refusal is partners.Refusal.UNKNOWN or refusal is None:
        return failure(403, "Invalid api_key received -- can't proceed")
    return failure(403, refusal.message)


@dataclass(frozen=True)
class Asked:
    """What every Open311 route but discovery starts from: the answer's format, the query and
    form values, the jurisdiction asked for and the partner whose key came (None: no key)."""

    fmt: Format
    values: dict[str, str]
    jurisdiction: str | None
    partner: partners.Partner | None


def _asked(fmt: Format | None, subject: str, *, key_required: bool = False) -> Asked | Response:
    """Read what a route starts from, or the specification's error answer: 404 for a format
    other than xml/json (answered in XML), 400 for a too-large form, 404 for an unknown
    jurisdiction, 403/429 for a refused key (or a missing one when `key_required`)."""
    if fmt is None:
        return _fail(failure(404, "formats are xml and json"), Format.XML)
    try:
        values = _values()
    except RequestEntityTooLarge:
        return _fail(failure(400, "the request is too large"), fmt)
    jurisdiction = _jurisdiction(values)
    if isinstance(jurisdiction, Failure):
        return _fail(jurisdiction, fmt)
    partner = _partner(values, jurisdiction, subject, key_required)
    if isinstance(partner, Failure):
        return _fail(partner, fmt)
    return Asked(fmt, values, jurisdiction, partner)


def _visible(partner: partners.Partner | None, jurisdiction: str | None) -> frozenset[str] | None:
    """The jurisdictions whose requests may be shown (None: all)."""
    if jurisdiction is not None:
        return frozenset({jurisdiction})
    if partner is not None and not partner.all_jurisdictions:
        return frozenset(partner.jurisdictions)
    return None


# ---------------------------------------------------------------------------------- routes


@bp.get("/discovery.<ext>")
@bp.get("/discovery")
def discovery(ext: str | None = None) -> Response:
    """The service discovery document: the specification, this endpoint's URL and formats."""
    fmt = open311.format_of(ext)
    if fmt is None:
        return _fail(failure(404, "formats are xml and json"), Format.XML)
    e = endpoint()
    doc = open311.discovery(e.base_url, e.started_at, "311 Center", e.zone)
    return _answer(Document("discovery", doc), fmt)


@bp.get("/services.<ext>")
@bp.get("/services")
def services(ext: str | None = None) -> Response:
    """GET Service List: the report categories of config/menus.yaml."""
    asked = _asked(open311.format_of(ext), "open311:services")
    if isinstance(asked, Response):
        return asked
    items = [open311.service(c) for c in endpoint().categories]
    return _answer(Document("services", items), asked.fmt)


@bp.get("/services/<name>")
def service_definition(name: str) -> Response:
    """GET Service Definition."""
    code, fmt = _split_name(name)
    asked = _asked(fmt, "open311:services")
    if isinstance(asked, Response):
        return asked
    category = endpoint().category(code)
    if category is None:
        return _fail(failure(404, "service_code was not found"), asked.fmt)
    definition = open311.service_definition(category)
    return _answer(Document("service_definition", definition), asked.fmt)


@bp.get("/requests.<ext>")
@bp.get("/requests")
def list_requests(ext: str | None = None) -> Response:
    """GET Service Requests, with the specification's filters."""
    asked = _asked(open311.format_of(ext), "open311:requests")
    if isinstance(asked, Response):
        return asked
    e, fmt = endpoint(), asked.fmt
    query = open311.parse_query(asked.values, e.codes, datetime.now(UTC), e.zone)
    if isinstance(query, Failure):
        return _fail(query, fmt)
    filters = Filters(
        references=query.references,
        categories=query.service_codes,
        statuses=query.statuses,
        jurisdictions=_visible(asked.partner, asked.jurisdiction),
        created_from=query.start,
        created_until=query.end,
        limit=open311.MAX_RESULTS,
    )
    try:
        found = service_requests.search(e.engine, filters)
    except sa.exc.SQLAlchemyError as exc:
        log.error("open311 list failed: error=%s", type(exc).__name__)
        return _fail(failure(400, "the service is unavailable; try again later"), fmt)
    items = [open311.request_view(r, e.category(r.category), e.zone) for r in found]
    return _answer(Document("service_requests", items), fmt)


@bp.get("/requests/<name>")
def one_request(name: str) -> Response:
    """GET Service Request: one request by its service_request_id (the reference number)."""
    reference, fmt = _split_name(name)
    asked = _asked(fmt, "open311:request")
    if isinstance(asked, Response):
        return asked
    e, fmt = endpoint(), asked.fmt
    found = None
    if reference.isdigit() and len(reference) <= 16:
        try:
            found = service_requests.find_by_reference(e.engine, reference)
        except sa.exc.SQLAlchemyError as exc:
            log.error("open311 read failed: error=%s", type(exc).__name__)
            return _fail(failure(400, "the service is unavailable; try again later"), fmt)
    visible = _visible(asked.partner, asked.jurisdiction)
    if found is None or (visible is not None and (found.jurisdiction or "") not in visible):
        return _fail(failure(404, "service_request_id was not found"), fmt)
    item = open311.request_view(found, e.category(found.category), e.zone)
    return _answer(Document("service_requests", [item]), fmt)


@bp.post("/requests.<ext>")
@bp.post("/requests")
def create_request(ext: str | None = None) -> Response:
    """POST Service Request: a partner files a report; it answers the new reference number."""
    asked = _asked(open311.format_of(ext), "open311:create_request", key_required=True)
    if isinstance(asked, Response):
        return asked
    e, fmt, partner = endpoint(), asked.fmt, asked.partner
    assert partner is not None  # key_required: no key was answered 403 above
    parsed = open311.parse_new_request(asked.values, e.codes, partner.id)
    if isinstance(parsed, Failure):
        return _fail(parsed, fmt)
    place = asked.jurisdiction or _home_jurisdiction(partner, e)
    given = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()[:80]
    key = f"open311:{partner.id}:{given}" if given else f"open311:{secrets.token_hex(16)}"
    try:
        saved = service_requests.file_request(
            e.engine,
            idempotency_key=key[:128],
            call_sid=None,
            category=parsed.service_code,
            language="en",
            caller_number=None,
            recording_sid=None,
            recording_url=None,
            reference_digits=e.reference_digits,
            jurisdiction=place,
            source=RequestSource.OPEN311,
            details=parsed.details,
        )
    except (sa.exc.SQLAlchemyError, RuntimeError) as exc:
        log.error("open311 request not saved: error=%s", type(exc).__name__)
        return _fail(failure(400, "the request could not be saved; try again later"), fmt)
    log.info("open311 request filed: partner=%s id=%s", partner.key_prefix, saved.id)
    answer = [{"service_request_id": saved.reference, "service_notice": None, "account_id": None}]
    return _answer(Document("service_requests", answer), fmt)


def _home_jurisdiction(partner: partners.Partner, e: Endpoint) -> str | None:
    """Where a partner's request belongs when it named no jurisdiction."""
    own = sorted(j for j in partner.jurisdictions if j != partners.ALL_JURISDICTIONS)
    if len(own) == 1:
        return own[0]
    return e.program.self_service_jurisdiction


@bp.route("/<path:rest>", methods=["GET", "POST"])
def not_found(rest: str) -> Response:
    """Anything else under /open311/v2/ answers the specification's 404."""
    _, fmt = _split_name(rest)
    return _fail(failure(404, "no such resource; see discovery"), fmt or Format.XML)


def init_app(app: Flask, endpoint_config: Endpoint) -> None:
    """Register the endpoint; partner keys replace CSRF tokens on its POST."""
    app.extensions[EXTENSION_KEY] = endpoint_config
    app.register_blueprint(bp)
    auth.exempt_from_csrf(app, bp.name)

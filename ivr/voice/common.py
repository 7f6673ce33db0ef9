"""What every Twilio voice blueprint shares: the signature gate and the never-fail answer."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ivr.security import SIGNATURE_HEADER, is_valid_signature, public_url
from ivr.services import services
from ivr.twiml import safe_fallback
from ivr.xml_text import has_unsafe, xml_safe

if TYPE_CHECKING:
    from ivr.services import Services

log = logging.getLogger(__name__)

TWIML_MIMETYPE = "text/xml"


def twiml(xml: str) -> Response:
    """A 200 answer carrying TwiML (never a character XML cannot carry, whatever built it)."""
    return Response(xml_safe(xml), status=200, mimetype=TWIML_MIMETYPE)


def is_voice_path(path: str) -> bool:
    """Whether `path` is under /voice (Twilio's webhooks), '/voice' itself included."""
    return path == "/voice" or path.startswith("/voice/")


def state() -> Services:
    """The Services of the current app (settings, config, connections, flows)."""
    return services()


def signature_is_valid() -> bool:
    """Check X-Twilio-Signature against the URL Twilio used (PUBLIC_BASE_URL + path + query)."""
    settings = state().settings
    # Twilio signs the URL exactly as it requested it, percent-encoding included; the server's
    # raw request line (gunicorn RAW_URI, werkzeug REQUEST_URI) is that spelling, request.path
    # is decoded.
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    path = raw.partition("?")[0] if raw.startswith("/") else request.path
    url = public_url(settings.public_base_url, path, request.query_string)
    try:
        form = request.form if request.method == "POST" else request.args.__class__()
    except RequestEntityTooLarge:  # over MAX_CONTENT_LENGTH: cannot be checked, so not valid
        return False
    return is_valid_signature(
        settings.twilio_auth_token, url, form, request.headers.get(SIGNATURE_HEADER)
    )


def require_twilio_signature() -> Response | None:
    """before_request: 403 and nothing else for a missing or wrong signature; once it checks
    out, what XML cannot carry is stripped from every field the route will read."""
    if signature_is_valid():
        clean_request_fields()
        return None
    log.warning("rejected voice request with a bad signature: path=%s", request.path)
    return Response("invalid Twilio signature\n", status=403, mimetype="text/plain")


def _clean(values: MultiDict[str, str]) -> ImmutableMultiDict[str, str]:
    return ImmutableMultiDict(
        (xml_safe(key), xml_safe(value)) for key, value in values.items(multi=True)
    )


def clean_request_fields() -> None:
    """Strip what XML 1.0 cannot carry (NUL, C0 controls, U+FFFE, lone surrogates) from the
    form, the query and the URL's variables of this request.

    Done after the signature check, which must see the fields exactly as Twilio signed them.
    Werkzeug keeps bytes that are not UTF-8 percent-encoded ('%FF'), which XML carries.
    """
    form, args = request.form, request.args
    changed = False
    if has_unsafe(k + v for k, v in form.items(multi=True)):
        request.form = _clean(form)  # type: ignore[misc]  # werkzeug's cached_property
        changed = True
    if has_unsafe(k + v for k, v in args.items(multi=True)):
        request.args = _clean(args)  # type: ignore[misc]
        changed = True
    if changed:
        # Werkzeug rebuilds `values` from the cleaned parts (args only for a GET).
        request.__dict__.pop("values", None)
    if request.view_args:
        request.view_args = {
            k: xml_safe(v) if isinstance(v, str) else v for k, v in request.view_args.items()
        }
    token = request.environ.get("HTTP_I_TWILIO_IDEMPOTENCY_TOKEN")
    if token and has_unsafe([token]):
        request.environ["HTTP_I_TWILIO_IDEMPOTENCY_TOKEN"] = xml_safe(token)


def fallback_answer(lang: str | None = None) -> Response:
    """An apology and a person, whatever went wrong (config, database, Redis, a bug)."""
    try:
        operator = state().config.numbers.get("operator")
    except Exception:  # the config itself may be what is broken
        operator = None
    if lang is None:
        lang = request.args.get("lang", "en") if request else "en"
    return twiml(safe_fallback(operator, "es" if lang == "es" else "en"))


def handle_voice_error(exc: Exception) -> Response:
    """Error handler for voice blueprints: never Twilio's 'application error'."""
    if isinstance(exc, HTTPException) and exc.code == 403:
        return Response("forbidden\n", status=403, mimetype="text/plain")
    log.error(
        "voice route failed, caller sent to a person: path=%s error=%s",
        request.path,
        type(exc).__name__,
    )
    log.debug("voice route traceback", exc_info=exc)
    return fallback_answer()


def voice_blueprint(name: str, import_name: str, url_prefix: str) -> Blueprint:
    """A blueprint whose every route is signature-checked and answers TwiML on any error."""
    bp = Blueprint(name, import_name, url_prefix=url_prefix)
    bp.before_request(require_twilio_signature)
    bp.register_error_handler(Exception, handle_voice_error)
    return bp


class NoSessionForTwilio(SessionInterface):
    """The app's session interface, except that Twilio's /voice/ requests get none.

    Twilio sends no cookies and voice routes keep their state in signed URLs, yet Flask opens
    (and derives the signing key of) a session for every request: ~25% of a webhook's CPU
    (bench/RESULTS.md). Voice requests get Flask's null session instead; every other page keeps
    the app's own interface.
    """

    def __init__(self, wrapped: SessionInterface) -> None:
        self.wrapped = wrapped

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if is_voice_path(request.path):
            return None  # Flask then uses a NullSession and saves nothing
        return self.wrapped.open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        self.wrapped.save_session(app, session, response)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def init_app(app: Flask) -> None:
    """Unknown or wrongly-called /voice/ URLs still answer TwiML (after the signature check)."""
    app.session_interface = NoSessionForTwilio(app.session_interface)
    # Werkzeug answers a URL with '//' in it with a 308 redirect, before any handler runs;
    # Twilio must get TwiML (or a 403) instead, so such URLs fall through to the 404 handler.
    app.url_map.merge_slashes = False

    def not_found(exc: HTTPException) -> Response | HTTPException:
        if not is_voice_path(request.path):
            return exc
        if not signature_is_valid():
            return Response("invalid Twilio signature\n", status=403, mimetype="text/plain")
        log.warning("signed request to an unknown voice URL: path=%s", request.path)
        return fallback_answer()

    app.register_error_handler(404, not_found)
    app.register_error_handler(405, not_found)

"""The EIDO as the web app serves it: the configuration's context, one JSON response."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, current_app

from ivr.reporting.eido import EidoContext, context_from
from ivr.services import services_of

EXTENSION_KEY = "bridgeline_eido_context"
"""app.extensions key of the EidoContext built from the app's validated config."""

MEDIA_TYPE = "application/json"
"""NENA's openapi.yaml serves an EIDO as application/json."""


def context_of(app: Flask) -> EidoContext:
    """The app's EidoContext (program.yaml, roster, decision tree), built once."""
    found = app.extensions.get(EXTENSION_KEY)
    if found is None:
        app_services = services_of(app)
        found = context_from(app_services.program, app_services.roster, app_services.tree)
        app.extensions[EXTENSION_KEY] = found
    return found


def current_context() -> EidoContext:
    """The EidoContext of the app handling this request."""
    return context_of(current_app)


def eido_response(document: dict[str, Any]) -> Response:
    """The document as application/json (UTF-8, member order kept)."""
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=200, mimetype=MEDIA_TYPE)

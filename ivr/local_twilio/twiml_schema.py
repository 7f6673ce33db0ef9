"""Every TwiML document the local Twilio receives, checked as Twilio checks it.

Against Twilio's own schema (TWIML_XSD names the file) when it is configured; without it
only the shape Twilio needs (well-formed XML with <Response> at the root). A document
Twilio would refuse is reported loudly: logged at ERROR and kept for the control API, and
the call does what a real call does then (the caller hears Twilio's application error).
"""

from __future__ import annotations

import logging
import os
from functools import cache

from lxml import etree

log = logging.getLogger(__name__)

ANNOUNCE_VERBS = frozenset({"Say", "Play", "Pause", "Redirect"})
"""Verbs allowed in a waitUrl, holdUrl or announceUrl document (Twilio error 13238)."""


class TwimlRefused(Exception):
    """Twilio would not play this document."""


@cache
def _schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path))


def schema_path() -> str | None:
    """The XSD in TWIML_XSD, or None (a warning is logged once by the server at startup)."""
    return os.environ.get("TWIML_XSD", "").strip() or None


def check(body: bytes, *, announcement: bool = False) -> etree._Element:
    """Parse and validate `body`; raise TwimlRefused naming what Twilio would refuse."""
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as exc:
        raise TwimlRefused(f"not XML: {exc}") from None
    if root.tag != "Response":
        raise TwimlRefused(f"the root is <{root.tag}>, not <Response>")
    path = schema_path()
    if path:
        schema = _schema(path)
        if not schema.validate(root):
            errors = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)
            raise TwimlRefused(f"not valid against Twilio's TwiML schema: {errors}")
    if announcement:
        bad = sorted({child.tag for child in root if child.tag not in ANNOUNCE_VERBS})
        if bad:
            raise TwimlRefused(
                f"an announcement or hold document may hold only Say, Play, Pause and Redirect, "
                f"not {', '.join(bad)} (Twilio error 13238)"
            )
    return root

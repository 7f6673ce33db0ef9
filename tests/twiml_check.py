"""Every TwiML answer a test sees is parsed, and validated against Twilio's XSD when TWIML_XSD names it."""

from __future__ import annotations

import os
from functools import cache

from lxml import etree

LIST_LIKE_ATTRIBUTES = ("statusCallbackEvent", "recordingStatusCallbackEvent", "events")


@cache
def _schema() -> etree.XMLSchema | None:
    path = os.environ.get("TWIML_XSD", "").strip()
    if not path:
        return None
    return etree.XMLSchema(etree.parse(path))


def check_twiml(body: bytes) -> etree._Element:
    """Parse `body` as TwiML; raise if it is not valid for Twilio."""
    root = etree.fromstring(body)
    assert root.tag == "Response", f"TwiML must have <Response> at the root, got <{root.tag}>"
    schema = _schema()
    if schema is not None:
        schema.assertValid(root)
    for element in root.iter():
        for name in LIST_LIKE_ATTRIBUTES:
            value = element.get(name)
            if value is not None:
                assert "[" not in value and "," not in value and "'" not in value, (
                    f"{name} must be space-separated words, got {value!r}"
                )
    return root

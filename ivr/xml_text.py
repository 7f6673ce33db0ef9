"""Text that XML 1.0 can carry: what every value from a request goes through before TwiML.

XML 1.0 allows tab, newline, carriage return and U+0020-U+D7FF, U+E000-U+FFFD, U+10000 and up.
Anything else (NUL and the other C0 controls, lone surrogates, U+FFFE, U+FFFF) makes a document
no parser accepts, which Twilio answers by playing "an application error" to the caller.
Pure: no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""One character XML 1.0 cannot carry."""


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry (everything else kept as is)."""
    return _NOT_XML.sub("", text) if _NOT_XML.search(text) else text


def has_unsafe(values: Iterable[str]) -> bool:
    """Whether any of `values` holds a character XML 1.0 cannot carry."""
    return any(_NOT_XML.search(value) for value in values)

"""Twilio request signatures, computed against PUBLIC_BASE_URL so they hold behind a proxy."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from werkzeug.datastructures import MultiDict

SIGNATURE_HEADER = "X-Twilio-Signature"
"""Header Twilio puts its HMAC-SHA1 signature in."""


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Twilio's scheme: URL, then each POST field name+value in sorted order, HMAC-SHA1, base64."""
    pieces = [url]
    for name, value in sorted(set(params)):
        pieces.append(name)
        pieces.append(value)
    digest = hmac.new(auth_token.encode("utf-8"), "".join(pieces).encode("utf-8"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """Twilio may sign with or without the default port; try the other spelling too."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if default is None or not parts.hostname:
        return []
    if parts.port is None:
        netloc = f"{parts.netloc}:{default}"
    elif parts.port == default:
        netloc = parts.netloc.rsplit(":", 1)[0]
    else:
        return []
    return [urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))]


def is_valid_signature(
    auth_token: str, url: str, form: MultiDict[str, str], signature: str | None
) -> bool:
    """True when `signature` signs `url` and `form` with `auth_token` (constant-time compare)."""
    if not signature or not auth_token:
        return False
    params = list(form.items(multi=True))
    expected = compute_signature(auth_token, url, params)
    if hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
        return True
    for variant in _port_variants(url):
        expected = compute_signature(auth_token, variant, params)
        if hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace")):
            return True
    return False


def public_url(base_url: str, path: str, query_string: bytes) -> str:
    """The URL Twilio requested, as seen from outside: PUBLIC_BASE_URL + path + query."""
    url = base_url + path
    if query_string:
        url += "?" + query_string.decode("latin-1")
    return url

"""Hostile and broken input on every voice URL: signed, it always gets valid TwiML; unsigned, 403.

Hostile means: characters XML 1.0 cannot carry (NUL, C0 controls, U+FFFE, U+FFFF), bytes that
are not UTF-8 in the body or the query, huge fields and the same field repeated hundreds of
times, by GET and by POST.

Twilio only ever sends well-formed fields, but a forged URL, a proxy that mangles a body, a
new Twilio field or a caller's speech full of odd characters must never make a caller hear
"an application error". The routes are read from the app's URL map, so a voice route added
later is fuzzed too.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote_from_bytes, urlencode

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from ivr.security import SIGNATURE_HEADER, compute_signature
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE
from tests.twiml_check import check_twiml
from tests.voice_routes import RULES, fill, voice_rules

TWILIO_FIELDS = (
    "CallSid",
    "AccountSid",
    "From",
    "To",
    "Caller",
    "Called",
    "CallStatus",
    "Direction",
    "Digits",
    "SpeechResult",
    "Confidence",
    "RecordingSid",
    "RecordingUrl",
    "RecordingDuration",
    "RecordingStatus",
    "DialCallStatus",
    "DialCallSid",
    "DialCallDuration",
    "QueuePosition",
    "QueueTime",
    "QueueResult",
    "AnsweredBy",
    "ConferenceSid",
    "FriendlyName",
    "StatusCallbackEvent",
    "ParticipantLabel",
    "Muted",
    "Hold",
    "SequenceNumber",
    "Timestamp",
    "ErrorCode",
    "ErrorUrl",
    "CallDuration",
    "ParentCallSid",
)
QUERY_NAMES = ("lang", "attempt", "cat", "ref", "src", "line", "step", "id", "handoff", "menu")

# Text Twilio could never send, but a forger or a broken proxy could: control characters,
# right-to-left marks, XML metacharacters, very long strings, numbers of every shape.
control_text = st.text(
    st.one_of(
        st.characters(max_codepoint=0x1F),
        st.sampled_from(["\x7f", "\ufffe", "\uffff", "\ufeff", "1", "#", "*", " "]),
    ),
    min_size=1,
    max_size=12,
)
"""Text of control characters and the non-characters XML 1.0 cannot carry, with a key or two."""

nasty_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    control_text,
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "99999999999999999999",
            "1e308",
            "NaN",
            "*",
            "#",
            "9",
            "1#",
            "+15205550123",
            "+900555012",
            "+442071838750",
            "anonymous",
            "<Say>hi</Say>",
            "]]>&amp;<!--",
            "\x00\x01\x1f",
            "\x00",
            "1\x00",
            "\ufffe",
            "\x0b#",
            "9" * 100_000,
            "x\x00" * 5_000,
            "\u202e\ufeff",
            "x" * 5000,
            "es",
            "en",
            "completed",
            "no-answer",
            "busy",
            "failed",
            "bridged",
            "hangup",
            "participant-join",
            "conference-end",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        ]
    ),
)
field_name = st.one_of(st.sampled_from(TWILIO_FIELDS), st.text(min_size=1, max_size=12))
form_fields = st.one_of(
    st.lists(st.tuples(field_name, nasty_text), max_size=14),
    # One field sent many times (a proxy that repeats a body, a forger filling memory).
    st.tuples(field_name, st.one_of(control_text, st.text(max_size=40)), st.integers(2, 400)).map(
        lambda t: [t[:2]] * t[2]
    ),
)
raw_pair = st.tuples(
    st.one_of(st.sampled_from([f.encode() for f in TWILIO_FIELDS]), st.binary(max_size=8)),
    st.one_of(st.binary(max_size=40), st.sampled_from([b"\xff\xfe", b"\xed\xa0\x80", b"\xc3"])),
    st.booleans(),  # sent raw, or percent-encoded the way a form would be
)
"""A form field as bytes that need not be UTF-8 at all."""
query_pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from(QUERY_NAMES), st.text(max_size=6)), nasty_text),
    max_size=5,
)
raw_query = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="#"), max_size=40
)
segment = st.one_of(
    # '' and 'a/b' give URLs with '//' or an extra level: Werkzeug would redirect those (308).
    st.sampled_from(["main", "report", "info", "hours", "1", "0", "..", "", "a/b", "x" * 300]),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
)

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def under_the_limit(form: list[tuple[str, str]]) -> bool:
    """Below the app's MAX_CONTENT_LENGTH (256 KiB) once encoded: a bigger body cannot have its
    signature checked and is refused (tests/test_voice_bytes.py)."""
    return sum(len(k.encode()) + len(v.encode()) * 3 for k, v in form) < 200_000


def sign(path: str, query: str, form: list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    url = PUBLIC_BASE + path + (f"?{query}" if query else "")
    return compute_signature(token, url, form)


def send(
    client: FlaskClient,
    method: str,
    path: str,
    query: str,
    form: list[tuple[str, str]],
    signature: str | None,
):
    headers = {SIGNATURE_HEADER: signature} if signature is not None else {}
    if method == "GET":
        return client.get(path, query_string=query, headers=headers)
    return client.post(path, query_string=query, data=MultiDict(form), headers=headers)


@pytest.fixture
def footprint(engine: sa.Engine, redis_url: str) -> Iterator[object]:
    """A function returning every row count and the Redis key count: what a request left."""
    conn = redis.Redis.from_url(redis_url)
    names = [n for n in sa.inspect(engine).get_table_names() if n != "alembic_version"]

    def measure() -> tuple[dict[str, int], int]:
        with engine.connect() as db:
            counts = {
                n: db.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in names
            }
        return counts, int(conn.dbsize())

    yield measure
    conn.close()


def test_every_voice_route_of_the_app_is_fuzzed(app: Flask) -> None:
    assert voice_rules(app) == RULES
    assert any(r[0] == "/voice/self-service" for r in RULES)


@pytest.mark.parametrize(("rule", "arguments", "methods"), RULES, ids=[r[0] for r in RULES])
@FUZZ
@given(data=st.data())
def test_signed_garbage_always_gets_valid_twiml(
    client: FlaskClient,
    rule: str,
    arguments: list[str],
    methods: tuple[str, ...],
    data: st.DataObject,
) -> None:
    method = data.draw(st.sampled_from(methods), label="method")
    path = fill(rule, {a: data.draw(segment, label=a) for a in arguments})
    query = data.draw(st.one_of(query_pairs.map(urlencode), raw_query), label="query")
    form = data.draw(form_fields.filter(under_the_limit), label="form") if method == "POST" else []
    response = send(client, method, path, query, form, sign(path, query, form))
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/xml"
    check_twiml(response.data)


def raw_body(pairs: list[tuple[bytes, bytes, bool]]) -> bytes:
    """An urlencoded body from byte pairs, each raw or percent-encoded."""
    return b"&".join(
        (quote_from_bytes(k).encode() + b"=" + quote_from_bytes(v).encode()) if encoded
        else k + b"=" + v
        for k, v, encoded in pairs
    )  # fmt: skip


def as_werkzeug_reads(body: bytes) -> list[tuple[str, str]]:
    """The fields Werkzeug reads from `body`: what the app's signature check sees (and what
    Twilio would have signed, had it sent these bytes)."""
    environ = EnvironBuilder(
        method="POST", data=body, content_type="application/x-www-form-urlencoded"
    ).get_environ()
    return list(Request(environ).form.items(multi=True))


@pytest.mark.parametrize(("rule", "arguments", "methods"), RULES, ids=[r[0] for r in RULES])
@FUZZ
@given(data=st.data())
def test_signed_bytes_that_are_not_utf8_always_get_valid_twiml(
    client: FlaskClient,
    rule: str,
    arguments: list[str],
    methods: tuple[str, ...],
    data: st.DataObject,
) -> None:
    method = data.draw(st.sampled_from(methods), label="method")
    path = fill(rule, {a: data.draw(segment, label=a) for a in arguments})
    pairs = data.draw(st.lists(raw_pair, max_size=10), label="pairs")
    headers: dict[str, str]
    if method == "GET":  # a query string can only carry them percent-encoded
        query = raw_body([(k, v, True) for k, v, _ in pairs]).decode("ascii")
        headers = {SIGNATURE_HEADER: sign(path, query, [])}
        response = client.get(path, query_string=query, headers=headers)
    else:
        body = raw_body(pairs)
        headers = {SIGNATURE_HEADER: sign(path, "", as_werkzeug_reads(body))}
        response = client.post(
            path, data=body, content_type="application/x-www-form-urlencoded", headers=headers
        )
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/xml"
    check_twiml(response.data)


@pytest.mark.parametrize(("rule", "arguments", "methods"), RULES, ids=[r[0] for r in RULES])
@FUZZ
@given(data=st.data())
def test_unsigned_or_badly_signed_requests_get_403_and_change_nothing(
    client: FlaskClient,
    footprint,
    rule: str,
    arguments: list[str],
    methods: tuple[str, ...],
    data: st.DataObject,
) -> None:
    method = data.draw(st.sampled_from(methods), label="method")
    path = fill(rule, {a: data.draw(segment, label=a) for a in arguments})
    query = data.draw(query_pairs.map(urlencode), label="query")
    form = data.draw(form_fields, label="form") if method == "POST" else []
    good = sign(path, query, form)
    signature = data.draw(
        st.one_of(
            st.none(),
            st.just(""),
            st.just(sign(path, query, form, token="not-the-auth-token")),
            st.just(good[:-2] + ("AA" if not good.endswith("AA") else "BB")),
            st.just(sign(path, query + "&lang=es" if query else "lang=es", form)),
            st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).filter(
                lambda s: s != good
            ),
        ),
        label="signature",
    )
    before = footprint()
    response = send(client, method, path, query, form, signature)
    assert response.status_code == 403
    assert footprint() == before

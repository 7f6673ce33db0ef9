"""The TwiML a placed callback follows, and its status callbacks. Record first, then answer.

Order of the call: the resident is called first; a person who answers hears who is calling and
presses 1; only then is an on-duty helper rung (with a whisper and press 1 to accept) and the
two bridged. Why resident first: most outbound attempts reach nobody or a voicemail box, and
calling the helper first would spend helpers' time listening to those rings; a resident who
asked for the call waits a few seconds of ringing at most. The bridge is a <Dial> from the
resident's own call, so no webhook makes a REST request and nothing waits on Twilio's API.

URLs carry the attempt id; every state change is a conditional UPDATE, so Twilio's retries,
duplicates and late callbacks change nothing twice.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, current_app, request

from ivr.decisions.callback_rules import (
    ANSWERED_BY_VALUES,
    TWILIO_CALL_STATUSES,
    TWILIO_FINAL_STATUSES,
    CallOutcome,
    outcome_of,
)
from ivr.flows.callbacks import CallbackLine as CallbackLine
from ivr.flows.callbacks import build_line, settle_from_twilio
from ivr.services import services_of
from ivr.store import callbacks as store
from ivr.store.callback_records import AttemptStatus, CallbackStatus, Outcome
from ivr.twiml import callbacks as cbt
from ivr.voice.common import fallback_answer, twiml, voice_blueprint

log = logging.getLogger(__name__)

EXTENSION_KEY = "bridgeline_callbacks"
"""app.extensions key of the CallbackLine."""

METHODS = ["POST", "GET"]

PROBLEM_HEADER = "X-Bridgeline-Problem"
"""Header naming why a status callback was not applied (malformed or not ours)."""

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
"""What a Twilio CallSid looks like."""

bp = voice_blueprint("callbacks", __name__, cbt.ROOT)


def init_app(app: Flask) -> None:
    """Load the callback rules at startup (a bad file stops startup) and register the routes."""
    bridgeline = services_of(app)
    app.extensions[EXTENSION_KEY] = build_line(
        bridgeline.settings,
        bridgeline.config,
        bridgeline.engine,
        bridgeline.queues,
        bridgeline.roster,
    )
    app.register_blueprint(bp)


def line_of(app: Flask) -> CallbackLine:
    """The CallbackLine built for `app` at startup."""
    return app.extensions[EXTENSION_KEY]


def line() -> CallbackLine:
    """The CallbackLine of the current app."""
    return current_app.extensions[EXTENSION_KEY]


def _lang() -> str:
    return "es" if request.args.get("lang") == "es" else "en"


def _attempt_id() -> int | None:
    raw = request.args.get("attempt", "")
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _field(name: str, limit: int = 64) -> str:
    return (request.values.get(name) or "")[:limit]


def _load() -> tuple[store.Attempt, store.Callback] | None:
    attempt_id = _attempt_id()
    if attempt_id is None:
        return None
    attempt = store.get_attempt(line().engine, attempt_id)
    if attempt is None:
        return None
    callback = store.get(line().engine, attempt.callback_id)
    return (attempt, callback) if callback is not None else None


def _unknown(what: str) -> Response:
    log.warning("callback route for an unknown attempt: path=%s what=%s", request.path, what)
    store.record_anomaly(
        line().engine, event="unknown_attempt", detail=f"{request.path} {what}", at=line().clock()
    )
    return fallback_answer(_lang())


@bp.route("/answered", methods=METHODS)
def answered() -> Response:
    """Twilio's answering-machine detection has decided: a person gets the choice, a machine
    the safe message."""
    found = _load()
    if found is None:
        return _unknown("answered")
    attempt, callback = found
    cb = line()
    lang = callback.language if callback.language in ("en", "es") else _lang()
    answered_by = _field("AnsweredBy", 32).lower()
    if answered_by not in ANSWERED_BY_VALUES:
        answered_by = "unknown"  # AMD off or timed out: treat as a person, the message is safe
    call_sid = _field("CallSid")
    if CALL_SID.match(call_sid):
        store.mark_answered(cb.engine, attempt.id, call_sid, answered_by, cb.clock())
    if callback.status.value not in store.OPEN_STATUSES:
        return twiml(cbt.goodbye(lang))  # closed by hand while the phone rang
    if outcome_of("in-progress", answered_by) is CallOutcome.MACHINE:
        store.note_outcome(cb.engine, attempt.id, Outcome.MACHINE, cb.clock())
        return twiml(cbt.machine_message(lang, cb.call_back_number))
    return twiml(cbt.person_prompt(cb.urls, attempt.id, lang))


@bp.route("/choice", methods=METHODS)
def choice() -> Response:
    """1: ring the on-duty helper; 9: opt out; anything else: ask once more, then later."""
    found = _load()
    if found is None:
        return _unknown("choice")
    attempt, callback = found
    cb = line()
    lang = _lang()
    now = cb.clock()
    digits = _field("Digits", 8)
    if digits == cbt.OPT_OUT_KEY:
        store.opt_out(cb.engine, attempt.id, now)
        return twiml(cbt.opted_out(lang, cb.call_back_number))
    if callback.status.value not in store.OPEN_STATUSES:
        return twiml(cbt.goodbye(lang))
    if digits == cbt.CONNECT_KEY:
        store.mark_bridging(cb.engine, attempt.id, now)
        return _ring(attempt.id, callback, lang, 0, announce=True)
    raw_tries = request.args.get("tries", "0")
    tries = int(raw_tries) + 1 if raw_tries.isdigit() and len(raw_tries) < 3 else cbt.MAX_PROMPTS
    if tries < cbt.MAX_PROMPTS:
        return twiml(cbt.person_prompt(cb.urls, attempt.id, lang, tries=tries))
    store.note_outcome(cb.engine, attempt.id, Outcome.NOT_CONNECTED, now)
    return twiml(cbt.try_later(lang))


def _ring(
    attempt_id: int, callback: store.Callback, lang: str, index: int, *, announce: bool
) -> Response:
    cb = line()
    members = cb.on_duty(callback, cb.clock())
    if index >= min(len(members), cbt.MAX_HELPERS_TRIED):
        store.note_outcome(cb.engine, attempt_id, Outcome.HELPER_UNAVAILABLE, cb.clock())
        return twiml(cbt.no_helper(lang))
    group = cb.roster.group(cb.helper_type(callback))
    timeout = min(
        cb.config.attempts.helper_ring_seconds,
        group.ring_timeout_seconds if group else cb.config.attempts.helper_ring_seconds,
    )
    return twiml(
        cbt.connect_to_helper(
            cb.urls,
            attempt_id,
            lang,
            members[index],
            index,
            timeout=timeout,
            caller_id=cb.caller_id,
            announce=announce,
        )
    )


@bp.route("/whisper", methods=METHODS)
def whisper() -> Response:
    """The helper's side, before the bridge: what this is, press 1 to take it."""
    found = _load()
    if found is None:
        return twiml(cbt.helper_declined())
    attempt, callback = found
    cb = line()
    if attempt.status is not AttemptStatus.BRIDGING:
        return twiml(cbt.helper_declined())
    member_id = request.args.get("member", "")[:64]
    label = cb.roster.label(cb.helper_type(callback))
    return twiml(cbt.whisper(cb.urls, attempt.id, _lang(), member_id, label))


@bp.route("/accept", methods=METHODS)
def accept() -> Response:
    """The helper pressed a key: 1 takes the call (recorded before the bridge), else hang up."""
    found = _load()
    if found is None:
        return twiml(cbt.helper_declined())
    attempt, _callback = found
    cb = line()
    member_id = request.args.get("member", "")[:64]
    if _field("Digits", 8) != cbt.ACCEPT_KEY or cb.roster.member(member_id) is None:
        return twiml(cbt.helper_declined())
    if store.mark_connected(cb.engine, attempt.id, member_id, cb.clock()):
        return twiml(cbt.helper_accepted())
    return twiml(cbt.helper_declined())


@bp.route("/bridged", methods=METHODS)
def bridged() -> Response:
    """The <Dial> to a helper ended: goodbye after a conversation, else ring the next helper."""
    found = _load()
    if found is None:
        return _unknown("bridged")
    attempt, callback = found
    lang = _lang()
    if attempt.status in (AttemptStatus.CONNECTED, AttemptStatus.COMPLETED):
        return twiml(cbt.goodbye(lang))
    if attempt.status is not AttemptStatus.BRIDGING:
        return twiml(cbt.goodbye(lang))
    raw = request.args.get("index", "")
    index = int(raw) + 1 if raw.isdigit() and len(raw) < 3 else cbt.MAX_HELPERS_TRIED
    return _ring(attempt.id, callback, lang, index, announce=False)


@bp.route("/status", methods=METHODS)
def status() -> Response:
    """Twilio's status callback for the resident's call. A final status settles the attempt:
    done, or the next attempt planned, or failed and raised to a supervisor."""
    cb = line()
    now = cb.clock()
    attempt_id = _attempt_id()
    call_status = _field("CallStatus", 32).lower()
    call_sid = _field("CallSid")
    problem = None
    attempt = store.get_attempt(cb.engine, attempt_id) if attempt_id is not None else None
    if attempt is None:
        problem = "unknown attempt"
    elif not CALL_SID.match(call_sid):
        problem = "missing or malformed CallSid"
    elif call_status not in TWILIO_CALL_STATUSES:
        problem = "unknown CallStatus"
    elif attempt.call_sid and attempt.call_sid != call_sid:
        problem = "CallSid of another call"
    if problem is not None:
        log.warning("malformed callback status: attempt=%s problem=%s", attempt_id, problem)
        store.record_anomaly(
            cb.engine,
            event="malformed_status_callback",
            detail=f"attempt={attempt_id} {problem}",
            at=now,
        )
        # Twilio ignores what a status callback answers; like every voice URL this one
        # answers valid TwiML. The problem is named in a header and recorded; the attempt is
        # untouched and the sweep settles it from Twilio's own record.
        answer = twiml(cbt.empty())
        answer.headers[PROBLEM_HEADER] = problem
        return answer
    assert attempt is not None
    if call_status not in TWILIO_FINAL_STATUSES:
        if attempt.status is AttemptStatus.DIALING:
            store.mark_placed(cb.engine, attempt.id, call_sid, now)
        return twiml(cbt.empty())
    settled = settle_from_twilio(cb, attempt, call_sid, call_status, _field("AnsweredBy", 32), now)
    if settled is not None and settled.status is CallbackStatus.PENDING:
        cb.schedule_soon(settled.id)
    return twiml(cbt.empty())



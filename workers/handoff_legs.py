"""What the handoff jobs share: the clock and pause (one place, so tests set them once), the
config, roster and URLs of the worker, and the calls of a handoff as Twilio knows them (the
conference, each helper's leg, the caller's call, the desk leg a returned call resumes).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from twilio.base.exceptions import TwilioRestException

from ivr import twilio_rest
from ivr.config.decision_tree import DecisionTree, load_decision_tree
from ivr.config.roster import Roster, load_roster
from ivr.decisions.handoffs import (
    HandoffEvent,
)
from ivr.flows import handoffs
from ivr.flows.desk import DESK, encode_answers
from ivr.twiml import Urls
from workers import context

log = logging.getLogger(__name__)


HELPER_CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
"""Call progress events asked for on a helper's leg (repeated parameters, as the Calls API takes)."""

PARTICIPANT_CALL_EVENTS = "initiated ringing answered completed"
"""The same for a conference participant (space-separated, as the Participants API takes)."""

PERMANENT_STATUS = range(400, 500)
"""Twilio refused the request itself: retrying will not help, the next helper is dialed."""


@cache
def _config(folder: str) -> tuple[Roster, DecisionTree]:
    roster = load_roster(Path(folder))
    return roster, load_decision_tree(Path(folder), roster)


def _roster() -> Roster:
    ctx = context.current()
    return _config(str(ctx.settings.config_dir))[0]


def _urls() -> Urls:
    return Urls(context.current().settings.public_base_url)


def _now() -> datetime:
    return datetime.now(UTC)


def _sleep(seconds: float) -> None:
    """Backoff wait between REST retries (replaced in tests, which never sleep)."""
    time.sleep(seconds)


def _conference_ref(live: handoffs.LiveCall) -> str:
    # Twilio takes the conference SID, or its friendly name, in the Participants URL.
    return live.conference_sid or live.conference_name


def _return_desk_leg(
    ctx: context.WorkerContext, handoff: handoffs.Handoff, live: handoffs.LiveCall
) -> None:
    """Move the desk leg out of the conference (which ends it) to hear what happened."""
    tree = _config(str(ctx.settings.config_dir))[1]
    returned_url = _urls()(
        f"{DESK}/returned",
        handoff=handoff.id,
        s=handoff.call_taker_staff_id or "",
        a=encode_answers(tree, handoff.answers),
        n=_desk_round(handoff),
    )
    desk_leg = ctx.twilio.calls(live.call_sid)
    twilio_rest.with_retries(
        lambda: desk_leg.update(url=returned_url, method="POST"),
        what="return to the desk",
        sleep=_sleep,
    )


def _desk_round(handoff: handoffs.Handoff) -> int:
    ctx = context.current()
    return len(handoffs.handoffs_for_call(ctx.engine, handoff.live_call_id))


def _caller_call_ended(ctx: context.WorkerContext, call_sid: str) -> datetime | None:
    """When the caller's call ended, per Twilio (None while it goes on)."""
    caller = ctx.twilio.calls(call_sid)
    try:
        call = twilio_rest.with_retries(caller.fetch, what="caller status", sleep=_sleep)
    except TwilioRestException as exc:
        if exc.status == 404:
            return None  # not a call Twilio knows (a simulated one): nothing to conclude
        raise
    if (call.status or "").lower() not in handoffs.CALLER_CALL_OVER:
        return None
    end = call.end_time
    return end.astimezone(UTC) if isinstance(end, datetime) else _now()


def _helper_legs(ctx: context.WorkerContext, handoff: handoffs.Handoff) -> list[str]:
    """The CallSids of the helper legs placed for the handoff's current attempt."""
    sids: list[str] = []
    for e in handoffs.handoff_events(ctx.engine, handoff.id):
        if e.attempt == handoff.attempt and e.call_sid and e.call_sid not in sids:
            if e.event in (HandoffEvent.DIALING, HandoffEvent.RINGING, HandoffEvent.ANSWERED):
                sids.append(e.call_sid)
    return sids


def _end_helper_leg(ctx: context.WorkerContext, call_sid: str) -> bool:
    """Hang up one helper leg (ringing or on the whisper); False if Twilio says it is over."""
    try:
        leg = ctx.twilio.calls(call_sid)
        twilio_rest.with_retries(
            lambda: leg.update(status="completed"), what="end helper leg", sleep=_sleep
        )
    except TwilioRestException as exc:
        if exc.status in PERMANENT_STATUS:
            return False
        raise
    return True

"""Send the text messages residents ask for (recorded first in outbound_sms)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from twilio.base.exceptions import TwilioRestException

from ivr.config.callbacks import Window
from ivr.decisions.callback_rules import in_window
from ivr.phones import PhoneNumberError, dialable_number
from ivr.store import outbox
from workers import context, jobs

log = logging.getLogger(__name__)

PERMANENT_STATUS = range(400, 429)
"""Twilio answers in this range will not get better by retrying (bad number, opted out)."""

STALE_AFTER = timedelta(minutes=10)
"""A text left in 'sending' this long belonged to a worker that died; the sweep checks it."""


TEXT_WINDOW = Window(start=time(8), end=time(21))
"""When no callbacks.yaml is loaded: texts nobody asked for right now go 8 a.m. to 9 p.m."""


def _now() -> datetime:
    return datetime.now(UTC)


def quiet_time(ctx: context.WorkerContext, now: datetime) -> bool:
    """True outside the window automated contact is allowed in (callbacks.yaml's standard
    window, 8 a.m. to 9 p.m. local by default)."""
    if ctx.callbacks is not None:
        rules = ctx.callbacks.config
        return not in_window(now, rules.windows.standard, rules.zone)
    return not in_window(now, TEXT_WINDOW, ZoneInfo(ctx.config.lines.timezone))


def send_sms(sms_id: int) -> str:
    """Send one recorded text once; safe to run twice and from two workers at once.

    A text marked `quiet_hours` waits (stays pending) outside the window; the sweep sends it.
    """
    ctx = context.current()
    sms = outbox.get(ctx.engine, sms_id)
    if sms is None:
        log.error("send_sms: no such text sms_id=%s", sms_id)
        return "missing"
    if sms.quiet_hours and sms.status is outbox.SmsStatus.PENDING and quiet_time(ctx, _now()):
        log.info("send_sms: quiet hours, left for the sweep sms_id=%s", sms_id)
        return "quiet_hours"
    if not outbox.claim(ctx.engine, sms_id):
        return sms.status.value
    try:
        dialable_number(sms.to_number)  # toll-fraud guard: texts too go to the US and Canada only
    except PhoneNumberError as exc:
        outbox.mark_failed(ctx.engine, sms_id, f"number {exc.problem.value}")
        log.warning("send_sms: refused sms_id=%s number=%s", sms_id, exc.problem.value)
        return "failed"
    try:
        message = ctx.twilio.messages.create(to=sms.to_number, from_=sms.from_number, body=sms.body)
    except TwilioRestException as exc:
        if exc.status in PERMANENT_STATUS:
            outbox.mark_failed(ctx.engine, sms_id, f"twilio {exc.status} code {exc.code}")
            log.warning(
                "send_sms: refused sms_id=%s status=%s code=%s", sms_id, exc.status, exc.code
            )
            return "failed"
        outbox.release(ctx.engine, sms_id, f"twilio {exc.status}")
        raise  # RQ retries with the intervals given at enqueue time
    except Exception as exc:
        outbox.release(ctx.engine, sms_id, type(exc).__name__)
        raise
    outbox.mark_sent(ctx.engine, sms_id, message.sid or "")
    log.info("send_sms: sent sms_id=%s", sms_id)
    return "sent"


def sweep_sms() -> int:
    """Queue every pending text again and settle texts stuck in 'sending'. Returns how many."""
    ctx = context.current()
    settled = 0
    for sms in outbox.stale_sending(ctx.engine, datetime.now(UTC) - STALE_AFTER):
        sent = ctx.twilio.messages.list(
            to=sms.to_number, from_=sms.from_number, date_sent_after=sms.created_at, limit=20
        )
        match = next((m for m in sent if m.body == sms.body), None)
        if match is not None:
            outbox.mark_sent(ctx.engine, sms.id, match.sid or "")
        else:
            outbox.release(ctx.engine, sms.id, "worker died while sending")
        settled += 1
    for sms_id in outbox.pending_ids(ctx.engine, quiet_time=quiet_time(ctx, _now())):
        if ctx.queues.enqueue("sms", jobs.SEND_SMS, sms_id, job_id=f"sms-{sms_id}"):
            settled += 1
    return settled

"""Texts owed to residents for their 311 reports' status changes (see ivr.report_texts)."""

from __future__ import annotations

import logging

from ivr import report_texts
from ivr.store import service_requests
from workers import context, jobs

log = logging.getLogger(__name__)


def record_status_text(change_id: int) -> str:
    """Record a change's text in the outbox and queue it for sending; safe to run twice."""
    ctx = context.current()
    sms_id = report_texts.record_status_text(
        ctx.engine,
        change_id,
        ctx.config.menus.report_categories,
        ctx.config.numbers["sms_from"],
    )
    if sms_id is None:
        return "none"
    ctx.queues.enqueue("sms", jobs.SEND_SMS, sms_id, job_id=f"sms-{sms_id}")
    log.info("report status text recorded: change=%s sms_id=%s", change_id, sms_id)
    return "queued"


def sweep_report_texts() -> int:
    """Record every text a status change still owes (the web or Redis failed after the change)."""
    ctx = context.current()
    done = 0
    for change_id in service_requests.texts_owed(ctx.engine):
        if record_status_text(change_id) == "queued":
            done += 1
    return done

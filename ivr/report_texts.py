"""The text a resident gets when their 311 report's status changes (they asked on the call).

One text per status change, in the resident's language, recorded in the outbox under a key
made of the change's id (so a retry or a second worker records it once) and marked
`quiet_hours`, so workers.sms sends it only between 8 a.m. and 9 p.m. local time.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from ivr.config.models import ReportCategory
from ivr.decisions.phrases import phrase
from ivr.store import outbox, service_requests
from ivr.store.service_requests import Change, Notify, ServiceRequest

NOTE_LIMIT = 200
"""Characters of the public note a text carries (the rest is on the phone line)."""


def outbox_key(change_id: int) -> str:
    """The outbox key of a change's text: one text per change, whoever records it."""
    return f"report-status:{change_id}"


def status_text(request: ServiceRequest, change: Change, category: str) -> str:
    """The text itself, in the language the resident used on the call."""
    lang = request.language
    body = phrase(
        "status_text",
        lang,
        reference=request.reference,
        category=category,
        status=phrase(f"status_{change.status.value}", lang),
    )
    note = " ".join((change.public_note or "").split())
    if note:
        if len(note) > NOTE_LIMIT:
            note = note[: NOTE_LIMIT - 1].rstrip() + "…"
        body += phrase("status_text_note", lang, note=note)
    return body + phrase("status_text_stop", lang)


def record_status_text(
    engine: sa.Engine,
    change_id: int,
    categories: Sequence[ReportCategory],
    from_number: str,
) -> int | None:
    """Put the text a change owes into the outbox (once); its outbox id, or None when the
    change owes none (no consent, no number, nothing changed)."""
    change = service_requests.get_change(engine, change_id)
    if change is None:
        return None
    if change.notify is not Notify.PENDING:
        return change.sms_id
    request = service_requests.find_by_id(engine, change.request_id)
    if request is None or not request.notify_sms or not request.caller_number:
        service_requests.settle_text(engine, change_id, Notify.SKIPPED, None)
        return None
    category = next(
        (c.label.get(request.language) for c in categories if c.code == request.category),
        request.category,
    )
    sms_id = outbox.queue_sms(
        engine,
        key=outbox_key(change_id),
        to_number=request.caller_number,
        from_number=from_number,
        body=status_text(request, change, category),
        quiet_hours=True,
    )
    service_requests.settle_text(engine, change_id, Notify.QUEUED, sms_id)
    return sms_id

"""Push handoff EIDOs to partner subscriptions (recorded first in eido_deliveries).

`sweep_eido_push` (the clock, every few seconds) records each change of each subscribed
handoff and queues `push_stream` for every (subscription, handoff) with a delivery due;
`push_stream` sends that stream's deliveries in order, signed, each with its idempotency key,
and leaves a failed one for the next try after its backoff. A webhook never pushes anything.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import requests

from ivr.partners import deliveries, get_partner
from ivr.partners.deliveries import DeliveryStatus
from ivr.partners.subscriptions import (
    DELIVERY_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    get_subscription,
    sign,
    signing_secret,
)
from ivr.reporting.eido import EidoContext, context_for
from workers import context, jobs

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
"""A partner that takes longer is counted as a failed try (and tried again later)."""

PUSH_QUEUE = "default"
"""Queue of the push jobs (nothing a caller waits for)."""

_contexts: dict[tuple[Path, str], EidoContext] = {}


def _now() -> datetime:
    return datetime.now(UTC)


def _eido_context() -> EidoContext:
    ctx = context.current()
    key = (ctx.settings.config_dir, ctx.config.lines.timezone)
    if key not in _contexts:
        _contexts[key] = context_for(*key)
    return _contexts[key]


def _job_id(subscription_id: int, handoff_id: int) -> str:
    return f"eido-push-{subscription_id}-{handoff_id}"


def push_stream(subscription_id: int, handoff_id: int) -> str:
    """Send one stream's due deliveries, oldest first; safe to run twice and on two workers."""
    ctx = context.current()
    sub = get_subscription(ctx.engine, subscription_id)
    if sub is None or not sub.enabled:
        return "subscription off"
    partner = get_partner(ctx.engine, sub.partner_prefix)
    if partner is None or not partner.enabled:
        return "partner off"
    secret = signing_secret(ctx.engine, subscription_id)
    assert secret is not None
    sent = 0
    while True:
        now = _now()
        delivery = deliveries.claim_next(ctx.engine, subscription_id, handoff_id, now)
        if delivery is None:
            break
        body = delivery.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(now.timestamp())),
            IDEMPOTENCY_HEADER: delivery.idempotency_key,
            DELIVERY_HEADER: str(delivery.id),
        }
        try:
            answer = requests.post(
                sub.url,
                data=body,
                headers=headers,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            error = f"no answer: {type(exc).__name__}"
        else:
            answer.close()
            if 200 <= answer.status_code < 300:
                deliveries.mark_delivered(ctx.engine, delivery.id, _now())
                sent += 1
                continue
            error = f"HTTP {answer.status_code}"
        status = deliveries.mark_try_failed(ctx.engine, delivery, error, _now())
        log.warning(
            "eido push failed: delivery_id=%s subscription_id=%s try=%s error=%s now=%s",
            delivery.id,
            subscription_id,
            delivery.attempts,
            error,
            status,
        )
        if status == DeliveryStatus.FAILED.value:
            continue  # given up on this change: the stream's next change may go
        return f"retrying after {sent} sent"
    if sent:
        log.info(
            "eido push: subscription_id=%s handoff_id=%s sent=%s", subscription_id, handoff_id, sent
        )
    return f"{sent} sent"


def sweep_eido_push() -> int:
    """Record new changes, retake deliveries a dead worker held, queue every due stream."""
    ctx = context.current()
    now = _now()
    deliveries.record_changes(ctx.engine, _eido_context(), now)
    deliveries.release_stale(ctx.engine, now)
    queued = 0
    for subscription_id, handoff_id in deliveries.due_streams(ctx.engine, now):
        if ctx.queues.enqueue(
            PUSH_QUEUE,
            jobs.PUSH_STREAM,
            subscription_id,
            handoff_id,
            job_id=_job_id(subscription_id, handoff_id),
            retry_intervals=jobs.PUSH_SCHEDULE_RETRY,  # the database or Redis away; sends retry by backoff
        ):
            queued += 1
    return queued

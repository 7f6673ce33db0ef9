"""GET /metrics in Prometheus's text format: webhook latency, queues, handoffs, callbacks.

Latency is measured in-process for every request (a histogram per URL rule, never per raw
path, so forged URLs cannot explode the label set). Queue depth, handoff outcomes and overdue
callbacks are read from Redis and SQL when Prometheus scrapes, so they are right whichever
process answers; a table that does not exist yet (or Redis being down) is skipped, and
`bridgeline_metrics_source_up` says which sources answered.

Several gunicorn workers: set PROMETHEUS_MULTIPROC_DIR to an empty folder before start-up
(prometheus_client's multiprocess mode) and the histogram adds up every worker's requests.
No label or value ever carries caller data.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ivr.services import services_of

EXTENSION_KEY = "bridgeline_metrics"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; Twilio gives a webhook 15 s, a caller notices well under one."""

OPEN_CALLBACK_STATUSES = ("pending", "dialing", "failed")
"""Callbacks still owed to someone (failed ones stay open until a supervisor closes them)."""

bp = Blueprint("metrics", __name__)


class StoreCollector(Collector):
    """Figures read at scrape time from Redis and SQL."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "bridgeline_metrics_source_up", "Whether a metrics source answered", labels=["source"]
        )
        state = services_of(self.app)
        queued = GaugeMetricFamily(
            "bridgeline_queue_jobs", "RQ jobs by queue and state", labels=["queue", "state"]
        )
        try:
            for queue in state.queues.all():
                queued.add_metric([queue.name, "queued"], queue.count)
                queued.add_metric([queue.name, "failed"], queue.failed_job_registry.count)
                queued.add_metric([queue.name, "scheduled"], queue.scheduled_job_registry.count)
                queued.add_metric([queue.name, "started"], queue.started_job_registry.count)
            up.add_metric(["redis"], 1)
            yield queued
        except Exception:
            up.add_metric(["redis"], 0)
        try:
            yield from self._from_sql(state.engine)
            up.add_metric(["database"], 1)
        except Exception:
            up.add_metric(["database"], 0)
        spooled = GaugeMetricFamily(
            "bridgeline_event_spool_rows", "Self-service events not yet flushed (this process)"
        )
        from ivr.store.events import spool_of

        spool = spool_of(state.engine)
        spooled.add_metric([], spool._pending if spool is not None else 0)
        yield spooled
        yield up

    def _from_sql(self, engine: sa.Engine) -> Iterator[GaugeMetricFamily]:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            if "handoffs" in tables:
                handoffs = GaugeMetricFamily(
                    "bridgeline_handoffs",
                    "Handoffs by status and recorded outcome",
                    labels=["status", "outcome"],
                )
                rows = conn.execute(
                    sa.text(
                        "SELECT status, outcome, COUNT(*) FROM handoffs GROUP BY status, outcome"
                    )
                )
                for status, outcome, count in rows:
                    handoffs.add_metric([str(status), str(outcome or "none")], count)
                yield handoffs
            if "callbacks" in tables:
                now = datetime.now(UTC)
                statuses: sa.BindParameter[Any] = sa.bindparam(
                    "statuses", list(OPEN_CALLBACK_STATUSES), expanding=True
                )
                overdue, open_ = conn.execute(
                    sa.text(
                        "SELECT"
                        " SUM(CASE WHEN deadline_at < :now THEN 1 ELSE 0 END), COUNT(*)"
                        " FROM callbacks WHERE status IN :statuses"
                    ).bindparams(statuses),
                    {"now": now, "statuses": list(OPEN_CALLBACK_STATUSES)},
                ).one()
                yield _gauge(
                    "bridgeline_callbacks_overdue", "Open callbacks past deadline", overdue
                )
                yield _gauge("bridgeline_callbacks_open", "Callbacks still owed", open_)
            if "conference_inbox" in tables:
                waiting = conn.execute(
                    sa.text("SELECT COUNT(*) FROM conference_inbox WHERE applied_at IS NULL")
                ).scalar_one()
                yield _gauge(
                    "bridgeline_conference_callbacks_unapplied",
                    "Conference status callbacks taken in but not yet applied by a worker",
                    waiting,
                )
            if "desk_sign_in_failures" in tables:
                yield from _desk_sign_in(conn)
            if "eido_deliveries" in tables:
                yield from _eido_pushes(conn)
            if "outbound_sms" in tables:
                pending = conn.execute(
                    sa.text(
                        "SELECT COUNT(*) FROM outbound_sms WHERE status IN ('pending', 'sending')"
                    )
                ).scalar_one()
                yield _gauge("bridgeline_sms_unsent", "Texts recorded but not yet sent", pending)


def _eido_pushes(conn: sa.Connection) -> Iterator[GaugeMetricFamily]:
    """EIDO pushes to partners: by status, and those failing (retrying or given up)."""
    by_status = GaugeMetricFamily(
        "bridgeline_eido_deliveries", "EIDO pushes to partners by status", labels=["status"]
    )
    counts = dict.fromkeys(("pending", "sending", "delivered", "failed"), 0)
    retrying = 0
    rows = conn.execute(
        sa.text(
            "SELECT status, CASE WHEN attempts > 0 THEN 1 ELSE 0 END, COUNT(*)"
            " FROM eido_deliveries GROUP BY status, CASE WHEN attempts > 0 THEN 1 ELSE 0 END"
        )
    )
    for status, tried, count in rows:
        counts[str(status)] = counts.get(str(status), 0) + int(count)
        if status == "pending" and tried:
            retrying += int(count)
    for status, count in counts.items():
        by_status.add_metric([status], count)
    yield by_status
    yield _gauge(
        "bridgeline_eido_pushes_retrying",
        "EIDO pushes whose partner refused or did not answer, waiting to be tried again",
        retrying,
    )
    yield _gauge(
        "bridgeline_eido_pushes_failed",
        "EIDO pushes given up on after every try (alert on > 0; supervisors see them)",
        counts["failed"],
    )


def _desk_sign_in(conn: sa.Connection) -> Iterator[GaugeMetricFamily]:
    """Wrong desk PINs in the lockout window, and the lines a supervisor should look at."""
    from ivr.decisions.sign_in_throttle import ALERT_AFTER, WINDOW
    from ivr.store.handoff_tables import desk_sign_in_failures as failures

    per_line = (
        sa.select(sa.func.count().label("n"))
        .where(failures.c.kind == "wrong_pin")
        .where(failures.c.at >= datetime.now(UTC) - WINDOW)
        .group_by(failures.c.caller_tag)
        .subquery("per_line")
    )
    wrong, lines = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(per_line.c.n), 0),
            sa.func.coalesce(sa.func.sum(sa.case((per_line.c.n >= ALERT_AFTER, 1), else_=0)), 0),
        )
    ).one()
    yield _gauge(
        "bridgeline_desk_wrong_pins_recent",
        "Wrong transfer-desk PINs in the last 15 minutes",
        wrong,
    )
    yield _gauge(
        "bridgeline_desk_lines_with_repeated_wrong_pins",
        "Calling numbers with repeated wrong desk PINs in the last 15 minutes (alert on > 0)",
        lines,
    )


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], float(value or 0))
    return gauge


class Metrics:
    """The latency histogram and the registry /metrics renders."""

    def __init__(self, app: Flask) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "bridgeline_webhook_seconds",
            "Time to answer a request, by URL rule",
            ["rule", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.store = StoreCollector(app)
        self.registry.register(self.store)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(self.store)
            return generate_latest(registry)
        return generate_latest(self.registry)


def _start() -> None:
    g._bridgeline_started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.pop("_bridgeline_started", None)
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics: Metrics = current_app.extensions[EXTENSION_KEY]
        metrics.latency.labels(rule, request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
    return response


@bp.get("/metrics")
def metrics_page() -> Response:
    metrics: Metrics = current_app.extensions[EXTENSION_KEY]
    return Response(metrics.render(), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Time every request and serve /metrics."""
    app.extensions[EXTENSION_KEY] = Metrics(app)
    app.before_request(_start)
    app.after_request(_observe)
    app.register_blueprint(bp)

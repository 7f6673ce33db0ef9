"""`python -m workers.clock`: enqueue the periodic sweeps (RQ's CronScheduler) and hand due
callback attempts to a worker at their exact time (a thread)."""

from __future__ import annotations

import threading

from rq.cron import CronScheduler

from ivr import logs
from ivr.settings import load_settings
from workers import context
from workers.callbacks import run_dispatcher, sweep_callbacks
from workers.eido_push import sweep_eido_push
from workers.handoffs import sweep_handoffs
from workers.report_texts import sweep_report_texts
from workers.reports import ROLLUP_INTERVAL_SECONDS, refresh_rollups
from workers.retention import load_retention, purge_expired
from workers.sms import sweep_sms

SWEEP_INTERVAL_SECONDS = 60
"""How often recorded-but-unsent work is looked for."""

HANDOFF_SWEEP_INTERVAL_SECONDS = 15
"""How often handoffs that lost their dial job or never heard from Twilio are settled."""

EIDO_PUSH_INTERVAL_SECONDS = 10
"""How often handoff changes are looked for and owed EIDO pushes are sent to partners."""

RETENTION_INTERVAL_SECONDS = 24 * 3600
"""How often records past their retention limit are deleted."""


def main() -> int:
    logs.configure()
    ctx = context.build(load_settings())
    load_retention(ctx.settings.config_dir)  # a mistake in retention.yaml stops start-up here
    cron = CronScheduler(connection=ctx.queues.connection)
    cron.register(
        sweep_sms, queue_name=ctx.queues.queue("default").name, interval=SWEEP_INTERVAL_SECONDS
    )
    cron.register(
        sweep_report_texts,
        queue_name=ctx.queues.queue("default").name,
        interval=SWEEP_INTERVAL_SECONDS,
    )
    cron.register(
        sweep_callbacks,
        queue_name=ctx.queues.queue("default").name,
        interval=SWEEP_INTERVAL_SECONDS,
    )
    cron.register(
        sweep_handoffs,
        queue_name=ctx.queues.queue("urgent").name,
        interval=HANDOFF_SWEEP_INTERVAL_SECONDS,
    )
    cron.register(
        sweep_eido_push,
        queue_name=ctx.queues.queue("default").name,
        interval=EIDO_PUSH_INTERVAL_SECONDS,
    )
    cron.register(
        purge_expired,
        queue_name=ctx.queues.queue("default").name,
        interval=RETENTION_INTERVAL_SECONDS,
    )
    cron.register(
        refresh_rollups,
        queue_name=ctx.queues.queue("default").name,
        interval=ROLLUP_INTERVAL_SECONDS,
    )
    if ctx.callbacks is not None:
        # Due callbacks to the millisecond (RQ's scheduler alone is up to 2 s late).
        stop = threading.Event()
        threading.Thread(
            target=run_dispatcher, args=(ctx.callbacks, stop), name="callback-dispatcher",
            daemon=True,
        ).start()  # fmt: skip
    cron.start()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

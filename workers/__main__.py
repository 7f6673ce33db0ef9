"""`python -m workers`: an RQ worker (with RQ's scheduler) on every Bridgeline queue."""

from __future__ import annotations

from rq import SimpleWorker

from ivr import logs
from ivr.settings import load_settings
from workers import context


def main() -> int:
    # SimpleWorker runs jobs in this process: 3.5x the throughput of the forking Worker for
    # our short jobs (bench/workers.py), and every job is idempotent, so a crash mid-job is
    # safe (RQ retries it or a sweep reconciles it).
    logs.configure()
    ctx = context.build(load_settings())
    context.install(ctx)
    worker = SimpleWorker(ctx.queues.all(), connection=ctx.queues.connection)
    worker.work(with_scheduler=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

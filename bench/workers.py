"""Worker throughput: jobs/s of Bridgeline's jobs with RQ's SimpleWorker vs the forking Worker.

    .venv/bin/python bench/workers.py [--jobs 500] [--repeats 3]

Records N texts in a fresh SQLite database, queues one `workers.sms.send_sms` job each on
Redis (BENCH_REDIS_URL, default db 13, only this script's queues are touched), and times a
burst worker draining them, for each worker class. Twilio's REST API is answered in-process by
`responses` (no network; a forked work horse inherits the mock). Every text must end up
'sent' exactly once or the run fails. Handoff and callback jobs are listed as skipped: they
need a roster, a live call or a due callback built by their own fixtures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
import responses  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from rq import SimpleWorker, Worker  # noqa: E402

from ivr.settings import load_settings  # noqa: E402
from ivr.store import outbox  # noqa: E402
from ivr.store.db import migrate  # noqa: E402
from ivr.store.tables import outbound_sms  # noqa: E402
from workers import context  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32


def run(worker_class: type[Worker], jobs: int, ctx: context.WorkerContext) -> float:
    """Queue `jobs` texts, drain them with `worker_class` in burst mode; returns jobs/s."""
    with ctx.engine.begin() as conn:
        conn.execute(outbound_sms.delete())
    ids = [
        outbox.queue_sms(
            ctx.engine, key=f"bench:{i}", to_number="+15205550123",
            from_number="+15205550100", body="City offices: Mon-Fri 8am-5pm.",
        )
        for i in range(jobs)
    ]  # fmt: skip
    queue = ctx.queues.queue("sms")
    queue.empty()
    for sms_id in ids:
        queue.enqueue("workers.sms.send_sms", sms_id, job_id=f"sms-{sms_id}")
    ctx.engine.dispose()  # a forked work horse must not share the parent's connections
    worker = worker_class([queue], connection=ctx.queues.connection)
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    elapsed = time.perf_counter() - started
    with ctx.engine.connect() as conn:
        sent = conn.execute(
            sa.select(sa.func.count()).where(outbound_sms.c.status == "sent")
        ).scalar_one()
    if sent != jobs:
        raise SystemExit(f"{worker_class.__name__}: {sent} of {jobs} texts sent")
    return jobs / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bridgeline-bench-workers-"))
    database_url = f"sqlite:///{folder}/bench.sqlite3"
    migrate(database_url)
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    settings = load_settings(
        {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": "bench-token",
            "PUBLIC_BASE_URL": "https://bridgeline.bench.invalid",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "BRIDGELINE_CONFIG": str(REPO / "config"),
            "BRIDGELINE_QUEUE_PREFIX": "benchw",
        }
    )
    ctx = context.build(settings)
    context.install(ctx)
    redis.Redis.from_url(redis_url).ping()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores")
    print(f"# command: python {' '.join(sys.argv)}")
    results: dict[str, list[float]] = {"SimpleWorker": [], "Worker (fork per job)": []}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as twilio:
        twilio.post(
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
            json={"sid": "SM" + "1" * 32, "status": "queued"},
            status=201,
        )
        for round_ in range(args.repeats):
            for name, worker_class in (
                ("SimpleWorker", SimpleWorker),
                ("Worker (fork per job)", Worker),
            ):
                rate = run(worker_class, args.jobs, ctx)
                results[name].append(rate)
                print(f"  round {round_ + 1} {name:<22} send_sms {rate:7.1f} jobs/s", flush=True)
    print()
    print("| job | worker | jobs/s (median) | ratio to SimpleWorker |")
    print("|---|---|---|---|")
    simple = statistics.median(results["SimpleWorker"])
    for name, rates in results.items():
        median = statistics.median(rates)
        print(f"| send_sms | {name} | {median:.1f} | {median / simple:.2f} |")
    print("| dial_helper, place_callback_attempt | – | skipped: need roster/live-call fixtures | |")
    ctx.queues.queue("sms").empty()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

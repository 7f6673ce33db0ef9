"""Worker throughput: jobs/s of Bridgeline's jobs with RQ's SimpleWorker vs the forking Worker.

    .venv/bin/python bench/workers.py [--jobs 300] [--repeats 3] [--only dial_helper ...]

For each job, records N pieces of work in a fresh SQLite database the way the app does, queues
one job each on Redis (BENCH_REDIS_URL, default db 13; only this script's queues are touched)
and times a burst worker draining them, for each worker class, rounds interleaved:

- `workers.sms.send_sms`: an information text (claimed, sent, marked sent);
- `workers.handoffs.dial_helper`: the first dial of a warm handoff started as the transfer desk
  starts it (`handoffs.start_handoff` queues the job): the attempt is written to the handoff
  log, the helper's call is created, and the CallSid is logged;
- `workers.callbacks.place_callback_attempt`: a due callback's attempt (rules re-checked,
  opt-out looked up, claimed with a conditional UPDATE, call created, marked placed);
- `workers.handoffs.apply_conference_inbox`: helpers' conference joins taken in by the web
  processes, applied (event logged, handoff connected) and announced to the call-taker's leg
  (counted per join: one apply job drains them all, one announcement job each).

Twilio's REST API is a local fake (tests/fake_twilio.py, reached through TWILIO_API_BASE_URL),
so every job makes its real HTTP request on loopback and nothing leaves the machine; a forked
work horse reaches it too. The config is config/ with everyone on duty and no quiet hours now
(tests/live_service.always_open_config), so the rules let every call through. The account's
call-rate limiter (workers/call_rate.py, at most 30 calls/s) is bypassed for the callback job:
it would measure Twilio's limit, not the worker. After each run every record must be done
exactly once and the fake must have seen exactly one request per job, or the run fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from rq import Retry, SimpleWorker, Worker  # noqa: E402
from rq.worker import BaseWorker  # noqa: E402

import workers.callbacks  # noqa: E402
from ivr.decisions.handoffs import EventSource, HandoffEvent, Origin  # noqa: E402
from ivr.flows import conference_inbox, handoffs  # noqa: E402
from ivr.flows.desk import helper_label  # noqa: E402
from ivr.settings import load_settings  # noqa: E402
from ivr.store import callbacks as callback_store  # noqa: E402
from ivr.store import outbox  # noqa: E402
from ivr.store.callback_records import AttemptStatus, CallbackSource  # noqa: E402
from ivr.store.db import migrate  # noqa: E402
from ivr.store.handoff_tables import handoff_events  # noqa: E402
from ivr.store.tables import outbound_sms  # noqa: E402
from tests.fake_twilio import FakeTwilio  # noqa: E402
from tests.live_service import always_open_config  # noqa: E402
from workers import context  # noqa: E402
from workers.handoff_legs import _config as roster_and_tree  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32

CALM_CALLER = {
    "weapon": False,
    "immediate_danger": False,
    "violence": False,
    "consent": True,
    "medical": False,
    "health_question": False,
}
"""Decision-tree answers for which an embedded clinician may be dialed (config/decision_tree.yaml)."""

WORKER_CLASSES: dict[str, type[BaseWorker]] = {
    "SimpleWorker (Procfile)": SimpleWorker,
    "Worker (fork per job)": Worker,
}

Prepared = tuple[str, Callable[[], int]]
"""The queue purpose the jobs are on, and a check returning how many records were done."""


def _clear(engine: sa.Engine) -> None:
    """Delete every row (children first), so each run starts from an empty database."""
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "alembic_version":
                conn.execute(table.delete())


def _count(engine: sa.Engine, query: sa.Select[Any]) -> int:
    with engine.connect() as conn:
        count: int = conn.execute(query).scalar_one()
    return count


def prepare_sms(ctx: context.WorkerContext, jobs: int) -> Prepared:
    """N information texts recorded, one send_sms job each (as the self-service line queues it)."""
    ids = [
        outbox.queue_sms(
            ctx.engine, key=f"bench:{i}", to_number="+15205550123",
            from_number="+15205550100", body="City offices: Mon-Fri 8am-5pm.",
        )
        for i in range(jobs)
    ]  # fmt: skip
    for sms_id in ids:
        ctx.queues.enqueue("sms", "workers.sms.send_sms", sms_id, job_id=f"sms-{sms_id}")
    sent = sa.select(sa.func.count()).where(outbound_sms.c.status == "sent")
    return "sms", lambda: _count(ctx.engine, sent)


def prepare_dials(ctx: context.WorkerContext, jobs: int) -> Prepared:
    """N desk calls held in a conference, each with a handoff to an embedded clinician; starting
    the handoff queues its first dial_helper job, as the transfer desk does."""
    roster, tree = roster_and_tree(str(ctx.settings.config_dir))
    now = datetime.now(UTC)
    for i in range(jobs):
        sid = f"CA{i:032x}"
        handoffs.open_live_call(
            ctx.engine, call_sid=sid, origin=Origin.DESK, callback_number="+15205550123",
            call_taker_staff_id="4821", now=now,
        )  # fmt: skip
        handoffs.start_handoff(
            ctx.engine, ctx.queues, call_sid=sid, call_taker_staff_id="4821",
            helper_type="embedded_clinician", answers=CALM_CALLER, reason="bench",
            roster=roster, tree=tree, now=now, key=f"bench:{sid}",
        )  # fmt: skip
    dialed = sa.select(sa.func.count()).where(
        handoffs.handoffs.c.helper_call_sid.is_not(None),
        handoffs.handoffs.c.status == handoffs.HandoffStatus.DIALING.value,
    )
    return handoffs.DIAL_QUEUE, lambda: _count(ctx.engine, dialed)


def prepare_callbacks(ctx: context.WorkerContext, jobs: int) -> Prepared:
    """N due callbacks (residents who consented), each with its attempt and placing job."""
    now = datetime.now(UTC)
    queue = ctx.queues.queue(workers.callbacks.PLACE_QUEUE)
    retry = Retry(
        max=len(workers.callbacks.PLACE_RETRY_INTERVALS),
        interval=list(workers.callbacks.PLACE_RETRY_INTERVALS),
    )
    for i in range(jobs):
        callback = callback_store.create_callback(
            ctx.engine, key=f"bench:{i}", source=CallbackSource.RESIDENT_MENU,
            phone_number=f"+1520555{1000 + i % 9000:04d}", language="en",
            helper_type="navigator", due_at=now, deadline_at=now + timedelta(hours=4),
            consent=True, now=now,
        )  # fmt: skip
        attempt = callback_store.create_attempt(ctx.engine, callback.id, now, now)
        assert attempt is not None
        queue.enqueue(
            workers.callbacks.place_callback_attempt,
            attempt.id,
            job_id=workers.callbacks.job_id(attempt),
            retry=retry,
        )
    placed = sa.select(sa.func.count()).where(
        callback_store.callback_attempts.c.status == AttemptStatus.PLACED.value
    )
    return workers.callbacks.PLACE_QUEUE, lambda: _count(ctx.engine, placed)


def prepare_conference_joins(ctx: context.WorkerContext, jobs: int) -> Prepared:
    """N desk handoffs a helper accepted, and the N conference callbacks of those helpers
    joining, taken in by the web processes (in the conference_inbox table) with one apply job
    queued, as one spool flush queues it. Applying each makes its handoff connected and queues
    the announcement to the call-taker's leg, which the same worker then runs: so the figure is
    helper joins applied and announced per second, not apply jobs per second."""
    prepare_dials(ctx, jobs)  # queues the first dial of each handoff: not wanted here
    for queue in ctx.queues.all():
        queue.empty()
    now = datetime.now(UTC)
    rows = []
    with ctx.engine.connect() as conn:
        started = conn.execute(
            sa.select(handoffs.handoffs.c.id, handoffs.live_calls.c.id, handoffs.live_calls.c.conference_name)
            .join(handoffs.live_calls, handoffs.live_calls.c.id == handoffs.handoffs.c.live_call_id)
        ).all()  # fmt: skip
    for handoff_id, live_id, conference in started:
        for event in (HandoffEvent.DIALING, HandoffEvent.ANSWERED, HandoffEvent.ACCEPTED):
            handoffs.record_event(
                ctx.engine, handoff_id, event, source=EventSource.BRIDGELINE,
                dedupe_key=f"bench:h{handoff_id}:{event.value}", occurred_at=now, now=now,
                attempt=1, member_id="clin-rivera", call_sid=f"CH{handoff_id:032x}",
            )  # fmt: skip
        form = {
            "StatusCallbackEvent": "participant-join", "FriendlyName": conference,
            "ConferenceSid": "CF" + "c" * 32, "ParticipantLabel": helper_label(handoff_id, 1),
            "CallSid": f"CH{handoff_id:032x}", "SequenceNumber": "3",
        }  # fmt: skip
        rows.append(conference_inbox.callback_row(live_id, form, None, now))
    with ctx.engine.begin() as conn:
        settled = now - timedelta(seconds=conference_inbox.SETTLE_SECONDS)  # measure applying
        conference_inbox.add_to_inbox(conn, rows, settled)
    conference_inbox.wake_worker(ctx.queues)
    announced = sa.select(sa.func.count()).where(
        handoff_events.c.event == HandoffEvent.ANNOUNCED.value
    )
    return conference_inbox.APPLY_QUEUE, lambda: _count(ctx.engine, announced)


JOBS: dict[str, tuple[Callable[[context.WorkerContext, int], Prepared], str]] = {
    "send_sms": (prepare_sms, r"/Messages\.json"),
    "dial_helper": (prepare_dials, r"/Calls\.json"),
    "place_callback_attempt": (prepare_callbacks, r"/Calls\.json"),
    "apply_conference_inbox": (
        prepare_conference_joins,
        r"/Conferences/.+/Participants/caller\.json",
    ),
}
"""Each job: how to record its work and queue it, and the Twilio request one job makes."""


def run(
    job: str,
    worker_class: type[BaseWorker],
    jobs: int,
    ctx: context.WorkerContext,
    twilio: FakeTwilio,
) -> float:
    """Record and queue `jobs` of `job`, drain them with `worker_class` (burst); returns jobs/s."""
    prepare, request = JOBS[job]
    _clear(ctx.engine)
    for queue in ctx.queues.all():
        queue.empty()
    twilio.clear()
    purpose, done = prepare(ctx, jobs)
    ctx.engine.dispose()  # a forked work horse must not share the parent's connections
    worker = worker_class([ctx.queues.queue(purpose)], connection=ctx.queues.connection)
    started = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    elapsed = time.perf_counter() - started
    finished, requests = done(), len(twilio.recorded("POST", request))
    if finished != jobs or requests != jobs:
        raise SystemExit(
            f"{job} on {worker_class.__name__}: {finished} of {jobs} done, "
            f"{requests} Twilio requests (one each expected)"
        )
    return jobs / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(JOBS), default=sorted(JOBS))
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bridgeline-bench-workers-"))
    database_url = f"sqlite:///{folder}/bench.sqlite3"
    migrate(database_url)
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    redis.Redis.from_url(redis_url).ping()
    # The limiter would hold both worker classes to Twilio's 30 calls/s (see the docstring).
    workers.callbacks.call_slot = lambda *_args: 0.0  # type: ignore[assignment]
    with FakeTwilio(ACCOUNT_SID) as twilio:
        settings = load_settings(
            {
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": "bench-token",
                "PUBLIC_BASE_URL": "https://bridgeline.bench.invalid",
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "BRIDGELINE_CONFIG": str(always_open_config(folder / "config")),
                "BRIDGELINE_QUEUE_PREFIX": "benchw",
                "TWILIO_API_BASE_URL": twilio.base_url,
            }
        )
        ctx = context.build(settings)
        context.install(ctx)
        load = os.getloadavg()
        print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores")
        print(f"# command: python {' '.join(sys.argv)}")
        print(f"# load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        for job in args.only:  # warm-up (imports, config caches, connections), not reported
            for worker_class in WORKER_CLASSES.values():
                run(job, worker_class, 10, ctx, twilio)
        results: dict[tuple[str, str], list[float]] = {}
        for round_ in range(args.repeats):
            for job in args.only:
                for name, worker_class in WORKER_CLASSES.items():
                    rate = run(job, worker_class, args.jobs, ctx, twilio)
                    results.setdefault((job, name), []).append(rate)
                    print(
                        f"  round {round_ + 1} {job:<22} {name:<24} {rate:7.1f} jobs/s",
                        flush=True,
                    )
        for queue in ctx.queues.all():
            queue.empty()
    load = os.getloadavg()
    print(f"# load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    print(f"| job | worker | jobs/s (median of {args.repeats}) | ratio to SimpleWorker |")
    print("|---|---|---|---|")
    for job in args.only:
        simple = statistics.median(results[(job, "SimpleWorker (Procfile)")])
        for name in WORKER_CLASSES:
            median = statistics.median(results[(job, name)])
            print(f"| {job} | {name} | {median:.1f} | {median / simple:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

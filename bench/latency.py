"""Latency from a decision to a phone ringing, measured at the local Twilio.

    .venv/bin/python bench/latency.py [--runs 200] [--database postgresql://...]

Starts Bridgeline as `scripts/serve` does with the example env — the Procfile's web (gunicorn,
2 processes), ONE Procfile worker, the clock and the local Twilio (ivr/local_twilio) — on a
fresh SQLite database (or --database) and Redis (BENCH_REDIS_URL, default db 12, queues
prefixed `latency`), config/ with everyone on duty and no quiet hours
(tests/live_service.always_open_config). --logs keeps the processes' logs for profiling.

1. desk keypress -> helper dialed: a call-taker signs in at the transfer desk, answers the
   tree and types the callback number; the clock starts when that last keypress (the request
   that starts the handoff, POST /voice/transfer-desk/start) is sent, and stops when the
   worker's create-call request for the helper reaches the local Twilio (its REST log). Then
   the helper accepts, the caller hangs up, and the next run starts once the handoff ended.
   Target: p99 <= 250 ms.
2. callback due -> its call placed: callbacks due 2 s ahead are recorded and scheduled as
   the web does (workers.callbacks.schedule_callback: an attempt enqueued for its due time on
   RQ's scheduler, and the clock's dispatcher hands it to the worker at its time); the
   latency is the create-call request's arrival minus the due time.
   Batches of 20, due 100 ms apart. Target: p99 <= 2 s.

Both clocks are this machine's (time.time() here and in the local Twilio).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
from rq import Queue  # noqa: E402

from ivr.accounts import create_staff  # noqa: E402
from ivr.local_twilio.client import LocalTwilioClient  # noqa: E402
from ivr.local_twilio.handoff import CALLER_NUMBER, ScenarioFailed, Simulation  # noqa: E402
from ivr.store import callbacks as callback_store  # noqa: E402
from ivr.store.callback_records import CallbackSource  # noqa: E402
from ivr.store.db import make_engine, migrate  # noqa: E402
from tests.live_service import always_open_config, free_port, running_service  # noqa: E402

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "latency-bench-token"
PUBLIC_BASE = "https://bridgeline.example.org"
PREFIX = "latency"


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(name: str, values: list[float], target: float) -> str:
    p50, p99 = percentile(values, 0.50), percentile(values, 0.99)
    verdict = "met" if p99 <= target else "NOT met"
    return (
        f"{name}: n={len(values)} p50={p50 * 1000:.0f} ms p99={p99 * 1000:.0f} ms "
        f"max={max(values) * 1000:.0f} ms mean={statistics.fmean(values) * 1000:.0f} ms "
        f"(target p99 <= {target * 1000:.0f} ms: {verdict})"
    )


def desk_to_dial(sim: Simulation, runs: int) -> list[float]:
    twilio = sim.twilio
    out: list[float] = []
    seen: set[str] = set()
    for n in range(runs):
        desk = sim.party("desk", twilio.dial_in(url="/voice/transfer-desk", from_="+15205550199"))
        sim.act(desk, "press", digits=f"{sim.staff_id}#")
        view = sim.act(desk, "press", digits=f"{sim.pin}#")
        while "callback number" not in (view["heard"][-1] if view["heard"] else ""):
            prompt = view["heard"][-1]
            if "Press 1 for yes" in prompt:
                key = "1" if "agree" in prompt else "2"
            else:
                key = "1"  # the first helper type offered, then the first reason
            view = sim.act(desk, "press", digits=key)
        started = time.time()
        sim.act(desk, "press", digits=f"{CALLER_NUMBER}#")

        def dialed(started: float = started) -> float | None:
            for entry in twilio.rest_log(since=started):
                if (
                    entry["method"] == "POST"
                    and entry["path"] == "/Calls.json"
                    and ("/voice/handoff/whisper" in entry["form"].get("Url", ""))
                ):
                    return float(entry["at"])
            return None

        at = sim.wait("the helper to be dialed", dialed)
        out.append(at - started)
        helper = sim.helper_rings(seen, desk)
        sim.accept(helper)
        # They talk: the caller hangs up once the call-taker was told the helper is on.
        sim.wait_view(desk, "the announcement",
                      lambda v: any("you may hang up now" in line for line in v["heard"]))  # fmt: skip
        sim.act(desk, "hangup")
        sim.final_status(desk)
        if (n + 1) % 50 == 0:
            print(f"  desk runs: {n + 1}", file=sys.stderr)
    return out


def due_to_dial(sim: Simulation, env: dict[str, str], runs: int) -> list[float]:
    twilio = sim.twilio
    connection = redis.Redis.from_url(env["REDIS_URL"])
    queue = Queue(f"{PREFIX}-default", connection=connection)
    out: list[float] = []
    batch = 20
    serial = 0
    while len(out) < runs:
        since = time.time()
        due: dict[str, float] = {}
        start = datetime.now(UTC) + timedelta(seconds=2)
        for i in range(min(batch, runs - len(out))):
            serial += 1
            number = f"+1520555{2000 + serial:04d}"
            twilio.set_phone(number, "busy")
            due_at = start + timedelta(milliseconds=100 * i)
            cb = callback_store.create_callback(
                sim.engine, key=f"latency-{serial}", source=CallbackSource.RESIDENT_MENU,
                phone_number=number, language="en", helper_type="navigator", due_at=due_at,
                deadline_at=due_at + timedelta(hours=4), consent=True,
            )  # fmt: skip
            queue.enqueue("workers.callbacks.schedule_callback", cb.id)
            due[number] = due_at.timestamp()

        def all_dialed(
            since: float = since, due: dict[str, float] = due
        ) -> dict[str, float] | None:
            found: dict[str, float] = {}
            for entry in twilio.rest_log(since=since):
                to = entry["form"].get("To", "")
                if entry["method"] == "POST" and entry["path"] == "/Calls.json" and to in due:
                    found.setdefault(to, float(entry["at"]))
            return found if len(found) == len(due) else None

        placed = sim.wait("every due callback to be placed", all_dialed)
        out.extend(placed[number] - due[number] for number in due)
        print(f"  callback runs: {len(out)}", file=sys.stderr)
    connection.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--logs", help="a folder to keep the processes' logs in (for profiling)")
    args = parser.parse_args()
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    with tempfile.TemporaryDirectory(prefix="bridgeline-latency-") as tmp:
        folder = Path(tmp)
        database = args.database or f"sqlite:///{folder / 'bench.sqlite3'}"
        migrate(database)
        engine = make_engine(database)
        create_staff(engine, staff_id="4821", name="Bench Call-Taker", roles=["call_taker"],
                     pin="2468")  # fmt: skip
        connection = redis.Redis.from_url(redis_url)
        for key in connection.scan_iter(f"rq:*{PREFIX}-*"):
            connection.delete(key)
        connection.close()
        twilio_url = f"http://127.0.0.1:{free_port()}"
        env = {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": PUBLIC_BASE,
            "DATABASE_URL": database,
            "REDIS_URL": redis_url,
            "BRIDGELINE_CONFIG": str(always_open_config(folder / "config")),
            "BRIDGELINE_QUEUE_PREFIX": PREFIX,
            "BRIDGELINE_SPOOL_DIR": str(folder / "spool"),
            "TWILIO_API_BASE_URL": twilio_url,
        }
        with running_service(env, folder, workers=1, also=("twilio", "clock")):
            twilio = LocalTwilioClient(twilio_url)
            twilio.wait_for("the local Twilio", twilio.healthy, timeout=30)
            sim = Simulation(twilio, engine, io.StringIO(), "4821", "2468", timeout=60)
            try:
                desk = desk_to_dial(sim, args.runs)
                due = due_to_dial(sim, env, args.runs)
            except ScenarioFailed:
                assert isinstance(sim.out, io.StringIO)
                print("\n".join(sim.out.getvalue().splitlines()[-40:]), file=sys.stderr)
                raise
            problems = twilio.problems()
        engine.dispose()
        if args.logs:
            Path(args.logs).mkdir(parents=True, exist_ok=True)
            for log in folder.glob("*.log"):
                shutil.copy(log, Path(args.logs) / log.name)
    print(f"database: {'PostgreSQL' if args.database else 'SQLite'}; one Procfile worker, clock")
    print(summary("desk /start keypress -> helper's Calls request", desk, 0.250))
    print(summary("callback due -> its Calls request", due, 2.0))
    if problems:
        print(f"local Twilio reported {len(problems)} problem(s): {problems[:3]}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

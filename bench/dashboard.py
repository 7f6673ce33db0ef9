"""How fast the main dashboard view answers over a year of a large center's records.

Seeds one year of records (by default 1,000,000 handoff events: ~200,000 handoffs of five
events each, with their live calls, plus self-service events and callbacks) into a fresh
SQLite file and into a PostgreSQL database it creates and drops (`bridgeline_bench`), then
times GET /dashboard for the whole year (signed in as a supervisor, full page rendered),
and the same page filtered to one jurisdiction, and prints the median of several runs. Target: under 0.5 s on each database. Before the
first view it runs the rollup refresh the clock job (workers.reports) runs every minute, and
times it; --no-clock-job leaves that to the first view.

    .venv/bin/python bench/dashboard.py [--events 1000000] [--runs 5] [--pg URL | --no-pg]
        [--no-clock-job] [--jurisdiction city]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ivr import create_app  # noqa: E402
from ivr.accounts import create_staff  # noqa: E402
from ivr.settings import normalise_database_url  # noqa: E402
from ivr.store.db import make_engine, migrate  # noqa: E402
from ivr.store.handoff_tables import handoff_events, handoffs, live_calls  # noqa: E402
from ivr.store.tables import callbacks, self_service_events  # noqa: E402

YEAR_START = datetime(2025, 11, 1, 7, tzinfo=UTC)
"""First instant of the seeded year (midnight in Phoenix)."""

HELPER_TYPES = (
    ("embedded_clinician", 0.30),
    ("telehealth_nurse", 0.30),
    ("telehealth_doctor", 0.05),
    ("crisis_988", 0.20),
    ("navigator", 0.15),
)
OUTCOMES = (
    "resolved_by_phone",
    "resolved_on_scene",
    "police_backup_required",
    "medical_backup_required",
    "transport",
    "involuntary_hold",
    "referred",
    "callback_scheduled",
)
JURISDICTIONS = (("city", 0.6), ("county", 0.3), ("south_side", 0.1))
"""config/program.yaml jurisdictions the seeded calls are recorded under, and their shares."""
NO_HELPER = ("chain_exhausted", "no_one_on_duty", "caller_hung_up", "not_eligible_weapon")
EVENTS_PER_HANDOFF = 5
BATCH = 20_000
PASSWORD = "bench password 0123"


def _when(rng: random.Random) -> datetime:
    """A time in the year, busier by day than at night (as centers are)."""
    day = rng.randrange(365)
    hour = min(23, max(0, int(rng.gauss(14, 5))))
    return YEAR_START + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(engine: sa.Engine, events: int, seed_value: int = 7) -> dict[str, int]:
    """Insert the year of records; returns how many rows of each kind."""
    rng = random.Random(seed_value)
    n_handoffs = events // EVENTS_PER_HANDOFF
    types = [t for t, _ in HELPER_TYPES]
    weights = [w for _, w in HELPER_TYPES]
    places = [j for j, _ in JURISDICTIONS]
    place_weights = [w for _, w in JURISDICTIONS]
    call_rows, handoff_rows, event_rows = [], [], []
    for i in range(1, n_handoffs + 1):
        at = _when(rng)
        place = rng.choices(places, place_weights)[0]
        call_rows.append(
            {
                "id": i,
                "conference_name": f"bl-CA{i:032d}",
                "origin": "desk",
                "call_sid": f"CA{i:032d}",
                "status": "ended",
                "jurisdiction": place,
                "created_at": at,
                "updated_at": at,
            }
        )
        reached = rng.random() < 0.8
        answer = max(1, int(rng.lognormvariate(2.4, 0.5))) if reached else None
        accepted = at + timedelta(seconds=answer) if answer else None
        ended = accepted + timedelta(seconds=rng.randrange(60, 2400)) if accepted else None
        handoff_rows.append(
            {
                "id": i,
                "idempotency_key": f"bench-{i}",
                "live_call_id": i,
                "origin": "desk",
                "call_taker_staff_id": "4101",
                "helper_type": rng.choices(types, weights)[0],
                "jurisdiction": place,
                "answers": "{}",
                "chain": "[]",
                "status": "completed" if reached else "returned",
                "reason_code": None if reached else rng.choice(NO_HELPER),
                "attempt": 1 if rng.random() < 0.85 else 2,
                "outcome": rng.choice(OUTCOMES) if reached and rng.random() < 0.7 else None,
                "created_at": at,
                "updated_at": ended or at,
                "accepted_at": accepted,
                "connected_at": accepted,
                "ended_at": ended,
            }
        )
        names = (
            ("requested", "dialing", "ringing", "accepted", "helper_joined")
            if reached
            else ("requested", "dialing", "ringing", "no_answer", "returned")
        )
        for k, name in enumerate(names):
            event_rows.append(
                {
                    "handoff_id": i,
                    "dedupe_key": f"h{i}:{k}",
                    "event": name,
                    "source": "twilio",
                    "attempt": 1,
                    "occurred_at": at + timedelta(seconds=k),
                    "received_at": at + timedelta(seconds=k),
                }
            )
    ss_rows, cb_rows = [], []
    for j in range(n_handoffs):  # as many self-service calls, three events each
        at = _when(rng)
        sid = f"CAss{j:030d}"
        for k, (name, detail) in enumerate(
            (
                ("language", "en"),
                ("menu_item", rng.choice(("main:1:report", "main:3:submenu", "main:4:callback"))),
                rng.choice((("report_filed", "pothole"), ("to_person", None), ("info_sms", "h"))),
            )
        ):
            ss_rows.append(
                {
                    "idempotency_key": f"{sid}:{k}",
                    "call_sid": sid,
                    "event": name,
                    "detail": detail,
                    "language": "en",
                    "at": at + timedelta(seconds=10 * k),
                }
            )
    for j in range(n_handoffs // 10):
        at = _when(rng)
        cb_rows.append(
            {
                "idempotency_key": f"bench-cb-{j}",
                "source": "resident_menu",
                "language": "en",
                "status": rng.choice(("done", "done", "done", "failed", "pending")),
                "consent": True,
                "due_at": at,
                "deadline_at": at + timedelta(hours=24),
                "created_at": at,
                "updated_at": at,
            }
        )
    counts = {}
    with engine.begin() as conn:
        for table, rows in (
            (live_calls, call_rows),
            (handoffs, handoff_rows),
            (handoff_events, event_rows),
            (self_service_events, ss_rows),
            (callbacks, cb_rows),
        ):
            for batch in _batches(iter(rows)):
                conn.execute(table.insert(), batch)
            counts[table.name] = len(rows)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in (
                "live_calls",
                "handoffs",
                "handoff_events",
                "self_service_events",
            ):  # fixed names
                ids = sa.table(table, sa.column("id"))
                top = sa.select(sa.func.max(ids.c.id)).scalar_subquery()
                conn.execute(
                    sa.select(sa.func.setval(sa.func.pg_get_serial_sequence(table, "id"), top))
                )
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
    return counts


@dataclass
class Timings:
    """What one database's run measured, in seconds."""

    refresh: float = 0.0
    first: float = 0.0
    page: list[float] = field(default_factory=list)
    figures: list[float] = field(default_factory=list)
    jurisdiction_page: list[float] = field(default_factory=list)


def time_dashboard(url: str, runs: int, clock_job: bool, jurisdiction: str) -> Timings:
    """The clock job's rollup refresh (when `clock_job`), the first view (which builds the
    rollups itself without the clock job), then timings of the whole page (GET /dashboard),
    of the figures alone, and of the page filtered to one jurisdiction."""
    from ivr import reports, rollups
    from ivr.reports import Filters

    env = {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "bench-token",
        "PUBLIC_BASE_URL": "https://bridgeline.example.org",
        "DATABASE_URL": url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        "BRIDGELINE_CONFIG": str(REPO / "config"),
    }
    app = create_app(env)
    engine = app.extensions["bridgeline"].engine
    create_staff(
        engine,
        staff_id="9001",
        name="Bench Supervisor",
        roles=("supervisor",),
        helper_type=None,
        password=PASSWORD,
        pin=None,
    )
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed = client.post(
        "/login",
        data={"csrf_token": token, "staff_id": "9001", "password": PASSWORD},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
    )
    assert signed.status_code == 302, signed.status_code
    query = {"start": "2025-11-01", "end": "2026-10-31"}
    program = app.extensions["bridgeline_program"]
    filters = Filters(YEAR_START, YEAR_START + timedelta(days=365))
    now = YEAR_START + timedelta(days=365)
    out = Timings()
    if clock_job:  # what workers.reports.refresh_rollups does every minute
        started = time.perf_counter()
        rollups.refresh(engine)
        out.refresh = time.perf_counter() - started

    def get(extra: dict[str, str]) -> float:
        started = time.perf_counter()
        response = client.get(
            "/dashboard", query_string={**query, **extra}, base_url="https://localhost"
        )
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        return elapsed

    for n in range(runs + 1):
        elapsed = get({})
        started = time.perf_counter()
        reports.build_dashboard(engine, program, filters, now)
        figures = time.perf_counter() - started
        if n:  # the first view builds the rollups of the whole year
            out.page.append(elapsed)
            out.figures.append(figures)
            out.jurisdiction_page.append(get({"jurisdiction": jurisdiction}))
        else:
            out.first = elapsed
    engine.dispose()
    return out


def _summary(times: list[float]) -> str:
    return (
        f"median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, {len(times)} runs)"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--jurisdiction", default="city", help="jurisdiction of the filtered view that is timed"
    )
    parser.add_argument(
        "--no-clock-job",
        action="store_true",
        help="leave the rollups to the first view, as when workers.clock is not running",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bridgeline-bench-") as folder:
        targets: list[tuple[str, str, str | None]] = []
        if not args.no_sqlite:
            targets.append(("SQLite", f"sqlite:///{folder}/bench.sqlite3", None))
        if not args.no_pg:
            admin_url = normalise_database_url(args.pg)
            bench_url = sa.engine.make_url(admin_url).set(database="bridgeline_bench")
            targets.append(
                ("PostgreSQL", bench_url.render_as_string(hide_password=False), admin_url)
            )
        for name, url, admin_url in targets:
            admin = None
            if admin_url:
                admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.exec_driver_sql('DROP DATABASE IF EXISTS "bridgeline_bench" WITH (FORCE)')
                    conn.exec_driver_sql('CREATE DATABASE "bridgeline_bench"')
            try:
                migrate(url)
                engine = make_engine(url)
                started = time.perf_counter()
                counts = seed(engine, args.events)
                seeded = time.perf_counter() - started
                engine.dispose()
                timed = time_dashboard(
                    url, args.runs, clock_job=not args.no_clock_job, jurisdiction=args.jurisdiction
                )
                if not args.no_clock_job:
                    print(
                        f"{name}: clock job's rollup refresh after the bulk load {timed.refresh:.1f} s"
                    )
                print(f"{name}: first view after the bulk load {timed.first:.1f} s")
                print(
                    f"{name}: seeded {counts['handoff_events']:,} handoff events, "
                    f"{counts['handoffs']:,} handoffs, "
                    f"{counts['self_service_events']:,} self-service events, "
                    f"{counts['callbacks']:,} callbacks in {seeded:.0f} s",
                    flush=True,
                )
                print(
                    f"{name}: GET /dashboard (one year) {_summary(timed.page)}; "
                    f"figures alone median {statistics.median(timed.figures):.3f} s",
                    flush=True,
                )
                print(
                    f"{name}: GET /dashboard?jurisdiction={args.jurisdiction} (one year) "
                    f"{_summary(timed.jurisdiction_page)}",
                    flush=True,
                )
            finally:
                if admin is not None:
                    with admin.connect() as conn:
                        conn.exec_driver_sql(
                            'DROP DATABASE IF EXISTS "bridgeline_bench" WITH (FORCE)'
                        )
                    admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

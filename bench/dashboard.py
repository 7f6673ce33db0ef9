"""How fast the main dashboard view answers over a year of a large center's records.

Seeds one year of records (by default 1,000,000 handoff events: ~200,000 handoffs of five
events each, with their live calls, plus self-service events and callbacks) into a fresh
SQLite file and into a PostgreSQL database it creates and drops (`bridgeline_bench`), then
times GET /dashboard for the whole year (signed in as a supervisor, full page rendered),
and the same page filtered to one jurisdiction, and prints the median of several runs. Target: under 0.5 s on each database. Before the
first view it runs the rollup refresh the clock job (workers.reports) runs every minute, and
times it; --no-clock-job leaves that to the first view.

Then it times the supervisor's live wall with `--live-calls` (200) calls in progress on the
same database: the page's poll when something changed (every section rendered), when nothing
did (an empty 304), and the whole /live page. Target: under 100 ms. `--live-only` skips the
year. The year is written a chunk at a time (COPY on PostgreSQL), so 10,000,000 events fit.

    .venv/bin/python bench/dashboard.py [--events 1000000] [--runs 5] [--pg URL | --no-pg]
        [--no-clock-job] [--jurisdiction city] [--live-calls 200] [--live-runs 30] [--live-only]
        [--keep NAME]

`--keep NAME` seeds the PostgreSQL database NAME and the SQLite file /tmp/NAME.sqlite3 once and
reuses them (never dropped): seeding 10,000,000 events takes 15-45 minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
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


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert: COPY on PostgreSQL (the 10M-event year would take an hour as INSERTs),
    executemany on SQLite."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    names = ", ".join(columns)
    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _handoff_chunk(
    rng: random.Random, first: int, last: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Live calls, handoffs and their events for handoff ids first..last."""
    types = [t for t, _ in HELPER_TYPES]
    weights = [w for _, w in HELPER_TYPES]
    places = [j for j, _ in JURISDICTIONS]
    place_weights = [w for _, w in JURISDICTIONS]
    call_rows, handoff_rows, event_rows = [], [], []
    for i in range(first, last + 1):
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
    return call_rows, handoff_rows, event_rows


def _self_service_chunk(rng: random.Random, first: int, last: int) -> list[dict[str, Any]]:
    """Three events for each self-service call first..last."""
    rows = []
    for j in range(first, last + 1):
        at = _when(rng)
        sid = f"CAss{j:030d}"
        for k, (name, detail) in enumerate(
            (
                ("language", "en"),
                ("menu_item", rng.choice(("main:1:report", "main:3:submenu", "main:4:callback"))),
                rng.choice((("report_filed", "pothole"), ("to_person", None), ("info_sms", "h"))),
            )
        ):
            rows.append(
                {
                    "idempotency_key": f"{sid}:{k}",
                    "call_sid": sid,
                    "event": name,
                    "detail": detail,
                    "language": "en",
                    "at": at + timedelta(seconds=10 * k),
                }
            )
    return rows


def seed(engine: sa.Engine, events: int, seed_value: int = 7) -> dict[str, int]:
    """Insert the year of records a chunk at a time (10M events do not fit in memory as
    dicts); returns how many rows of each kind."""
    rng = random.Random(seed_value)
    n_handoffs = events // EVENTS_PER_HANDOFF
    chunk = BATCH
    counts = {"live_calls": 0, "handoffs": 0, "handoff_events": 0}
    counts.update(self_service_events=0, callbacks=0)
    for first in range(1, n_handoffs + 1, chunk):
        last = min(first + chunk - 1, n_handoffs)
        calls, rows, events_rows = _handoff_chunk(rng, first, last)
        ss_rows = _self_service_chunk(rng, first - 1, last - 1)  # as many self-service calls
        with engine.begin() as conn:
            for table, batch in (
                (live_calls, calls),
                (handoffs, rows),
                (handoff_events, events_rows),
                (self_service_events, ss_rows),
            ):
                _insert(conn, table, batch)
                counts[table.name] += len(batch)
        if (first // chunk) % 10 == 0:
            print(f"  seeded {last:,} of {n_handoffs:,} handoffs", flush=True)
    cb_rows = []
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
    with engine.begin() as conn:
        for start in range(0, len(cb_rows), BATCH):
            _insert(conn, callbacks, cb_rows[start : start + BATCH])
    counts["callbacks"] = len(cb_rows)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table_name in (
                "live_calls",
                "handoffs",
                "handoff_events",
                "self_service_events",
                "callbacks",
            ):  # fixed names
                ids = sa.table(table_name, sa.column("id"))
                top = sa.select(sa.func.max(ids.c.id)).scalar_subquery()
                conn.execute(
                    sa.select(sa.func.setval(sa.func.pg_get_serial_sequence(table_name, "id"), top))
                )
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
    return counts


def _seeded_counts(engine: sa.Engine) -> dict[str, int]:
    """How many rows of each kind a kept database already holds (the live wall's own rows
    are not counted)."""
    counts = {}
    with engine.connect() as conn:
        for table in (live_calls, handoffs, handoff_events, self_service_events, callbacks):
            total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            counts[table.name] = int(total)
    return counts


def _env(url: str) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "bench-token",
        "PUBLIC_BASE_URL": "https://bridgeline.example.org",
        "DATABASE_URL": url,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        "BRIDGELINE_CONFIG": str(REPO / "config"),
    }


def _signed_in(app: Any) -> Any:
    """A test client signed in as a supervisor (the account is made once per database)."""
    engine = app.extensions["bridgeline"].engine
    from ivr.accounts import get_staff

    if get_staff(engine, "9001") is None:
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
    return client


LIVE_STATUSES = ("dialing", "ringing", "screening", "accepted", "connected", "connected")
"""Handoff statuses of the calls in progress on the timed wall."""


def seed_live(engine: sa.Engine, calls: int, now: datetime, seed_value: int = 11) -> None:
    """`calls` calls in progress now: a tenth waiting for a call-taker, the rest each with a
    handoff ringing or connected; 15 residents in the 311 queue; 50 open callbacks."""
    rng = random.Random(seed_value)
    with engine.begin() as conn:  # a kept database: the previous run's wall goes first
        conn.execute(handoffs.delete().where(handoffs.c.idempotency_key.like("bench-live-%")))
        conn.execute(live_calls.delete().where(live_calls.c.conference_name.like("bl-live-%")))
        conn.execute(
            self_service_events.delete().where(
                self_service_events.c.idempotency_key.like("bench-queue-%")
            )
        )
        conn.execute(callbacks.delete().where(callbacks.c.idempotency_key.like("bench-live-cb-%")))
    members = {
        "embedded_clinician": ("clin-rivera", "clin-okafor"),
        "telehealth_nurse": ("nurse-lee",),
        "navigator": ("nav-brooks",),
        "crisis_988": ("crisis-988-center",),
    }
    with engine.connect() as conn:
        base = int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(live_calls.c.id), 0))).scalar_one()
        )
        top = int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(handoffs.c.id), 0))).scalar_one()
        )
    call_rows, handoff_rows, ss_rows, cb_rows = [], [], [], []
    for n in range(calls):
        started = now - timedelta(seconds=rng.randrange(20, 1800))
        waiting = n % 10 == 0
        call_id = base + n + 1
        call_rows.append(
            {
                "id": call_id,
                "conference_name": f"bl-live-{call_id}",
                "origin": "intake" if waiting else "desk",
                "call_sid": f"CAlive{call_id:028d}",
                "status": "waiting" if waiting else "with_call_taker",
                "jurisdiction": "city",
                "created_at": started,
                "updated_at": started,
            }
        )
        if waiting:
            continue
        helper_type = rng.choice(tuple(members))
        status = rng.choice(LIVE_STATUSES)
        asked = started + timedelta(seconds=10)
        accepted = (
            asked + timedelta(seconds=rng.randrange(5, 30)) if status == "connected" else None
        )
        handoff_rows.append(
            {
                "id": top + n + 1,
                "idempotency_key": f"bench-live-{call_id}",
                "live_call_id": call_id,
                "origin": "desk",
                "call_taker_staff_id": "4101",
                "helper_type": helper_type,
                "jurisdiction": "city",
                "answers": '{"weapon": false, "consent": true}',
                "chain": "[]",
                "status": status,
                "attempt": 1,
                "member_id": rng.choice(members[helper_type]),
                "created_at": asked,
                "updated_at": accepted or asked,
                "accepted_at": accepted,
                "connected_at": accepted,
            }
        )
    for q in range(15):
        ss_rows.append(
            {
                "idempotency_key": f"bench-queue-{q}-{now.timestamp()}",
                "call_sid": f"CAqueue{q:027d}",
                "event": "to_person",
                "language": "en",
                "at": now - timedelta(seconds=rng.randrange(10, 900)),
            }
        )
    for c in range(50):
        created = now - timedelta(hours=rng.randrange(1, 30))
        cb_rows.append(
            {
                "idempotency_key": f"bench-live-cb-{c}-{now.timestamp()}",
                "source": "resident_menu",
                "language": "en",
                "status": "pending",
                "consent": True,
                "due_at": created,
                "deadline_at": created + timedelta(hours=24),
                "created_at": created,
                "updated_at": created,
            }
        )
    with engine.begin() as conn:
        for table, rows in (
            (live_calls, call_rows),
            (handoffs, handoff_rows),
            (self_service_events, ss_rows),
            (callbacks, cb_rows),
        ):
            _insert(conn, table, rows)


@dataclass
class LiveTimings:
    """GET /live and its poll, in seconds."""

    full: list[float] = field(default_factory=list)
    unchanged: list[float] = field(default_factory=list)
    page: list[float] = field(default_factory=list)


def time_live(url: str, calls: int, runs: int) -> LiveTimings:
    """Seed `calls` calls in progress, then time the wall's poll when something changed
    (a full answer), when nothing did (304), and the whole /live page."""
    from ivr import live  # noqa: F401  (the blueprint is registered by create_app)

    app = create_app(_env(url))
    engine = app.extensions["bridgeline"].engine
    seed_live(engine, calls, datetime.now(UTC))
    client = _signed_in(app)
    out = LiveTimings()
    first = client.get("/api/live/wall", base_url="https://localhost")
    assert first.status_code == 200
    body = first.get_json()
    assert body["sections"]["handoffs"].count("<tr data-key=") >= calls * 0.8
    etag = first.headers["ETag"]
    for _ in range(runs):
        started = time.perf_counter()
        full = client.get("/api/live/wall", base_url="https://localhost")
        out.full.append(time.perf_counter() - started)
        assert full.status_code == 200
        started = time.perf_counter()
        same = client.get(
            "/api/live/wall", headers={"If-None-Match": etag}, base_url="https://localhost"
        )
        out.unchanged.append(time.perf_counter() - started)
        assert same.status_code == 304, same.status_code
        started = time.perf_counter()
        page = client.get("/live", base_url="https://localhost")
        out.page.append(time.perf_counter() - started)
        assert page.status_code == 200
    engine.dispose()
    return out


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
    from ivr.reporting import figures as reports
    from ivr.reporting import rollups
    from ivr.reporting.measures import Filters

    app = create_app(_env(url))
    engine = app.extensions["bridgeline"].engine
    client = _signed_in(app)
    query = {"start": "2025-11-01", "end": "2026-10-31"}
    program = app.extensions["bridgeline"].program
    filters = Filters(YEAR_START, YEAR_START + timedelta(days=365))
    now = YEAR_START + timedelta(days=365)
    out = Timings()
    if clock_job:  # what workers.reports.refresh_rollups does every minute
        started = time.perf_counter()
        rollups.refresh(engine)
        out.refresh = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        # what autovacuum does within a minute or two of the bulk build (PostgreSQL 13+
        # vacuums after inserts): the visibility map that lets the hourly counts be summed
        # from their index alone, and the planner's row counts
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE report_handoff_hours, report_handoff_spans, callbacks"
            )

    def get(extra: dict[str, str]) -> float:
        started = time.perf_counter()
        response = client.get(
            "/dashboard", query_string={**query, **extra}, base_url="https://localhost"
        )
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        return elapsed

    if os.environ.get("BENCH_PROFILE"):  # where one view's time goes, printed once
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        reports.build_dashboard(engine, program, filters, now)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(12)
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


def _print_live(name: str, calls: int, lived: LiveTimings) -> None:
    print(
        f"{name}: /live with {calls} calls in progress: poll with a change "
        f"{_summary(lived.full)}; poll with nothing changed (304) {_summary(lived.unchanged)}; "
        f"whole page {_summary(lived.page)}",
        flush=True,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="keep the seeded year between runs: the PostgreSQL database NAME and the SQLite "
        "file /tmp/NAME.sqlite3 are created and seeded once, then reused (never dropped)",
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--live-calls", type=int, default=200, help="calls in progress on the timed /live wall"
    )
    parser.add_argument("--live-runs", type=int, default=30)
    parser.add_argument(
        "--live-only", action="store_true", help="seed no year: time /live on an empty database"
    )
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
            path = f"/tmp/{args.keep}.sqlite3" if args.keep else f"{folder}/bench.sqlite3"
            targets.append(("SQLite", f"sqlite:///{path}", None))
        if not args.no_pg:
            pg_admin = normalise_database_url(args.pg)
            bench_url = sa.engine.make_url(pg_admin).set(database=args.keep or "bridgeline_bench")
            targets.append(
                ("PostgreSQL", bench_url.render_as_string(hide_password=False), pg_admin)
            )
        for name, url, admin_url in targets:
            admin = None
            if admin_url:
                admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    if args.keep:
                        exists = conn.execute(
                            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                            {"name": args.keep},
                        ).first()
                        if not exists:
                            conn.exec_driver_sql(f'CREATE DATABASE "{args.keep}"')
                    else:
                        conn.exec_driver_sql(
                            'DROP DATABASE IF EXISTS "bridgeline_bench" WITH (FORCE)'
                        )
                        conn.exec_driver_sql('CREATE DATABASE "bridgeline_bench"')
                if args.keep:
                    admin.dispose()
                    admin = None  # kept: never dropped
            try:
                migrate(url)
                if args.live_only:
                    lived = time_live(url, args.live_calls, args.live_runs)
                    _print_live(name, args.live_calls, lived)
                    continue
                engine = make_engine(url)
                started = time.perf_counter()
                counts = _seeded_counts(engine) if args.keep else {}
                if not counts.get("handoffs"):
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
                lived = time_live(url, args.live_calls, args.live_runs)
                _print_live(name, args.live_calls, lived)
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

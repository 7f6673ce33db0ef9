"""Webhook throughput and latency under gunicorn, as ratios to a bare Flask route (the floor).

    .venv/bin/python bench/webhooks.py [--duration 5] [--repeats 3] [--connections 8 32]

Starts two gunicorn servers the way the Procfile does (2 sync workers, access log on), one
serving a bare Flask app that returns a constant TwiML string (the floor) and one serving
Bridgeline on a fresh SQLite database, then loads each from a second process (wrk, on
loopback only) with realistic signed Twilio form posts. Every scenario is checked once before
it is loaded (200 and TwiML). Prints requests/s, p50 and p99 for each scenario at each
connection count, and each as a ratio to the floor's figure measured in the same round.
Runs are interleaved and the median of the repeats is reported; the script stops by itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ivr.security import SIGNATURE_HEADER, compute_signature  # noqa: E402

PUBLIC_BASE = "https://bridgeline.bench.invalid"
AUTH_TOKEN = "bench-auth-token-" + "0" * 16
ACCOUNT_SID = "AC" + "b" * 32
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(L)ss'
"""The Procfile's access log line, so the floor pays the same logging cost."""

FLOOR_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/x" numDigits="1">'
    "<Say>Hello.</Say></Gather></Response>"
)
DESK_STAFF_ID = "4821"
DESK_PIN = "135790"
"""A call-taker the benchmark creates in its database, to sign in at the transfer desk."""

MAX_WAIT_SECONDS = 60
"""How long a server may take to start (its workers to answer) before the benchmark gives up."""


def floor_app():  # type: ignore[no-untyped-def]
    """The floor: a bare Flask route returning a constant TwiML string (gunicorn target)."""
    from flask import Flask, Response

    app = Flask("floor")

    @app.route("/floor", methods=["POST", "GET"])
    def floor() -> Response:
        return Response(FLOOR_TWIML, mimetype="text/xml")

    return app


def twilio_form(call_sid: str, **extra: str) -> dict[str, str]:
    """The fields Twilio posts on a voice webhook (25 of them, as on a real inbound call)."""
    place = {"City": "TUCSON", "Country": "US", "State": "AZ", "Zip": "85701"}
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "in-progress",
        "Called": "+15205550100",
        "Caller": "+15205550123",
        "Direction": "inbound",
        "From": "+15205550123",
        "To": "+15205550100",
    }
    for prefix in ("Called", "Caller", "From", "To"):
        for key, value in place.items():
            form[prefix + key] = value
    form.update(extra)
    return form


@dataclass(frozen=True)
class Request:
    path: str
    body: str
    signature: str | None


@dataclass
class Scenario:
    """A named request stream against one server; `make(i)` builds the i-th request."""

    name: str
    server: str
    make: Callable[[int], Request]
    unique: int = 1
    note: str = ""
    results: dict[int, list[tuple[float, float, float, int]]] = field(default_factory=dict)


def signed(path: str, form: dict[str, str]) -> Request:
    return Request(
        path, urlencode(form), compute_signature(AUTH_TOKEN, PUBLIC_BASE + path, form.items())
    )


def scenarios(rules: set[str], seed: Seed | None = None) -> list[Scenario]:
    """What to load; routes that do not exist yet are reported as skipped."""
    fixed_sid = "CA" + "1" * 32
    found = [
        Scenario(
            "floor: bare Flask, constant TwiML",
            "floor",
            lambda i: Request("/floor", urlencode(twilio_form(fixed_sid)), None),
        ),
        Scenario(
            "self-service greeting",
            "app",
            lambda i: signed("/voice/self-service", twilio_form(fixed_sid, CallStatus="ringing")),
        ),
        Scenario(
            "menu choice (records an event)",
            "app",
            lambda i: signed(
                "/voice/self-service/menu/main/choose?lang=en&attempt=0",
                twilio_form(f"CA{i:032x}", Digits="4"),
            ),
            unique=60_000,
        ),
        Scenario(
            "menu choice by speech (screened, understood)",
            "app",
            lambda i: signed(
                "/voice/self-service/menu/main/choose?lang=en&attempt=0",
                twilio_form(
                    f"CA{i:032x}",
                    SpeechResult="there's a huge pothole on my street, can someone fix it",
                    Confidence="0.91",
                ),
            ),
            unique=60_000,
        ),
    ]
    if "/voice/transfer-desk/pin" in rules:
        found.append(
            Scenario(
                "transfer-desk PIN step",
                "app",
                lambda i: signed(
                    f"/voice/transfer-desk/pin?s={DESK_STAFF_ID}",
                    twilio_form(f"CA{i:032x}", Digits=DESK_PIN, From=f"+1520555{i % 10000:04d}"),
                ),
                unique=60_000,
                note="the right staff ID and PIN from a new call each time (a successful sign-in)",
            )
        )
    else:
        found.append(Scenario("transfer-desk PIN step", "skip", _skipped))
    if "/voice/handoff/conference-status" in rules and seed is not None:
        found.append(
            Scenario(
                "conference callback: caller joins",
                "app",
                lambda i: signed(
                    f"/voice/handoff/conference-status?live={seed.caller_live_id}",
                    conference_form(seed.caller_conference, f"CA{i:032x}", "caller", i),
                ),
                unique=60_000,
                note="participant-join of the caller on a recorded live call, taken in the same way",
            )
        )
        found.append(
            Scenario(
                "conference callback: helper joins",
                "app",
                lambda i: helper_joins(seed, i),
                unique=60_000,
                note=(
                    f"participant-join of the helper, spread over {len(seed.handoffs):,} accepted "
                    "handoffs. The webhook takes it in (one spool write); the web process moves "
                    "what arrived into the conference_inbox table every quarter second and queues "
                    "one apply job; applying it (event, status, the announcement job) is a "
                    "worker's work and not part of this measurement (see bench/workers.py)"
                ),
            )
        )
    else:
        found.append(Scenario("conference callback: caller joins", "skip", _skipped))
        found.append(Scenario("conference callback: helper joins", "skip", _skipped))
    return found


HANDOFFS_SEEDED = 20_000
"""Accepted handoffs the helper-join scenario spreads over: each collects a handful of events
across the whole run, as a real handoff does (~5-10), so re-deriving reads a real history."""


@dataclass(frozen=True)
class Seed:
    """What prepare_database recorded for the conference scenarios."""

    caller_live_id: int
    caller_conference: str
    handoffs: list[tuple[int, str, int]]  # (live call id, conference name, handoff id)


def conference_form(conference: str, call_sid: str, label: str, sequence: int) -> dict[str, str]:
    """Twilio's conference status callback for a participant joining."""
    return {
        **twilio_form(call_sid),
        "ConferenceSid": "CF" + "c" * 32,
        "FriendlyName": conference,
        "StatusCallbackEvent": "participant-join",
        "SequenceNumber": str(sequence),
        "ParticipantLabel": label,
    }


def helper_joins(seed: Seed, i: int) -> Request:
    from ivr.flows.desk import helper_label

    live_id, conference, handoff_id = seed.handoffs[i % len(seed.handoffs)]
    return signed(
        f"/voice/handoff/conference-status?live={live_id}",
        conference_form(conference, f"CA{i:032x}", helper_label(handoff_id, 1), i),
    )


def _skipped(i: int) -> Request:
    return Request("", "", None)


def prepare_database(database_url: str) -> Seed:
    """A call-taker with a desk PIN, a live call, and HANDOFFS_SEEDED accepted handoffs."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from ivr import accounts
    from ivr.flows import handoffs
    from ivr.store.db import make_engine
    from ivr.store.handoff_tables import handoff_events, live_calls
    from ivr.store.handoff_tables import handoffs as handoff_rows

    engine = make_engine(database_url)
    now = datetime.now(UTC)
    try:
        accounts.create_staff(
            engine, staff_id=DESK_STAFF_ID, name="Bench Call-Taker", roles=["call_taker"],
            pin=DESK_PIN,
        )  # fmt: skip
        live = handoffs.open_live_call(
            engine, call_sid="CA" + "e" * 32, origin=handoffs.Origin.DESK,
            callback_number=None, call_taker_staff_id=DESK_STAFF_ID, now=now,
        )  # fmt: skip
        first = live.id + 1
        calls, items, events, seeded = [], [], [], []
        for k in range(HANDOFFS_SEEDED):
            live_id = handoff_id = first + k
            sid = f"CB{k:032x}"
            conference = handoffs.conference_name_for(sid)
            seeded.append((live_id, conference, handoff_id))
            calls.append(
                {"id": live_id, "conference_name": conference, "origin": "desk", "call_sid": sid,
                 "call_taker_staff_id": DESK_STAFF_ID, "status": "with_call_taker",
                 "call_taker_attempt": 0, "created_at": now, "updated_at": now}
            )  # fmt: skip
            items.append(
                {"id": handoff_id, "idempotency_key": f"bench-{k}", "live_call_id": live_id,
                 "origin": "desk", "call_taker_staff_id": DESK_STAFF_ID,
                 "helper_type": "embedded_clinician", "answers": "{}", "chain": '["m1"]',
                 "status": "accepted", "attempt": 1, "member_id": "m1",
                 "helper_call_sid": f"CH{k:032x}", "created_at": now, "updated_at": now,
                 "accepted_at": now}
            )  # fmt: skip
            for n, event in enumerate(("requested", "dialing", "answered", "accepted")):
                events.append(
                    {"handoff_id": handoff_id, "dedupe_key": f"bench-{k}-{event}",
                     "event": event, "source": "bridgeline", "attempt": None if n == 0 else 1,
                     "member_id": "m1", "call_sid": None if n == 0 else f"CH{k:032x}",
                     "occurred_at": now, "received_at": now}
                )  # fmt: skip
        with engine.begin() as conn:
            conn.execute(sa.insert(live_calls), calls)
            conn.execute(sa.insert(handoff_rows), items)
            conn.execute(sa.insert(handoff_events), events)
        check = handoffs.get_handoff(engine, first)
        assert check is not None and check.status is handoffs.HandoffStatus.ACCEPTED, check
    finally:
        engine.dispose()
    return Seed(live.id, live.conference_name, seeded)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def gunicorn(target: str, env: dict[str, str], log: Path, ready_path: str) -> Iterator[str]:
    """A gunicorn started as the Procfile starts it, on loopback; stopped on exit."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "gunicorn"),  # the running environment's own
        "--workers",
        os.environ.get("WEB_CONCURRENCY", "2"),
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "-",
        "--access-logformat",
        ACCESS_LOG_FORMAT,
        target,
    ]
    with log.open("wb") as err:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        try:
            deadline = time.monotonic() + MAX_WAIT_SECONDS
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise SystemExit(f"gunicorn {target} exited; see {log}")
                try:  # a worker answering, not just the master listening
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}{ready_path}", timeout=MAX_WAIT_SECONDS
                    ) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.1)
            else:
                raise SystemExit(f"gunicorn {target} did not start in {MAX_WAIT_SECONDS}s")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def settle(base: str) -> None:
    """Wait until the server answers /healthz promptly again (a slow scenario leaves a backlog
    of accepted requests that would otherwise be measured as part of the next one)."""
    deadline = time.monotonic() + 300
    prompt = 0
    while time.monotonic() < deadline and prompt < 3:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=60):  # noqa: S310
                pass
        except OSError:
            pass
        prompt = prompt + 1 if time.monotonic() - started < 0.05 else 0


def lua_script(scenario: Scenario, start: int, count: int, folder: Path) -> Path:
    """A wrk script cycling through `count` pre-signed requests numbered from `start`.

    The requests live in a data file read at start-up: a script holding them as literals
    would exceed LuaJIT's constants-per-function limit, and wrk then silently sends GET /.
    """
    stem = re.sub(r"[^a-z]+", "-", scenario.name.lower()).strip("-")
    data = folder / f"{stem}.tsv"
    with data.open("w") as out:
        for i in range(count):
            r = scenario.make(start + i)
            out.write(f"{r.path}\t{r.signature or ''}\t{r.body}\n")
    script = folder / f"{stem}.lua"
    script.write_text(
        f"""
local reqs = {{}}
for line in io.lines([==[{data}]==]) do
  local path, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
  local headers = {{["Content-Type"] = "application/x-www-form-urlencoded"}}
  if signature ~= "" then headers["{SIGNATURE_HEADER}"] = signature end
  reqs[#reqs + 1] = wrk.format("POST", path, headers, body)
end
local n = #reqs
local i = 0
function request() i = i % n + 1; return reqs[i] end
"""
    )
    return script


def check(base: str, request: Request) -> None:
    """The request must get 200 and TwiML before it is worth loading."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if request.signature:
        headers[SIGNATURE_HEADER] = request.signature
    req = urllib.request.Request(  # noqa: S310 (http on loopback)
        base + request.path, data=request.body.encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310 (loopback)
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{request.path} answered {exc.code}; not benchmarking it") from exc
    if status != 200 or b"<Response" not in body:
        raise SystemExit(f"{request.path} answered {status} without TwiML")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(
    base: str, script: Path, connections: int, seconds: int
) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, non-2xx responses) of one wrk run."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            base + "/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"    wrk: {errors.group(0)}", flush=True)
    return rps, p50, p99, int(bad.group(1)) if bad else 0


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median kept)")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    )
    parser.add_argument("--only", default="", help="run only scenarios whose name contains this")
    args = parser.parse_args()
    # A stop signal unwinds normally, so both gunicorn servers are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2

    from ivr import create_app
    from ivr.store.db import migrate

    folder = Path(tempfile.mkdtemp(prefix="bridgeline-bench-"))
    database_url = f"sqlite:///{folder}/bench.sqlite3"
    migrate(database_url)
    env = {
        **os.environ,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE,
        "DATABASE_URL": database_url,
        "REDIS_URL": args.redis_url,
        "BRIDGELINE_CONFIG": str(REPO / "config"),
        "BRIDGELINE_QUEUE_PREFIX": "bench",
        "BRIDGELINE_SPOOL_DIR": str(folder / "spool"),
    }
    rules = {r.rule for r in create_app(env).url_map.iter_rules()}
    seed = prepare_database(database_url)
    plan = [s for s in scenarios(rules, seed) if args.only in s.name or s.server == "floor"]
    # Requests that write (a menu choice) carry a new CallSid each, as real traffic does; a
    # run can use at most this many before it starts repeating (a Twilio retry, one effect).
    per_run = 7000 * args.duration
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"# gunicorn --workers {env.get('WEB_CONCURRENCY', '2')} (sync), wrk -t1 on loopback, "
        f"{args.duration}s per run, median of {args.repeats} interleaved rounds",
        flush=True,
    )
    with (
        gunicorn("bench.webhooks:floor_app()", env, folder / "floor.log", "/floor") as floor_base,
        gunicorn("ivr:create_app()", env, folder / "app.log", "/healthz") as app_base,
    ):
        bases = {"floor": floor_base, "app": app_base}
        for s in plan:
            if s.server == "skip":
                print(f"# skipped: {s.name} (route not built yet)")
                continue
            for i in range(3):
                check(bases[s.server], s.make(10_000_000 + i))
        run_number = 0
        for s in plan:  # warm-up: every worker process has built its caches, not measured
            if s.server != "skip":
                run_number += 1
                script = lua_script(s, run_number * per_run, min(s.unique, 2000), folder)
                run_wrk(bases[s.server], script, max(args.connections), 1)
                settle(bases["app"])
        for round_ in range(args.repeats):
            for connections in args.connections:
                for s in plan:
                    if s.server == "skip":
                        continue
                    run_number += 1
                    count = min(s.unique, per_run)
                    script = lua_script(s, run_number * per_run, count, folder)
                    result = run_wrk(bases[s.server], script, connections, args.duration)
                    settle(bases["app"])
                    s.results.setdefault(connections, []).append(result)
                    print(
                        f"  round {round_ + 1} c={connections:<3} {s.name:<34} "
                        f"{result[0]:8.0f} req/s  p50 {result[1]:6.2f} ms  p99 {result[2]:6.2f} ms"
                        + (f"  NON-2XX {result[3]}" if result[3] else ""),
                        flush=True,
                    )
    report(plan, args.connections)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def report(plan: list[Scenario], connections: list[int]) -> None:
    floor = plan[0]
    print()
    print(
        "| scenario | conns | req/s | p50 ms | p99 ms | req/s ÷ floor | p99 ÷ floor p99 | target |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for s in plan:
        if not s.results:
            print(f"| {s.name} | – | skipped: route not built yet | | | | | |")
            continue
        for c in connections:
            runs = s.results[c]
            rps = statistics.median(r[0] for r in runs)
            p50 = statistics.median(r[1] for r in runs)
            p99 = statistics.median(r[2] for r in runs)
            # Ratios are taken round by round against the floor of the same round, then the median.
            ratio = statistics.median(
                r[0] / f[0] for r, f in zip(runs, floor.results[c], strict=True)
            )
            p99_ratio = statistics.median(
                r[2] / f[2] for r, f in zip(runs, floor.results[c], strict=True)
            )
            ok = ratio >= 0.5 and (c != 32 or p99_ratio <= 3.0)
            verdict = "floor" if s is floor else ("met" if ok else "MISSED")
            bad = sum(r[3] for r in runs)
            extra = f" ({bad} non-2xx!)" if bad else ""
            print(
                f"| {s.name}{extra} | {c} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | "
                f"{ratio:.2f} | {p99_ratio:.2f} | {verdict} |"
            )
    for s in plan:
        if s.note:
            print(f"\n{s.name}: {s.note}")


if __name__ == "__main__":
    raise SystemExit(main())

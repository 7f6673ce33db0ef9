"""Bridgeline as production runs it, started by a test: the Procfile's web and worker commands
as real processes on loopback, a config in which everyone is on duty and callbacks may be
placed whatever the time of day, and a signed HTTP client that plays Twilio.

The commands are read from the Procfile (so a change there is what the test runs); only the
bind address is moved to 127.0.0.1 and a free port.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import requests
import yaml
from rq import Worker

from ivr.security import SIGNATURE_HEADER, compute_signature

REPO = Path(__file__).resolve().parent.parent

START_SECONDS = 60
"""How long a process may take to answer (gunicorn) or register with Redis (an RQ worker).
Gunicorn's master trains the learned reader before it answers (about 6 s on this 2-core
machine when idle); the margin is for a loaded machine, not for a slower service."""


def next_to_python(program: str) -> str:
    """`.venv/bin/gunicorn` -> the gunicorn installed beside the Python running the tests, so the
    suite runs from any virtual environment (a CI venv, tox, a system install)."""
    if program.startswith(".venv/bin/"):
        return str(Path(sys.executable).parent / program.removeprefix(".venv/bin/"))
    return program


def procfile_command(kind: str, env: Mapping[str, str]) -> list[str]:
    """The Procfile's command for `kind` (web, worker, clock), ${VAR:-default} expanded."""
    for line in (REPO / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() == kind:
            expanded = re.sub(
                r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1]) or m[2], command.strip()
            )
            argv = shlex.split(expanded.replace("0.0.0.0:", "127.0.0.1:"))
            return [next_to_python(argv[0]), *argv[1:]]
    raise LookupError(f"Procfile has no {kind!r} process")


def always_open_config(folder: Path, now: datetime | None = None) -> Path:
    """A copy of config/ where every roster member is always on duty and callbacks may be
    placed now: quiet hours are read in a zone where it is about noon, the Twilio call rate is
    the highest the file allows. Everything else (menus, tree, lines) is the real config."""
    shutil.copytree(REPO / "config", folder)
    roster_file = folder / "roster.yaml"
    roster = yaml.safe_load(roster_file.read_text())
    for helper_type in roster["helper_types"].values():
        for member in helper_type["members"]:
            member["shifts"] = "always"
    roster_file.write_text(yaml.safe_dump(roster, sort_keys=False))
    hour = (now or datetime.now(UTC)).hour
    offset = 12 - hour  # local = UTC + offset; Etc/GMT zones have the sign reversed
    callbacks_file = folder / "callbacks.yaml"
    rules = yaml.safe_load(callbacks_file.read_text())
    rules["timezone"] = f"Etc/GMT{-offset:+d}"
    rules["calls_per_second"] = 30
    callbacks_file.write_text(yaml.safe_dump(rules, sort_keys=False))
    return folder


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A port the kernel hands out for `bind(0)` sits in the ephemeral range, where any outbound
    connection made before the server binds it (a worker reaching Redis, the local Twilio
    calling the app) may take it first: CI once saw gunicorn fail with "Address already in
    use" that way. Ports below the range are only ever taken on purpose."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii")
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


@dataclass
class Processes:
    """Started processes (each its own process group) and their log files."""

    running: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(
        self, command: list[str], env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=REPO, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.running.append((process, log))
        return process

    def check_alive(self) -> None:
        for process, log in self.running:
            if process.poll() is not None:
                raise AssertionError(f"{process.args!r} exited:\n{tail(log)}")

    def stop(self) -> None:
        """SIGTERM each group (a worker finishes its job), then SIGKILL what is left."""
        for process, _ in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process, _ in self.running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group: RQ's scheduler child too
            except ProcessLookupError:
                pass
            process.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {p.args!r}\n{tail(log)}" for p, log in self.running)


def tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Service:
    """Two web processes behind one gunicorn port and N RQ workers, started from the Procfile."""

    base: str
    """http://127.0.0.1:PORT of gunicorn."""
    processes: Processes
    public_base: str
    auth_token: str
    session: requests.Session = field(default_factory=requests.Session)

    def post(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        token: str | None = None,
        session: requests.Session | None = None,
    ) -> requests.Response:
        """POST `data` to `path` as Twilio would: signed against PUBLIC_BASE_URL."""
        headers = {SIGNATURE_HEADER: compute_signature(
            self.auth_token, self.public_base + path, list(data.items())
        )}  # fmt: skip
        if token:
            headers["I-Twilio-Idempotency-Token"] = token
        return (session or self.session).post(
            self.base + path, data=dict(data), headers=headers, timeout=30
        )


@contextmanager
def running_service(
    env: Mapping[str, str], logs: Path, workers: int = 2, also: tuple[str, ...] = ()
) -> Iterator[Service]:
    """Start `web` (gunicorn, WEB_CONCURRENCY processes) and `workers` x `worker`, and the
    Procfile's processes named in `also` (e.g. the local Twilio); stop them all on exit."""
    port = free_port()
    full_env = {**os.environ, **env, "PORT": str(port), "WEB_CONCURRENCY": "2"}
    full_env.setdefault("LOCAL_TWILIO_APP_URL", f"http://127.0.0.1:{port}")
    full_env.pop("FLASK_DEBUG", None)
    processes = Processes()
    try:
        for kind in also:
            processes.start(procfile_command(kind, full_env), full_env, logs / f"{kind}.log")
        processes.start(procfile_command("web", full_env), full_env, logs / "web.log")
        for n in range(workers):
            processes.start(procfile_command("worker", full_env), full_env, logs / f"worker{n}.log")
        base = f"http://127.0.0.1:{port}"
        connection = redis.Redis.from_url(env["REDIS_URL"])
        deadline = time.monotonic() + START_SECONDS
        web_up = False
        while True:
            processes.check_alive()
            if not web_up:
                try:
                    with urllib.request.urlopen(f"{base}/readyz", timeout=5) as answer:  # noqa: S310
                        web_up = answer.status == 200
                except OSError:
                    pass
            if web_up and Worker.count(connection=connection) >= workers:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"service did not start in {START_SECONDS}s\n{processes.logs()}"
                )
            time.sleep(0.1)
        connection.close()
        yield Service(
            base=base,
            processes=processes,
            public_base=env["PUBLIC_BASE_URL"],
            auth_token=env["TWILIO_AUTH_TOKEN"],
        )
    finally:
        processes.stop()


def wait_for(what: str, check: Any, service: Service, timeout: float = 20.0) -> Any:
    """Poll `check()` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        service.processes.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{service.processes.logs()}")
        time.sleep(0.05)

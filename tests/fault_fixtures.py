"""Real faults for tests: a Redis server that can be killed and restarted, a Twilio that hangs.

No sleeps: each helper waits on an event (a line on the server's output, a connection
accepted) with a bound, and fails the test if the bound is reached.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.live_service import free_port

READY_WITHIN_SECONDS = 20
"""How long a helper process may take to get ready before the test fails."""


class RedisServer:
    """A throwaway redis-server on loopback that a test can kill and start again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "notice"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        ready = threading.Event()
        stdout = self.process.stdout
        assert stdout is not None

        def watch() -> None:
            for line in stdout:
                if "Ready to accept connections" in line:
                    ready.set()

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(READY_WITHIN_SECONDS):
            self.kill()
            raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """Stop it the hard way, as a crash or a restart would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=READY_WITHIN_SECONDS)
        self.process = None


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.kill()


class Blackhole:
    """A loopback proxy that accepts a connection and never answers (a Twilio that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.held: list[socket.socket] = []

    def wait_for_connection(self) -> None:
        """Block until someone connects (that is, a job is inside its Twilio request)."""
        self.sock.settimeout(READY_WITHIN_SECONDS)
        conn, _ = self.sock.accept()
        self.held.append(conn)

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


@contextmanager
def blackhole() -> Iterator[Blackhole]:
    hole = Blackhole()
    try:
        yield hole
    finally:
        hole.close()

"""What happened on self-service calls (items chosen, transfers, reports), for the dashboard.

Webhooks do not write these rows one by one. `record_event` appends a JSON line to this
process's spool file (one `write()` to a file opened with O_APPEND: ~10 µs, no lock shared with
other processes) and a background thread moves the spool into SQL in one transaction a second.
Durability is that of the database setup it replaces: a line handed to the kernel survives the
process dying (as a SQLite WAL commit with synchronous=NORMAL does) and a spool left by a dead
process is adopted by the next one. Replaying a spool adds nothing twice: every line carries
its idempotency key and the insert skips keys already present. The database being down only
makes the spool wait. Without a spool (tests, tools) the row is inserted directly.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ivr.store.db import insert_skipping_duplicates
from ivr.store.tables import self_service_events

log = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 1.0
"""How long an event may wait in the spool before it is in SQL (the dashboard's lag)."""

BATCH_ROWS = 2000
"""Rows per INSERT statement when a spool is flushed."""

_INSERT = self_service_events.insert()


def _insert_ignoring_duplicates(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert rows, skipping idempotency keys already present (a replay or a Twilio retry)."""
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        stmt = insert_skipping_duplicates(name, self_service_events, unique=["idempotency_key"])
        for start in range(0, len(rows), BATCH_ROWS):
            conn.execute(stmt, rows[start : start + BATCH_ROWS])
        return
    for row in rows:  # pragma: no cover - other databases
        with conn.begin_nested():
            try:
                conn.execute(_INSERT, row)
            except sa.exc.IntegrityError:
                pass


Sink = Callable[[sa.Engine, list[dict[str, Any]]], None]
"""What a spool does with the rows of one spool file; raising leaves the file for next time."""


def _insert_self_service_events(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        _insert_ignoring_duplicates(conn, rows)


class EventSpool:
    """An append-only file per process, drained by a background thread (into SQL by default).

    `prefix` names the files (one spool per prefix and folder); `sink` receives the rows of
    one file at a time; `tick`, if given, runs on the spool's thread after each flush (whether
    or not it moved anything). Rows are JSON objects with an "at" datetime.
    """

    def __init__(
        self,
        engine: sa.Engine,
        folder: Path,
        interval: float = FLUSH_INTERVAL_SECONDS,
        *,
        prefix: str = "events",
        sink: Sink | None = None,
        tick: Callable[[], None] | None = None,
    ):
        if not prefix.isalpha():
            raise ValueError("a spool prefix is letters only (it names the spool's files)")
        self.engine = engine
        self.folder = folder
        self.interval = interval
        self.prefix = prefix
        self.sink: Sink = sink or _insert_self_service_events
        self.tick = tick
        self._lock = threading.Lock()
        self._pid = -1
        self._fd = -1
        self._stem = ""
        self._seq = 0
        self._pending = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ writing

    def _open(self) -> None:
        """(Re)open this process's file; also after a fork, so a child never shares a parent's."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pid = os.getpid()
        self._stem = f"{self.prefix}-{self._pid}-{secrets.token_hex(4)}"
        _live_stems.add(self._stem)
        self._fd = os.open(
            self.folder / f"{self._stem}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        self._seq = 0
        self._pending = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{self.prefix}-spool", daemon=True)
        self._thread.start()

    def append(self, row: dict[str, Any]) -> None:
        """Hand one row to the kernel; raises OSError when the spool cannot be written."""
        line = (json.dumps(row, default=_iso, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self._pid != os.getpid():
                self._open()
            os.write(self._fd, line)
            self._pending += 1

    # ------------------------------------------------------------------ draining

    def _rotate(self) -> None:
        """Move what was written so far aside (to be flushed) and start a new file."""
        with self._lock:
            if self._pid != os.getpid() or self._pending == 0:
                return
            self._seq += 1
            current = self.folder / f"{self._stem}.jsonl"
            os.rename(current, self.folder / f"{self._stem}.{self._seq:06d}.flushing")
            os.close(self._fd)
            self._fd = os.open(current, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._pending = 0

    def _adopt_orphans(self) -> None:
        """Claim spool files of processes that are gone (crashed or stopped before a flush)."""
        for path in self.folder.glob(f"{self.prefix}-*"):
            try:
                pid = int(path.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid == os.getpid():
                # Ours, or left by an earlier process that had our PID (containers reuse low
                # PIDs after a restart): adopt it unless a spool of this process writes it.
                if path.name.split(".")[0] in _live_stems:
                    continue
            elif _alive(pid):
                continue
            self._seq += 1
            try:  # rename is atomic: of two processes adopting the same file, one wins
                os.rename(path, self.folder / f"{self._stem}.{self._seq:06d}.flushing")
            except FileNotFoundError:
                continue

    def flush(self) -> int:
        """Move every spooled row of this process into SQL; returns rows handled."""
        if self._pid != os.getpid():
            return 0
        self._rotate()
        self._adopt_orphans()
        handled = 0
        for path in sorted(self.folder.glob(f"{self._stem}.*.flushing")):
            rows = list(_read(path))
            if rows:
                self.sink(self.engine, rows)
            path.unlink()
            handled += len(rows)
        return handled

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:  # the database may be down: the spool waits, nothing lost
                log.warning(
                    "%s spool not flushed, will retry: error=%s", self.prefix, type(exc).__name__
                )
            if self.tick is not None:
                try:
                    self.tick()
                except Exception as exc:  # Redis may be down: the tick tries again next time
                    log.warning("%s spool tick failed: error=%s", self.prefix, type(exc).__name__)

    def close(self) -> None:
        """Stop the thread and flush what is left (at exit, or when a test is done)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception as exc:
            log.warning("event spool left for the next process: error=%s", type(exc).__name__)
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
            self._fd = -1
            current = self.folder / f"{self._stem}.jsonl"
            with contextlib.suppress(OSError):
                if current.stat().st_size == 0:
                    current.unlink()  # nothing left to replay: leave no empty file behind
            _live_stems.discard(self._stem)  # what is left is an orphan now, to be adopted


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _read(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        try:
            row = json.loads(line)
            row["at"] = datetime.fromisoformat(row["at"])  # every spooled row carries its time
        except (ValueError, KeyError, TypeError):
            log.error("event spool: unreadable line skipped: file=%s line=%s", path.name, number)
            continue
        rows.append(row)
    return rows


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_spools: dict[int, EventSpool] = {}

_live_stems: set[str] = set()
"""File stems of the spools this process has opened (never adopted as orphans by itself)."""


def use_spool(engine: sa.Engine, folder: Path) -> EventSpool:
    """From now on, events recorded with `engine` go through a spool in `folder`."""
    spool = EventSpool(engine, folder)
    _spools[id(engine)] = spool
    atexit.register(spool.close)
    return spool


def stop_spool(engine: sa.Engine) -> None:
    """Flush and remove the spool of `engine` (events are inserted directly again)."""
    spool = _spools.pop(id(engine), None)
    if spool is not None:
        spool.close()
        atexit.unregister(spool.close)


def spool_of(engine: sa.Engine) -> EventSpool | None:
    return _spools.get(id(engine))


def record_event(
    engine: sa.Engine,
    *,
    call_sid: str,
    event: str,
    detail: str | None,
    language: str | None,
    key: str | None = None,
) -> None:
    """Append one event; a webhook retried by Twilio (same key) adds nothing."""
    row = {
        "idempotency_key": key or f"{call_sid}:{event}:{detail}",
        "call_sid": call_sid,
        "event": event,
        "detail": detail,
        "language": language,
        "at": datetime.now(UTC),
    }
    spool = _spools.get(id(engine))
    if spool is not None:
        try:
            spool.append(row)
            return
        except OSError as exc:  # disk full or folder gone: write the row directly instead
            log.warning("event spool unwritable, inserting directly: error=%s", type(exc).__name__)
    with engine.begin() as conn:
        _insert_ignoring_duplicates(conn, [row])


def record_event_now(
    engine: sa.Engine, *, call_sid: str, event: str, detail: str | None, language: str | None
) -> None:
    """Append one event straight to SQL (not the spool): for an event read back in this call."""
    row = {
        "idempotency_key": f"{call_sid}:{event}:{detail}"[:160],
        "call_sid": call_sid,
        "event": event,
        "detail": detail,
        "language": language,
        "at": datetime.now(UTC),
    }
    with engine.begin() as conn:
        _insert_ignoring_duplicates(conn, [row])


def events_for_call(engine: sa.Engine, call_sid: str) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(self_service_events.c.event, self_service_events.c.detail)
            .where(self_service_events.c.call_sid == call_sid)
            .order_by(self_service_events.c.id)
        ).all()
    return [(r[0], r[1]) for r in rows]


def init_app(app: Any, engine: sa.Engine, folder: str) -> None:
    """Spool events in `folder` (BRIDGELINE_SPOOL_DIR, default instance/spool); not when testing
    or when it is 'off'."""
    folder = folder.strip() or "instance/spool"
    if app.testing or folder == "off":
        return
    use_spool(engine, Path(folder))

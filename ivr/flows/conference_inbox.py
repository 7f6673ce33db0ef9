"""Conference and helper-call status callbacks: taken in with one write, applied by a worker.

Twilio posts a conference status callback for every participant that joins or leaves and for
the conference's start and end: several per handoff, at the busiest moments. Applying one
(the live call read, a handoff event appended, the status re-derived, perhaps a job queued)
costs about three times a whole self-service webhook, and Twilio ignores the answer anyway.
So the webhook only takes the callback in:

1. the route appends the callback to this process's spool (`ivr.store.events.EventSpool`, one
   `write()` to an O_APPEND file, durable as a SQLite WAL commit with synchronous=NORMAL);
2. the spool's thread moves what arrived into the `conference_inbox` table every quarter of a
   second (one transaction, duplicates skipped on Twilio's token or the event's identity) and,
   once those rows have settled (SETTLE_SECONDS), queues one apply job;
3. a worker claims settled inbox rows in the order they arrived, applies each through
   `TransferDesk.conference_event` (which deduplicates again, in the handoff log) and marks
   it applied (kept a day, so a late retry is still a duplicate). Two workers never apply the
   same row, nor two rows of one call at once or out of order; a claim left by a killed
   worker is retaken.

The helper's own call-status callbacks (ringing, answered, completed, no-answer...) come
through the same inbox, keyed on the same live call, so that every callback about one call is
applied in the order it arrived: a helper's "completed" can never be applied ahead of their
conference join still waiting here (read alone, "accepted, then left" means "dial the next
helper", and a second phone would ring for a call that is over).

Several web processes each keep a spool. A row is applied only once it has been in the table
for SETTLE_SECONDS, longer than any spool waits between flushes: by then every callback another
process took in before it is in the table too, and is applied first. Without this, a helper's
"left" taken in by one process was applied while the caller's "left", taken in a moment
earlier by the other, still waited in its spool, and the next helper's phone rang for a call
that was over. A later row of a call also waits behind an earlier one that has not settled.

The database being down only makes the spool wait; Redis being down only delays the apply job
(the next callback, or the handoff sweep, queues it again). Without a spool (tests, tools) the
callback is applied during the request, as before.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rq.timeouts import JobTimeoutException

from ivr.queueing import Queues
from ivr.store.db import insert_skipping_duplicates
from ivr.store.events import EventSpool
from ivr.store.handoff_tables import conference_inbox as inbox
from workers import jobs

log = logging.getLogger(__name__)

FIELDS = (
    "StatusCallbackEvent",
    "FriendlyName",
    "ConferenceSid",
    "ParticipantLabel",
    "CallSid",
    "SequenceNumber",
    "Timestamp",
    "CallStatus",
)
"""The fields of Twilio's callback that applying it reads (no phone numbers among them)."""

HELPER_CALL = ("Handoff", "Attempt")
"""Fields Bridgeline adds (from its own status callback URL) to a helper call's status
callback: which handoff and attempt the call belongs to. A row without them is a conference
callback."""

FLUSH_INTERVAL_SECONDS = 0.25
"""How long a callback may wait in a web process's spool before it is in the inbox table."""

SETTLE_SECONDS = 1.0
"""How long a callback stays in the inbox table before a worker may apply it: four spool flush
intervals, so that the callbacks every other web process took in before it (flushed within one
interval, a slow flush within a few) are in the table and applied first. It also absorbs
Twilio's own callbacks reaching the web a moment out of order. Costs a second before the desk
and the handoff hear of a join or a leave; nothing a caller hears waits on it."""

APPLY_QUEUE = "urgent"
APPLY_JOB = jobs.APPLY_CONFERENCE_INBOX

CLAIM_BATCH = 200
"""Rows one claim takes; an apply job claims again until the inbox is empty."""

CLAIM_EXPIRES = timedelta(minutes=2)
"""A claim this old belongs to a worker that died mid-batch: the rows are taken again."""

MAX_ATTEMPTS = 5
"""A row that failed this often is left in the table (and logged) instead of retried forever."""

APPLY_BUDGET_SECONDS = 60.0
"""How long one apply job goes on claiming (RQ stops a job at 180 s); the next one goes on."""

KEEP_APPLIED = timedelta(days=1)
"""How long an applied callback is kept, so that a late Twilio retry is still a duplicate."""

Apply = Callable[[int, Mapping[str, str], str | None, datetime], None]
"""Apply one callback: live call id, its fields, Twilio's idempotency token, when received."""


def callback_row(
    live_call_id: int,
    form: Mapping[str, str],
    token: str | None,
    now: datetime,
    helper_call: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """What is kept of one callback, with the key that makes a retried callback a duplicate.

    `helper_call`: (handoff, attempt) when this is the status callback of a helper's call.
    """
    fields = {name: (form.get(name) or "")[:200] for name in FIELDS if form.get(name)}
    names = ["ConferenceSid", "CallSid", "ParticipantLabel", "StatusCallbackEvent"]
    if helper_call is not None:
        fields.update(zip(HELPER_CALL, (str(n) for n in helper_call), strict=True))
        names.append("CallStatus")  # one call's ringing and answered may share a second
    else:
        fields.pop("CallStatus", None)
    identity = ":".join(fields.get(name, "") for name in names)
    when = fields.get("SequenceNumber") or fields.get("Timestamp") or now.isoformat()
    key = f"t:{token}" if token else f"{live_call_id}:{identity}:{when}"
    return {
        "dedupe_key": key[:200],
        "live_call_id": live_call_id,
        "form": fields,
        "token": token[:128] if token else None,
        "at": now,
    }


class ConferenceInbox:
    """Takes conference callbacks in (spooled, or applied at once when there is no spool)."""

    def __init__(
        self,
        engine: sa.Engine,
        queues: Queues,
        apply: Apply,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.queues = queues
        self.apply = apply
        self.clock = clock  # the desk's: the time a callback counts as received
        self.spool: EventSpool | None = None
        self._wakes: deque[datetime] = deque()  # when the rows flushed so far settle
        self._wakes_lock = threading.Lock()

    def use_spool(self, folder: Path) -> EventSpool:
        """From now on callbacks are spooled in `folder` and applied by a worker."""
        self.spool = EventSpool(
            self.engine,
            folder,
            FLUSH_INTERVAL_SECONDS,
            prefix="conference",
            sink=self._to_inbox,
            tick=self._wake_when_settled,
        )
        return self.spool

    def close(self) -> None:
        """At exit: flush the spool, then wake a worker once what it flushed has settled."""
        if self.spool is not None:
            self.spool.close()
        with self._wakes_lock:
            last = self._wakes[-1] if self._wakes else None
            self._wakes.clear()
        if last is not None:
            wait = (last - self.clock()).total_seconds()
            time.sleep(max(0.0, min(SETTLE_SECONDS, wait)))
            wake_worker(self.queues)

    def receive(
        self,
        live_call_id: int,
        form: Mapping[str, str],
        token: str | None,
        helper_call: tuple[int, int] | None = None,
    ) -> None:
        """Keep one callback (a conference's, or with `helper_call` = (handoff, attempt) a
        helper call's status); applied within about a second (at once without a spool)."""
        if live_call_id <= 0:
            return  # not one of ours: nothing to apply it to
        row = callback_row(live_call_id, form, token, self.clock(), helper_call)
        if self.spool is not None:
            try:
                self.spool.append(row)
                return
            except OSError as exc:  # disk full or folder gone: apply it now instead
                log.warning(
                    "conference spool unwritable, applying now: error=%s", type(exc).__name__
                )
        self.apply(live_call_id, row["form"], row["token"], row["at"])

    def _to_inbox(self, engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
        """Spool sink: the rows into the inbox table (duplicates skipped); a worker is woken
        when they have settled (`_wake_when_settled`)."""
        inboxed = self.clock()
        with engine.begin() as conn:
            add_to_inbox(conn, rows, inboxed)
        with self._wakes_lock:
            self._wakes.append(inboxed + timedelta(seconds=SETTLE_SECONDS))

    def _wake_when_settled(self) -> None:
        """Spool tick: queue an apply job once rows flushed earlier have settled."""
        now = self.clock()
        with self._wakes_lock:
            due = bool(self._wakes) and self._wakes[0] <= now
            while self._wakes and self._wakes[0] <= now:
                self._wakes.popleft()
        if due:
            wake_worker(self.queues)  # Redis down: the next callback, or the sweep, wakes one


def add_to_inbox(conn: sa.Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Insert callbacks into the inbox at `now`, skipping any whose key is already there."""
    conn.execute(
        insert_skipping_duplicates(conn.dialect.name, inbox, unique=["dedupe_key"]),
        [
            {
                "dedupe_key": row["dedupe_key"],
                "live_call_id": row["live_call_id"],
                "form": json.dumps(row["form"], separators=(",", ":")),
                "token": row["token"],
                "received_at": row["at"],
                "inboxed_at": now,
                "attempts": 0,
            }
            for row in rows
        ],
    )


def wake_worker(queues: Queues) -> bool:
    """Queue an apply job; False when Redis is down (the next callback or the sweep retries)."""
    return queues.enqueue(APPLY_QUEUE, APPLY_JOB, retry_intervals=jobs.INBOX_RETRY)


def _claimable(table: Any, now: datetime, settled_at: datetime) -> sa.ColumnElement[bool]:
    """Not applied, not held by a live claim, not given up on, and settled: in the table
    since `settled_at` or before (rows from before migration 0020 have no time: settled)."""
    return sa.and_(
        table.c.applied_at.is_(None),
        sa.or_(table.c.inboxed_at.is_(None), table.c.inboxed_at <= settled_at),
        sa.or_(table.c.claimed_at.is_(None), table.c.claimed_at < now - CLAIM_EXPIRES),
        table.c.attempts < MAX_ATTEMPTS,
    )


def _waits_behind_an_earlier_one(now: datetime, settled_at: datetime) -> sa.ColumnElement[bool]:
    """An earlier callback of the same call is held by a worker, waiting out a failure, or not
    settled yet: this one must wait too (the live call's own state depends on the order)."""
    earlier = inbox.alias("earlier")
    return sa.exists().where(
        earlier.c.live_call_id == inbox.c.live_call_id,
        sa.or_(
            earlier.c.received_at < inbox.c.received_at,
            sa.and_(earlier.c.received_at == inbox.c.received_at, earlier.c.id < inbox.c.id),
        ),
        earlier.c.applied_at.is_(None),
        earlier.c.attempts < MAX_ATTEMPTS,
        sa.not_(_claimable(earlier, now, settled_at)),
    )


_CLAIMS_LOCK = 0x626C_696E  # "blin": PostgreSQL advisory lock that serialises claims
IN_ORDER = (inbox.c.received_at, inbox.c.id)


def settled_at(now: datetime) -> datetime:
    """Rows in the inbox since this moment or before have settled (SETTLE_SECONDS)."""
    return now - timedelta(seconds=SETTLE_SECONDS)


def claim(
    engine: sa.Engine,
    holder: str,
    now: datetime,
    limit: int = CLAIM_BATCH,
    settled: datetime | None = None,
) -> list[Any]:
    """Take up to `limit` settled callbacks for `holder`, in the order they were received,
    never one whose call has an earlier callback held elsewhere or not settled; returns them
    in order. `settled`: rows inboxed by then count as settled (default: `settled_at(now)`)."""
    since = settled if settled is not None else settled_at(now)
    oldest = (
        sa.select(inbox.c.id)
        .where(_claimable(inbox, now, since))
        .where(sa.not_(_waits_behind_an_earlier_one(now, since)))
        .order_by(*IN_ORDER)
        .limit(limit)
    )
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # One claim at a time, each seeing the last one's rows (SQLite: the write lock).
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIMS_LOCK)))
        conn.execute(
            inbox.update()
            .where(inbox.c.id.in_(oldest.scalar_subquery()))
            .values(claimed_by=holder, claimed_at=now)
        )
        return list(
            conn.execute(
                sa.select(inbox)
                .where(inbox.c.claimed_by == holder)
                .where(inbox.c.applied_at.is_(None))
                .order_by(*IN_ORDER)
            ).all()
        )


def apply_pending(
    engine: sa.Engine,
    apply: Apply,
    now: Callable[[], datetime],
    budget_seconds: float = APPLY_BUDGET_SECONDS,
    settled: datetime | None = None,
) -> int:
    """Apply settled callbacks, oldest first and in order per call, for up to
    `budget_seconds` (the rest: the next job or the sweep); returns how many were applied.
    `settled`: rows inboxed by then count as settled (default: SETTLE_SECONDS before now).

    A callback that fails gets one more attempt counted and waits out CLAIM_EXPIRES (a later
    job, or the handoff sweep, tries it again), up to MAX_ATTEMPTS; the later callbacks of its
    call wait behind it, the other calls go on.
    """
    holder = f"{os.getpid()}-{secrets.token_hex(6)}"
    applied = 0
    started = time.monotonic()
    while time.monotonic() - started < budget_seconds:
        rows = claim(engine, holder, now(), settled=settled)
        if not rows:
            break
        stalled: set[int] = set()
        for row in rows:
            if row.live_call_id in stalled:
                _release(engine, row.id)  # waits behind its call's failed callback
                continue
            received = row.received_at
            if received.tzinfo is None:
                received = received.replace(tzinfo=UTC)
            try:
                apply(row.live_call_id, json.loads(row.form), row.token, received)
            except JobTimeoutException:
                raise
            except Exception as exc:
                stalled.add(row.live_call_id)
                _release_failed(engine, row.id, row.attempts + 1, exc, now())
                continue
            with engine.begin() as conn:
                conn.execute(inbox.update().where(inbox.c.id == row.id).values(applied_at=now()))
            applied += 1
    _forget_applied(engine, now() - KEEP_APPLIED)
    return applied


def _release(engine: sa.Engine, row_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            inbox.update().where(inbox.c.id == row_id).values(claimed_by=None, claimed_at=None)
        )


def _forget_applied(engine: sa.Engine, before: datetime) -> None:
    """Applied callbacks older than KEEP_APPLIED: a Twilio retry that late is not expected."""
    with engine.begin() as conn:
        conn.execute(
            inbox.delete().where(inbox.c.applied_at.is_not(None)).where(inbox.c.applied_at < before)
        )


def _release_failed(
    engine: sa.Engine, row_id: int, attempts: int, exc: Exception, now: datetime
) -> None:
    level = logging.ERROR if attempts >= MAX_ATTEMPTS else logging.WARNING
    log.log(
        level,
        "conference callback not applied: inbox_id=%s attempt=%s error=%s",
        row_id,
        attempts,
        type(exc).__name__,
    )
    with engine.begin() as conn:
        conn.execute(
            inbox.update()
            .where(inbox.c.id == row_id)
            .values(claimed_by=None, claimed_at=now, attempts=attempts)  # retaken when expired
        )


def pending(engine: sa.Engine, live_call_id: int | None = None) -> int:
    """Callbacks received and not applied yet (for the sweep and /metrics), or of one call
    (a fallback dial waits for them: they may say the helper did join)."""
    query = sa.select(sa.func.count()).select_from(inbox).where(inbox.c.applied_at.is_(None))
    if live_call_id is not None:
        query = query.where(inbox.c.live_call_id == live_call_id).where(
            inbox.c.attempts < MAX_ATTEMPTS
        )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())



def wait_to_settle(
    engine: sa.Engine,
    live_call_id: int,
    sleep: Callable[[float], None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> datetime:
    """Before acting on one call's state (a fallback dial): wait until the callbacks of the
    call already in the inbox have settled (at most SETTLE_SECONDS), so that the other web
    processes' earlier ones are in too; returns the `settled` to apply them with."""
    settled = settled_at(clock())
    latest = last_inboxed(engine, live_call_id)
    if latest is None or latest <= settled:
        return settled
    sleep(min((latest - settled).total_seconds(), SETTLE_SECONDS))
    return max(latest, settled_at(clock()))


def last_inboxed(engine: sa.Engine, live_call_id: int) -> datetime | None:
    """When the latest callback of a call still waiting in the inbox reached it (None: none
    waits, or none carries the time)."""
    query = (
        sa.select(sa.func.max(inbox.c.inboxed_at))
        .where(inbox.c.applied_at.is_(None))
        .where(inbox.c.live_call_id == live_call_id)
        .where(inbox.c.attempts < MAX_ATTEMPTS)
    )
    with engine.connect() as conn:
        latest = conn.execute(query).scalar_one_or_none()
    if latest is not None and latest.tzinfo is None:
        latest = latest.replace(tzinfo=UTC)
    return latest

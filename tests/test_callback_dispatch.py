"""A callback is placed at its time, not up to two seconds after: the clock's dispatcher hands
each attempt to a worker when it comes due, and RQ's scheduler (whole seconds, once a second)
is only the fallback, which never releases an attempt early. Real Redis, RQ and SQL; the
test's clock; Twilio's REST API mocked with `responses`."""

from __future__ import annotations

from datetime import UTC, timedelta

from rq.registry import ScheduledJobRegistry

from ivr.store import callbacks as store
from ivr.store.callback_records import AttemptStatus
from tests.callback_fixtures import CallbackWorld, clock, local, world
from workers.callbacks import DISPATCH_POLL_SECONDS, Dispatched, dispatch_due, job_id

FIXTURES = (clock, world)
"""Fixtures this module uses from tests/callback_fixtures.py (pytest finds them here)."""


def _queued(world: CallbackWorld) -> list[str]:
    return world.queues.queue("urgent").get_job_ids()


def test_a_callback_due_at_a_fraction_of_a_second_is_handed_out_at_that_moment_once(
    world: CallbackWorld,
) -> None:
    start = local(6, 10, 0)  # Wednesday 10 a.m. in Phoenix: the navigator is on duty
    world.clock.set(start)
    due = start + timedelta(seconds=2, milliseconds=400)
    callback = world.new_callback(due_at=due)
    assert world.sweep()["scheduled"] == 1
    [attempt] = store.attempts_of(world.engine, callback.id)
    assert attempt.scheduled_for == due.astimezone(UTC)
    registry = ScheduledJobRegistry(queue=world.queues.queue("urgent"))
    # RQ's fallback copy is held to the next whole second: never released before it is due.
    assert (
        registry.get_scheduled_time(job_id(attempt)).timestamp()
        == (start + timedelta(seconds=3)).timestamp()
    )

    sent = Dispatched()
    world.clock.set(start + timedelta(seconds=1))
    assert dispatch_due(world.worker_line, sent) == DISPATCH_POLL_SECONDS  # not in sight yet
    world.clock.set(due - timedelta(milliseconds=150))
    assert abs(dispatch_due(world.worker_line, sent) - 0.150) < 0.001  # sleeps to the moment
    assert _queued(world) == []

    world.clock.set(due + timedelta(milliseconds=5))
    dispatch_due(world.worker_line, sent)
    assert _queued(world) == [job_id(attempt)]
    assert registry.get_job_ids() == []  # RQ's copy taken back: it will not run a second time
    dispatch_due(world.worker_line, sent)
    assert _queued(world) == [job_id(attempt)]  # handed out once

    sid = world.expect_call_create()
    world.next_call_slot()
    world.clock.set(start + timedelta(seconds=5))
    assert world.settle() == 1
    assert len(world.create_requests()) == 1
    placed = store.get_attempt(world.engine, attempt.id)
    assert placed is not None and placed.status is AttemptStatus.PLACED and placed.call_sid == sid


def test_without_a_dispatcher_rqs_scheduler_places_it_in_the_next_whole_second(
    world: CallbackWorld,
) -> None:
    start = local(6, 10, 0)
    world.clock.set(start)
    callback = world.new_callback(due_at=start + timedelta(seconds=2, milliseconds=400))
    world.sweep()
    world.clock.set(start + timedelta(seconds=2, milliseconds=100))
    assert world.settle() == 0  # no early run (RQ dropping the fraction released it at :02)
    world.expect_call_create()
    world.next_call_slot()
    world.clock.set(start + timedelta(seconds=3))
    assert world.settle() == 1  # one run, not an early one plus a second
    [attempt] = store.attempts_of(world.engine, callback.id)
    assert attempt.status is AttemptStatus.PLACED
    assert len(world.create_requests()) == 1


def test_a_callback_recorded_due_now_is_placed_without_waiting_for_the_minute_sweep(
    world: CallbackWorld,
) -> None:
    world.clock.set(local(6, 10, 0))
    callback = world.new_callback()  # a resident's request, due now: no attempt yet
    sent = Dispatched()
    dispatch_due(world.worker_line, sent)
    dispatch_due(world.worker_line, sent)  # once
    assert len(world.queues.queue("urgent").get_job_ids()) == 1
    sid = world.expect_call_create()
    world.next_call_slot()
    assert world.settle() == 2  # schedule_callback, then the attempt it queued at once
    [attempt] = store.attempts_of(world.engine, callback.id)
    assert attempt.status is AttemptStatus.PLACED and attempt.call_sid == sid
    assert len(world.create_requests()) == 1

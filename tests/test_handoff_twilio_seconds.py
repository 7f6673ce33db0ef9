"""Twilio stamps its callbacks in whole seconds (RFC 2822); Bridgeline stamps its own events to
the microsecond. A helper who presses 1 at 12.940 s and joins the conference 0.2 s later is
stamped by Twilio at 12 s: before the press. The handoff must still be connected (the local
Twilio found this: the desk never announced the helper)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ivr.decisions.handoffs import EventRecord, EventSource, HandoffEvent, HandoffStatus, derive

T0 = datetime(2026, 11, 30, 22, 30, 12, tzinfo=UTC)


def _event(
    n: int, event: HandoffEvent, source: EventSource, at: datetime, **kw: object
) -> EventRecord:
    return EventRecord(id=n, handoff_id=1, event=event, source=source, occurred_at=at, **kw)  # type: ignore[arg-type]


def test_a_helper_who_joins_in_the_second_they_pressed_1_is_connected() -> None:
    ours, twilio = EventSource.BRIDGELINE, EventSource.TWILIO
    events = [
        _event(1, HandoffEvent.REQUESTED, ours, T0 + timedelta(microseconds=689_000)),
        _event(2, HandoffEvent.DIALING, ours, T0 + timedelta(microseconds=706_000), attempt=1),
        _event(3, HandoffEvent.RINGING, twilio, T0, attempt=1, sequence=1),
        _event(4, HandoffEvent.ANSWERED, twilio, T0, attempt=1, sequence=2),
        _event(
            5,
            HandoffEvent.ACCEPTED,
            EventSource.STAFF,
            T0 + timedelta(microseconds=940_000),
            attempt=1,
        ),
        _event(6, HandoffEvent.HELPER_JOINED, twilio, T0, attempt=1, sequence=3),
    ]
    derived = derive(events)
    assert derived.status is HandoffStatus.CONNECTED
    assert derived.attempt == 1


def test_the_caller_leaving_in_the_same_second_as_the_join_completes_the_handoff() -> None:
    ours, twilio = EventSource.BRIDGELINE, EventSource.TWILIO
    events = [
        _event(1, HandoffEvent.REQUESTED, ours, T0 + timedelta(microseconds=100_000)),
        _event(2, HandoffEvent.DIALING, ours, T0 + timedelta(microseconds=200_000), attempt=1),
        _event(
            3,
            HandoffEvent.ACCEPTED,
            EventSource.STAFF,
            T0 + timedelta(microseconds=900_000),
            attempt=1,
        ),
        _event(4, HandoffEvent.CALLER_LEFT, twilio, T0, sequence=4),
        _event(5, HandoffEvent.HELPER_JOINED, twilio, T0, attempt=1, sequence=3),
    ]
    assert derive(events).status is HandoffStatus.COMPLETED


def test_events_seconds_apart_keep_their_order_whatever_their_kind() -> None:
    ours, twilio = EventSource.BRIDGELINE, EventSource.TWILIO
    events = [
        _event(1, HandoffEvent.REQUESTED, ours, T0),
        _event(2, HandoffEvent.DIALING, ours, T0, attempt=1),
        _event(3, HandoffEvent.CALLER_LEFT, twilio, T0 + timedelta(seconds=2)),
        _event(4, HandoffEvent.HELPER_JOINED, twilio, T0 + timedelta(seconds=5), attempt=1),
    ]
    assert derive(events).status is HandoffStatus.CALLER_DROPPED

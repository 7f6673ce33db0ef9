"""The event spool: menu choices are written to a local file first and reach SQL, once each."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.store import events
from ivr.store.tables import self_service_events


def event_rows(engine: sa.Engine) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        return [
            (r.event, r.detail)
            for r in conn.execute(sa.select(self_service_events).order_by(self_service_events.c.id))
        ]


@pytest.fixture
def spool(engine: sa.Engine, tmp_path: Path):
    spool = events.use_spool(engine, tmp_path / "spool")
    spool.interval = 3600  # the test flushes by hand
    yield spool
    events.stop_spool(engine)


def test_a_menu_choice_is_spooled_then_flushed_into_sql_once(
    signed_post, engine: sa.Engine, spool: events.EventSpool
) -> None:
    for _ in range(2):  # Twilio retries the same webhook
        response = signed_post("/voice/self-service/menu/main/choose?lang=en", {"Digits": "4"})
        assert response.status_code == 200
    assert event_rows(engine) == []  # only in the spool so far
    assert spool.flush() == 2
    assert event_rows(engine) == [("menu_item", "main:4:submenu")]
    assert spool.flush() == 0


def test_the_database_down_at_flush_time_keeps_the_spool_for_later(
    signed_post, engine: sa.Engine, spool: events.EventSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_post("/voice/self-service/menu/main/choose?lang=en", {"Digits": "3"})

    def down(*args: object, **kwargs: object) -> object:
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(events, "_insert_ignoring_duplicates", down)
    with pytest.raises(sa.exc.OperationalError):
        spool.flush()
    assert list(spool.folder.glob("*.flushing"))
    monkeypatch.undo()
    assert spool.flush() == 1
    assert event_rows(engine) == [("menu_item", "main:3:submenu")]
    assert not list(spool.folder.glob("*.flushing"))


def test_a_spool_left_by_a_dead_process_is_adopted_and_replayed_without_duplicates(
    engine: sa.Engine, spool: events.EventSpool
) -> None:
    events.record_event(
        engine, call_sid="CA1", event="language", detail="es", language="es", key="k1"
    )
    spool.flush()
    # A process (pid 2**22 + 1, not running) died after writing two lines, one already in SQL.
    orphan = spool.folder / f"events-{2**22 + 1}-dead.jsonl"
    lines = [
        {"idempotency_key": "k1", "call_sid": "CA1", "event": "language", "detail": "es",
         "language": "es", "at": "2026-11-25T10:00:00+00:00"},
        {"idempotency_key": "k2", "call_sid": "CA2", "event": "info_sms", "detail": "hours",
         "language": "en", "at": "2026-11-25T10:00:01+00:00"},
    ]  # fmt: skip
    orphan.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"torn')
    events.record_event(engine, call_sid="CA3", event="x", detail=None, language="en", key="k3")
    assert spool.flush() == 3
    assert sorted(event_rows(engine), key=str) == [
        ("info_sms", "hours"),
        ("language", "es"),
        ("x", None),
    ]
    assert not orphan.exists()


def test_a_live_processs_spool_is_left_alone(engine: sa.Engine, spool: events.EventSpool) -> None:
    events.record_event(engine, call_sid="CA1", event="x", detail=None, language="en", key="k")
    spool.flush()
    other = spool.folder / f"events-{os.getppid()}-live.jsonl"
    other.write_text(
        json.dumps(
            {"idempotency_key": "z", "call_sid": "CA9", "event": "y", "detail": None,
             "language": "en", "at": "2026-11-25T10:00:00+00:00"}
        ) + "\n"
    )  # fmt: skip
    spool.flush()
    assert other.exists()
    assert len(event_rows(engine)) == 1


def test_an_unwritable_spool_falls_back_to_a_direct_insert(
    engine: sa.Engine, spool: events.EventSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(events.os, "write", full)
    events.record_event(engine, call_sid="CA1", event="x", detail="d", language="en")
    assert event_rows(engine) == [("x", "d")]


def test_the_app_spools_outside_tests(env: dict[str, str], tmp_path: Path) -> None:
    from ivr import create_app

    app = create_app({**env, "BRIDGELINE_SPOOL_DIR": str(tmp_path / "s")})
    engine = app.extensions["bridgeline"].engine
    assert events.spool_of(engine) is not None
    events.record_event(engine, call_sid="CA1", event="x", detail=None, language="en", key="k")
    events.stop_spool(engine)
    assert list((tmp_path / "s").iterdir()) == []  # flushed, and no empty file left behind
    off = create_app({**env, "BRIDGELINE_SPOOL_DIR": "off"})
    assert events.spool_of(off.extensions["bridgeline"].engine) is None
    engine.dispose()
    off.extensions["bridgeline"].engine.dispose()


def test_a_spool_left_under_this_processs_pid_by_an_earlier_process_is_adopted(
    engine: sa.Engine, spool: events.EventSpool
) -> None:
    """In a container the web process often gets the same PID after a restart."""
    events.record_event(engine, call_sid="CA1", event="x", detail=None, language="en", key="k1")
    spool.flush()
    earlier = spool.folder / f"events-{os.getpid()}-0ldrun00.jsonl"
    earlier.write_text(
        json.dumps(
            {"idempotency_key": "k2", "call_sid": "CA2", "event": "y", "detail": None,
             "language": "en", "at": "2026-11-25T10:00:00+00:00"}
        ) + "\n"
    )  # fmt: skip
    assert spool.flush() == 1
    assert not earlier.exists()
    assert len(event_rows(engine)) == 2
    # This process's own current spool file is never taken for an orphan.
    events.record_event(engine, call_sid="CA3", event="z", detail=None, language="en", key="k3")
    assert spool.flush() == 1
    assert len(event_rows(engine)) == 3

"""Fixtures and seed helpers for the report, QA and dashboard tests (rows written directly)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ivr.config.program import ProgramConfig, load_program
from ivr.store.tables import callbacks, self_service_events

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config"
_ids = itertools.count(1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def program() -> ProgramConfig:
    """The repository's config/program.yaml (America/Phoenix, UTC-7 all year)."""
    return load_program(REPO_CONFIG)


def add_event(
    engine: sa.Engine, call_sid: str, event: str, detail: str | None, at: datetime, lang: str = "en"
) -> None:
    """One self-service event."""
    with engine.begin() as conn:
        conn.execute(
            self_service_events.insert().values(
                idempotency_key=f"seed-{next(_ids)}",
                call_sid=call_sid,
                event=event,
                detail=detail,
                language=lang,
                at=at,
            )
        )


def add_callback(
    engine: sa.Engine,
    *,
    status: str,
    created_at: datetime,
    deadline_at: datetime | None = None,
    source: str = "resident_menu",
    helper_type: str | None = None,
    call_sid: str | None = None,
    note: str | None = None,
) -> int:
    """One callback row; returns its id."""
    values: dict[str, Any] = {
        "idempotency_key": f"seed-cb-{next(_ids)}",
        "source": source,
        "call_sid": call_sid,
        "phone_number": "+15205550199",
        "language": "en",
        "helper_type": helper_type,
        "status": status,
        "consent": True,
        "due_at": created_at,
        "deadline_at": deadline_at,
        "note": note,
        "created_at": created_at,
        "updated_at": created_at,
    }
    with engine.begin() as conn:
        return int(conn.execute(callbacks.insert().values(**values)).inserted_primary_key[0])

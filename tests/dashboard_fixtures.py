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


def sign_in(client: Any, staff_id: str, password: str) -> Any:
    """Sign in through the real login form (CSRF token included); returns the response."""
    import re

    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the login page carries a CSRF token"
    return client.post(
        "/login",
        data={"csrf_token": found.group(1), "staff_id": staff_id, "password": password},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
    )


def csrf_from(html: str) -> str:
    """The CSRF token of a page's form."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def add_live_call(engine: sa.Engine, call_sid: str, created_at: datetime) -> int:
    """One live call (a handoff needs one); returns its id."""
    from ivr.store.handoff_tables import live_calls

    with engine.begin() as conn:
        return int(
            conn.execute(
                live_calls.insert().values(
                    conference_name=f"bl-{call_sid}",
                    origin="desk",
                    call_sid=call_sid,
                    callback_number="+15205550177",
                    status="ended",
                    created_at=created_at,
                    updated_at=created_at,
                )
            ).inserted_primary_key[0]
        )


def add_handoff(
    engine: sa.Engine,
    live_call_id: int,
    helper_type: str,
    created_at: datetime,
    *,
    status: str = "completed",
    answer_s: int | None = None,
    duration_s: int | None = None,
    reason_code: str | None = None,
    outcome: str | None = None,
    attempt: int = 1,
    reason: str | None = None,
    outcome_note: str | None = None,
    events: tuple[str, ...] = (),
) -> int:
    """One handoff: accepted `answer_s` after it was asked for, connected then, lasting
    `duration_s`; returns its id."""
    from datetime import timedelta

    from ivr.store.handoff_tables import handoff_events, handoffs

    accepted = created_at + timedelta(seconds=answer_s) if answer_s is not None else None
    ended = (
        accepted + timedelta(seconds=duration_s) if accepted and duration_s is not None else None
    )
    n = next(_ids)
    with engine.begin() as conn:
        handoff_id = int(
            conn.execute(
                handoffs.insert().values(
                    idempotency_key=f"seed-h-{n}",
                    live_call_id=live_call_id,
                    origin="desk",
                    call_taker_staff_id="4101",
                    helper_type=helper_type,
                    answers="{}",
                    chain="[]",
                    reason=reason,
                    callback_number="+15205550177",
                    status=status,
                    reason_code=reason_code,
                    attempt=attempt,
                    outcome=outcome,
                    outcome_note=outcome_note,
                    created_at=created_at,
                    updated_at=created_at,
                    accepted_at=accepted,
                    connected_at=accepted,
                    ended_at=ended,
                )
            ).inserted_primary_key[0]
        )
        for index, event in enumerate(events):
            conn.execute(
                handoff_events.insert().values(
                    handoff_id=handoff_id,
                    dedupe_key=f"seed-e-{n}-{index}",
                    event=event,
                    source="twilio",
                    occurred_at=created_at,
                    received_at=created_at,
                )
            )
    return handoff_id


@pytest.fixture(autouse=True)
def _forget_handoffs(engine: sa.Engine) -> Any:
    """After each test, delete handoff rows children first (the shared cleanup deletes tables
    in the database's listing order, which PostgreSQL's foreign keys may refuse)."""
    yield
    from ivr.store.handoff_tables import handoff_events, handoffs, live_calls

    with engine.begin() as conn:
        for table in (qa_findings_table(), handoff_events, handoffs, live_calls):
            conn.execute(table.delete())


def qa_findings_table() -> sa.Table:
    """The QA findings table (deleted before the items it points at)."""
    from ivr.store.qa_tables import qa_findings

    return qa_findings


def add_attempt(engine: sa.Engine, callback_id: int, number: int, claimed_at: datetime) -> None:
    """One dialing attempt of a callback, claimed (dialed) at `claimed_at`."""
    from ivr.store.callback_tables import callback_attempts

    with engine.begin() as conn:
        conn.execute(
            callback_attempts.insert().values(
                callback_id=callback_id,
                number=number,
                status="finished",
                scheduled_for=claimed_at,
                claimed_at=claimed_at,
                created_at=claimed_at,
                updated_at=claimed_at,
            )
        )

"""Retention: old records go, open work stays, and every deletion is in the audit trail."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ivr.config.errors import ConfigError
from ivr.store import audit
from ivr.store.tables import callbacks, outbound_sms, self_service_events, service_requests
from tests.conftest import REPO
from workers.retention import RetentionConfig, Rule, load_retention, purge, purge_table

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=800)  # past the city's 730 days
RECENT = NOW - timedelta(days=30)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "config", folder)
    return folder


def test_the_shipped_retention_file_is_valid() -> None:
    config = load_retention(REPO / "config")
    assert config.days_for("county") == 1095
    assert config.days_for(None) == config.default.days
    assert config.self_service_jurisdiction == "city"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("default:\n  days: 0\n", ("line 2", "default.days")),
        ("default: {days: 30}\njurisdictions:\n  atlantis: {days: 10}\n", ("line 3", "jurisdictions.atlantis")),
        ("default: {days: 30}\nbatch_size: many\n", ("line 2", "batch_size")),
        ("default: {days: 30}\nkeep_forever: true\n", ("line 2", "keep_forever")),
    ],
)  # fmt: skip
def test_a_mistake_in_the_retention_file_names_the_file_line_and_field(
    config_dir: Path, text: str, where: tuple[str, str]
) -> None:
    (config_dir / "retention.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_retention(config_dir)
    message = str(caught.value)
    assert message.startswith(str(config_dir / "retention.yaml"))
    assert where[0] in message and where[1] in message


def add_records(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for n, at in enumerate((OLD, RECENT)):
            conn.execute(
                service_requests.insert().values(
                    reference=f"1000000{n}", idempotency_key=f"r{n}", call_sid=f"CA{n}",
                    category="pothole", language="en", caller_number="+15205550123",
                    status="open", created_at=at, updated_at=at,
                )
            )  # fmt: skip
            conn.execute(
                self_service_events.insert().values(
                    idempotency_key=f"e{n}", call_sid=f"CA{n}", event="language", detail="en",
                    language="en", at=at,
                )
            )  # fmt: skip
        for n, status in enumerate(("sent", "pending")):
            conn.execute(
                outbound_sms.insert().values(
                    idempotency_key=f"s{n}", to_number="+15205550123", from_number="+15205550100",
                    body="hours", status=status, attempts=1, created_at=OLD,
                )
            )  # fmt: skip
        for n, status in enumerate(("done", "pending")):
            conn.execute(
                callbacks.insert().values(
                    idempotency_key=f"c{n}", source="resident_menu", language="en",
                    status=status, consent=True, phone_number="+15205550123",
                    created_at=OLD, updated_at=OLD,
                )
            )  # fmt: skip


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_old_records_are_deleted_open_work_is_kept_and_each_deletion_is_audited(
    engine: sa.Engine,
) -> None:
    add_records(engine)
    config = load_retention(REPO / "config")
    results = purge(engine, config, now=NOW)
    deleted = {p.table: p.deleted for p in results if p.deleted}
    assert deleted == {
        "service_requests": 1,
        "self_service_events": 1,
        "outbound_sms": 1,
        "callbacks": 1,
    }
    assert count(engine, service_requests) == 1  # the recent one
    with engine.connect() as conn:
        assert conn.execute(sa.select(outbound_sms.c.status)).scalar_one() == "pending"
        assert conn.execute(sa.select(callbacks.c.status)).scalar_one() == "pending"
    entries = list(audit.entries(engine))
    assert {e.subject for e in entries} == set(deleted)
    assert all(e.actor == "system:retention" and e.action == "retention.delete" for e in entries)
    details = json.loads(next(e.details for e in entries if e.subject == "service_requests"))
    assert details["jurisdiction"] == "city" and details["deleted"] == {"service_requests": 1}
    assert "5205550123" not in "".join(e.details for e in entries)
    assert audit.verify(engine).intact
    assert purge(engine, config, now=NOW) and audit.verify(engine).entries == len(entries)


def test_a_longer_limit_keeps_what_a_shorter_one_would_delete(engine: sa.Engine) -> None:
    add_records(engine)
    config = RetentionConfig(
        default=Rule(days=10), jurisdictions={"city": Rule(days=3650)},
        self_service_jurisdiction="city",
    )  # fmt: skip
    purge(engine, config, now=NOW)
    assert count(engine, service_requests) == 2


def test_rows_that_refer_to_a_deleted_row_go_first_in_the_same_audited_batch(
    engine: sa.Engine,
) -> None:
    meta = sa.MetaData()
    parent = sa.Table(
        "retention_demo_parent", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )  # fmt: skip
    child = sa.Table(
        "retention_demo_child", meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("retention_demo_parent.id"), nullable=False),
    )  # fmt: skip
    meta.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                parent.insert(), [{"id": 1, "created_at": OLD}, {"id": 2, "created_at": RECENT}]
            )
            conn.execute(child.insert(), [{"id": 1, "parent_id": 1}, {"id": 2, "parent_id": 1}, {"id": 3, "parent_id": 2}])  # fmt: skip
        deleted = purge_table(
            engine, "retention_demo_parent", "created_at", None, NOW - timedelta(days=365),
            "county", batch_size=1,
        )  # fmt: skip
        assert deleted == 1
        assert count(engine, child) == 1 and count(engine, parent) == 1
        (entry,) = audit.entries(engine)
        assert json.loads(entry.details)["deleted"] == {
            "retention_demo_child": 2,
            "retention_demo_parent": 1,
        }
    finally:
        meta.drop_all(engine)


def test_the_scheduled_job_runs_in_a_worker(engine: sa.Engine, run_jobs, queues) -> None:
    add_records(engine)
    queues.enqueue("default", "workers.retention.purge_expired")
    assert run_jobs() == 1
    # The shipped limits (730 days for the city) delete the 800-day-old records.
    assert count(engine, service_requests) == 1
    assert audit.verify(engine).intact


def test_handoffs_and_callbacks_are_kept_for_their_own_jurisdictions_limit(
    engine: sa.Engine,
) -> None:
    from ivr.store.handoff_tables import handoffs, live_calls

    with engine.begin() as conn:
        for n, jurisdiction in enumerate(("county", "city", None)):
            live_id = conn.execute(
                live_calls.insert().values(
                    conference_name=f"bl-CA{n}", origin="desk", call_sid=f"CA{n}",
                    status="ended", call_taker_attempt=0, jurisdiction=jurisdiction,
                    created_at=OLD, updated_at=OLD, ended_at=OLD,
                ).returning(live_calls.c.id)
            ).scalar_one()  # fmt: skip
            conn.execute(
                handoffs.insert().values(
                    idempotency_key=f"h{n}", live_call_id=live_id, origin="desk",
                    helper_type="navigator", answers="{}", chain="[]", status="completed",
                    attempt=1, jurisdiction=jurisdiction, created_at=OLD, updated_at=OLD,
                    ended_at=OLD,
                )
            )  # fmt: skip
        for key, source, jurisdiction in (
            ("dropped-county", "dropped_handoff", "county"),
            ("menu", "resident_menu", None),  # the self-service line's: the city's
            ("dropped-unknown", "dropped_handoff", None),
        ):
            conn.execute(
                callbacks.insert().values(
                    idempotency_key=key, source=source, language="en", status="done",
                    consent=True, phone_number="+15205550123", jurisdiction=jurisdiction,
                    created_at=OLD, updated_at=OLD,
                )
            )  # fmt: skip
    config = RetentionConfig(
        default=Rule(days=3650),
        jurisdictions={"county": Rule(days=3650), "city": Rule(days=365)},
        self_service_jurisdiction="city",
    )
    results = purge(engine, config, now=NOW)
    with engine.connect() as conn:
        kept = {r.jurisdiction for r in conn.execute(sa.select(handoffs.c.jurisdiction))}
        calls_kept = {r.jurisdiction for r in conn.execute(sa.select(live_calls.c.jurisdiction))}
        callbacks_kept = {r.idempotency_key for r in conn.execute(sa.select(callbacks))}
    assert kept == {"county", None}  # the city's 365 days are past; the others keep 10 years
    assert calls_kept == {"county", None}
    assert callbacks_kept == {"dropped-county", "dropped-unknown"}
    deleted = {(p.table, p.jurisdiction): p.deleted for p in results if p.deleted}
    assert deleted == {("handoffs", "city"): 1, ("live_calls", "city"): 1, ("callbacks", "city"): 1}
    assert audit.verify(engine).intact

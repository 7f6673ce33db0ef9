"""/metrics: what an operator's Prometheus sees, and that it never carries caller data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from ivr.store.tables import callbacks
from tests.conftest import CALLER


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_webhook_latency_is_counted_per_route_not_per_raw_path(signed_post, client) -> None:
    signed_post("/voice/self-service")
    signed_post("/voice/self-service/menu/main/choose?lang=en", {"Digits": "4"})
    signed_post("/voice/self-service/menu/forged-+15205550123/choose?lang=en", {"Digits": "4"})
    client.post("/voice/self-service", data={"From": CALLER})  # unsigned: 403
    samples = scrape(client)
    count = "bridgeline_webhook_seconds_count"
    assert (
        samples[(count, (("method", "POST"), ("rule", "/voice/self-service"), ("status", "200")))]
        == 1
    )
    assert (
        samples[(count, (("method", "POST"), ("rule", "/voice/self-service"), ("status", "403")))]
        == 1
    )
    choose = "/voice/self-service/menu/<menu_id>/choose"
    assert samples[(count, (("method", "POST"), ("rule", choose), ("status", "200")))] == 2
    text = client.get("/metrics").get_data(as_text=True)
    assert "5205550123" not in text and "forged" not in text


def test_queue_depth_and_unsent_texts_show_a_text_waiting_for_a_worker(call, client) -> None:
    c = call()
    for key in ("1", "3", "1", "1"):
        c.press(key)
    samples = scrape(client)
    assert samples[("bridgeline_queue_jobs", (("queue", "bltest-sms"), ("state", "queued")))] == 1
    assert samples[("bridgeline_sms_unsent", ())] == 1
    assert samples[("bridgeline_metrics_source_up", (("source", "redis"),))] == 1


def test_overdue_callbacks_are_counted(engine: sa.Engine, client) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for n, (status, deadline) in enumerate(
            [
                ("pending", now - timedelta(hours=1)),
                ("failed", now - timedelta(days=2)),
                ("pending", now + timedelta(hours=3)),
                ("done", now - timedelta(days=1)),
            ]
        ):
            conn.execute(
                callbacks.insert().values(
                    idempotency_key=f"k{n}", source="resident_menu", language="en",
                    status=status, consent=True, deadline_at=deadline, created_at=now,
                    updated_at=now,
                )
            )  # fmt: skip
    samples = scrape(client)
    assert samples[("bridgeline_callbacks_overdue", ())] == 2
    assert samples[("bridgeline_callbacks_open", ())] == 3


def test_handoff_outcomes_are_exported_when_the_table_exists(engine: sa.Engine, client) -> None:
    text = client.get("/metrics").get_data(as_text=True)
    if "handoffs" in sa.inspect(engine).get_table_names():
        assert "# TYPE bridgeline_handoffs gauge" in text


def test_metrics_still_answer_with_redis_down(env, _table_names) -> None:
    from ivr import create_app

    app = create_app({**env, "REDIS_URL": "redis://127.0.0.1:1/0", "TESTING": True})
    samples = scrape(app.test_client())
    assert samples[("bridgeline_metrics_source_up", (("source", "redis"),))] == 0
    assert samples[("bridgeline_metrics_source_up", (("source", "database"),))] == 1
    app.extensions["bridgeline"].engine.dispose()

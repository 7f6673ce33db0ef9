"""/healthz and /readyz as a load balancer sees them."""

from __future__ import annotations

from pathlib import Path

from ivr import create_app


def test_healthz_answers_without_touching_anything(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ready_when_everything_answers(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert response.json["checks"]["redis"] == "ok"
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["config"].startswith("ok")


def test_readyz_is_not_ready_with_redis_down(env, _table_names) -> None:
    app = create_app({**env, "REDIS_URL": "redis://127.0.0.1:1/0", "TESTING": True})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"].startswith("down")
    assert response.json["checks"]["database"] == "ok"
    app.extensions["bridgeline"].engine.dispose()


def test_readyz_is_not_ready_with_the_database_unreachable(env, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/db.sqlite3"
    app = create_app({**env, "TESTING": True})
    app.extensions["bridgeline"].engine.dispose()
    import sqlalchemy as sa

    broken = sa.create_engine(url)
    state = app.extensions["bridgeline"]
    object.__setattr__(state, "engine", broken)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"].startswith("down")


def test_readyz_checks_the_event_spool_outside_tests(env, tmp_path: Path) -> None:
    from ivr.store import events

    spool_dir = tmp_path / "spool"
    app = create_app({**env, "BRIDGELINE_SPOOL_DIR": str(spool_dir)})
    engine = app.extensions["bridgeline"].engine
    try:
        response = app.test_client().get("/readyz")
        assert response.json["checks"]["event_spool"] == "ok"
    finally:
        events.stop_spool(engine)
        engine.dispose()

"""GET /healthz (the process answers) and GET /readyz (Redis, database, config, event spool).

Load balancers take a process out of rotation on a 503 from /readyz; /healthz only says the
process is alive (restart it if that fails). Neither needs a signature nor shows caller data.
Each check is bounded by the connection timeouts (Redis: REDIS_TIMEOUT_SECONDS, database:
2 s), so a dead dependency makes /readyz slow by at most those, never hang.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response, jsonify

from ivr.services import services
from ivr.store.events import spool_of

bp = Blueprint("health", __name__)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz() -> Response:
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    app_state = services()
    # The config was validated when the app was built (a bad file stops start-up).
    checks: dict[str, str] = {"config": "ok"}
    try:
        app_state.queues.connection.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    try:
        with app_state.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    spool = spool_of(app_state.engine)
    if spool is not None:
        # The folder is created on the first event; until then its parent must be writable.
        probe = spool.folder if spool.folder.exists() else spool.folder.parent
        usable = probe.is_dir() and os.access(probe, os.W_OK)
        checks["event_spool"] = "ok" if usable else "down: folder not writable"
    ready = all(v.startswith("ok") for v in checks.values())
    body = jsonify(status="ready" if ready else "not ready", checks=checks)
    return _no_store(body), 200 if ready else 503

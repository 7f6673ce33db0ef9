"""Supervisor dashboard: figures, charts, CSV exports and the QA queue (ivr.dashboard.routes)."""

from __future__ import annotations

from flask import Flask

from ivr.dashboard.routes import bp


def init_app(app: Flask) -> None:
    """Register /dashboard (program.yaml and the label map are the app's Services)."""
    app.register_blueprint(bp)

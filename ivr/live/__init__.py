"""The supervisor's live wall (/live) and read-only views of live calls (ivr.live.routes)."""

from __future__ import annotations

from flask import Flask

from ivr.live.routes import api, bp


def init_app(app: Flask) -> None:
    """Register /live (the labels and program config come from the dashboard's init_app)."""
    app.register_blueprint(bp)
    app.register_blueprint(api)

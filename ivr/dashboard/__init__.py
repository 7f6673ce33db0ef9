"""Supervisor dashboard: figures, charts, CSV exports and the QA queue (ivr.dashboard.routes)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from ivr.config.program import load_program
from ivr.dashboard.routes import PROGRAM_KEY, bp


def init_app(app: Flask, config_dir: Path, default_timezone: str) -> None:
    """Load and check config/program.yaml, then register the /dashboard pages."""
    app.extensions[PROGRAM_KEY] = load_program(config_dir, default_timezone)
    app.register_blueprint(bp)

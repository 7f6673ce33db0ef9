"""Supervisor dashboard: figures, charts, CSV exports and the QA queue (ivr.dashboard.routes)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from ivr.config.program import load_program
from ivr.dashboard.routes import PROGRAM_KEY, bp
from ivr.reporting.labels import LABELS_KEY, labels_for


def init_app(app: Flask, config_dir: Path, default_timezone: str) -> None:
    """Load and check config/program.yaml, build the label map, register /dashboard."""
    program = load_program(config_dir, default_timezone)
    app.extensions[PROGRAM_KEY] = program
    bridgeline = app.extensions.get("bridgeline")
    app.extensions[LABELS_KEY] = labels_for(
        bridgeline.config if bridgeline is not None else None,
        app.extensions.get("bridgeline_roster"),
        program,
    )
    app.register_blueprint(bp)

"""Durable records in SQL: engine, tables, and the queries each flow needs."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask, current_app

from ivr.store.db import make_engine

EXTENSION_KEY = "bridgeline_engine"


def init_app(app: Flask, url: str) -> None:
    """Create the engine once per process and keep it on the app."""
    app.extensions[EXTENSION_KEY] = make_engine(url)


def engine() -> sa.Engine:
    """The engine of the current app."""
    return current_app.extensions[EXTENSION_KEY]


def engine_of(app: Flask) -> sa.Engine:
    return app.extensions[EXTENSION_KEY]

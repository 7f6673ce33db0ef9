"""Bridgeline: the phone layer for alternative 911 response programs.

Importing `ivr` (or any module under it) imports nothing of the app: the factory lives in
`ivr.app`, and `ivr.create_app` (what `gunicorn 'ivr:create_app()'` asks for) imports it only
when asked (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        return importlib.import_module("ivr.app").create_app
    raise AttributeError(f"module 'ivr' has no attribute {name!r}")

"""Scheduled job: keep the dashboard's rollups current, so no supervisor's view pays for them."""

from __future__ import annotations

from ivr.reporting import rollups
from workers import context

ROLLUP_INTERVAL_SECONDS = 60
"""How often changed records are folded into the dashboard's rollups."""


def refresh_rollups() -> None:
    """Fold every changed handoff and self-service record into the rollups (idempotent)."""
    rollups.refresh(context.current().engine)

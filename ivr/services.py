"""What a running app holds, in one typed container: settings, config, connections, a flow.

`create_app` builds one `Services` and keeps it on the app; code serving a request asks
`services()`, code holding the app asks `services_of(app)`. No string keys to spell, no `Any`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    import sqlalchemy as sa

    from ivr.config import BridgelineConfig, DecisionTree, ProgramConfig, Roster
    from ivr.flows.self_service import SelfServiceLine
    from ivr.queueing import Queues
    from ivr.reporting.labels import Labels
    from ivr.settings import Settings

APP_KEY = "bridgeline"
"""app.extensions key of the app's Services (only this module reads or writes it)."""


@dataclass(frozen=True)
class Services:
    """Validated settings and config, connections, and the self-service line of one app."""

    settings: Settings
    config: BridgelineConfig
    engine: sa.Engine
    queues: Queues
    roster: Roster
    tree: DecisionTree
    program: ProgramConfig
    labels: Labels
    self_service: SelfServiceLine


def install(app: Flask, services: Services) -> None:
    """Keep `services` on `app` (create_app does this once)."""
    app.extensions[APP_KEY] = services


def services_of(app: Flask) -> Services:
    """The Services of `app`."""
    found: Services = app.extensions[APP_KEY]
    return found


def services() -> Services:
    """The Services of the app handling the current request (or app context)."""
    return services_of(current_app)

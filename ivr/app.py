"""The app factory: settings, services, each part's init_app, blueprints.

Nothing connects or reads the environment at import time, and the app's parts are imported
inside `create_app` (as Flask's tutorial and Redash do), so importing a module of `ivr` never
drags in the web app. `ivr.create_app` (gunicorn 'ivr:create_app()') is this function.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `overrides` may set environment names (e.g. DATABASE_URL) or Flask keys."""
    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from ivr import auth, console, health, live, logs, metrics, queueing, store, work_queue
    from ivr.config import load_config, load_decision_tree, load_program, load_roster
    from ivr.dashboard import init_app as init_dashboard
    from ivr.decisions.callback_rules import times_for
    from ivr.flows import handoffs
    from ivr.flows.self_service import SelfServiceLine
    from ivr.partners import eido_api as partner_eido_api
    from ivr.partners import open311_routes
    from ivr.partners import supervisor as partner_supervisor
    from ivr.reporting.labels import labels_for
    from ivr.services import Services, install
    from ivr.settings import load_settings
    from ivr.store import events as store_events
    from ivr.voice import agent_routes, callback_routes, desk_routes, fallback, self_service_routes
    from ivr.voice import common as voice_common

    overrides = dict(overrides or {})
    env = {**os.environ, **{k: str(v) for k, v in overrides.items() if isinstance(v, str | int)}}
    settings = load_settings(env)
    config = load_config(settings.config_dir)

    app = Flask("ivr")  # the package: its root path, logger and name as before the move
    if settings.trusted_proxies:
        # Client addresses (login limits) come from X-Forwarded-For set by our own proxies only.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    app.config.update(SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=256 * 1024)
    app.config.update({k: v for k, v in overrides.items() if k in ("TESTING", "DEBUG")})
    logs.install_redaction()
    if not app.testing and not logging.getLogger().handlers:
        logs.configure()  # served by something that set up no logging: JSON lines anyway

    store.init_app(app, settings.database_url)
    queueing.init_app(
        app, settings.redis_url, settings.redis_timeout_seconds, settings.queue_prefix
    )
    engine = store.engine_of(app)
    queues = queueing.queues_of(app)
    roster = load_roster(settings.config_dir)
    tree = load_decision_tree(settings.config_dir, roster)
    program = load_program(settings.config_dir, config.lines.timezone)  # program.yaml
    services = Services(
        settings=settings,
        config=config,
        engine=engine,
        queues=queues,
        roster=roster,
        tree=tree,
        program=program,
        labels=labels_for(config, roster, program),
        self_service=SelfServiceLine(config, settings.public_base_url, engine, queues),
    )
    install(app, services)
    handoffs.init_app(  # what a handoff started in a request uses unless told otherwise
        app,
        handoffs.AppDefaults(roster, tree, services.self_service.understanding.tagger.tags),
    )

    store_events.init_app(app, engine, env.get("BRIDGELINE_SPOOL_DIR", ""))  # event spool
    voice_common.init_app(app)
    app.register_blueprint(self_service_routes.bp)
    app.register_blueprint(fallback.bp)
    app.register_blueprint(health.bp)
    metrics.init_app(app)  # /metrics and per-route latency
    desk_routes.init_app(app, env.get("BRIDGELINE_SPOOL_DIR", ""))  # desk, intake, handoff
    agent_routes.init_app(app)  # /voice/agent-line: 311 agents take the self-service queue
    callback_routes.init_app(app)  # callbacks.yaml, /voice/callback/*
    callback_rules = callback_routes.line_of(app).config
    services.self_service.callback_times = partial(times_for, callback_rules)
    init_dashboard(app)  # /dashboard
    services.self_service.report_jurisdiction = program.self_service_jurisdiction
    open311_routes.init_app(  # /open311/v2: 311 reports for partner systems
        app,
        open311_routes.Endpoint(
            engine=engine,
            categories=config.menus.report_categories,
            program=program,
            base_url=settings.public_base_url.rstrip("/") + open311_routes.PREFIX,
            reference_digits=config.menus.settings.reference_digits,
            started_at=datetime.now(UTC),
        ),
    )
    work_queue.init_app(  # /reports: the 311 work queue
        app,
        work_queue.WorkQueue(
            settings=settings,
            categories=config.menus.report_categories,
            program=program,
            queues=queues,
        ),
    )
    auth.init_app(app)  # sessions, CSRF, /login
    app.register_blueprint(console.bp)
    app.register_blueprint(console.api)
    live.init_app(app)  # /live: the supervisor's wall
    partner_eido_api.init_app(app)  # GET /api/eido/incidents/<id> with a partner key
    partner_supervisor.init_app(app)  # /partners: how EIDO pushes to partners fare
    return app

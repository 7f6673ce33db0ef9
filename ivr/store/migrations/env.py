"""Alembic environment: runs migrations against the URL set by ivr.store.db.alembic_config."""

from __future__ import annotations

from alembic import context

from ivr.store.db import make_engine
from ivr.store.tables import metadata

config = context.config
engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()

"""Partial indexes for the live wall's callback figures.

The wall counts open callbacks (due, overdue, the oldest deadline passed, the next due time)
and failed callbacks nobody has closed, every few seconds. Read through `status` alone those
figures visited every open and failed row and tested each against the time (a parallel scan
of the table on PostgreSQL at 200,000 callbacks). These indexes hold only the rows the wall
counts, ordered by deadline and by due time, so each figure is one range of an index read
without the table, however many callbacks were ever made. The time leads (PostgreSQL drops a
condition on status the index's WHERE already implies, so a leading status would leave the
time as a filter over the whole index); status comes last so SQLite reads the index alone,
and leads the failed one (no time there: SQLite would otherwise take `ix_callbacks_status`).
The queries in `ivr/live/board.py` repeat each WHERE clause word for word (SQLite uses a
partial index only when the query's WHERE contains the index's).

Revision ID: 0018_live_callback_indexes
Revises: 0012_callback_jurisdiction
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_live_callback_indexes"
down_revision = "0012_callback_jurisdiction"
branch_labels = None
depends_on = None

OPEN = "status IN ('pending', 'dialing')"
FAILED_NOT_CLOSED = "status = 'failed' AND closed_at IS NULL"


def upgrade() -> None:
    op.create_index(
        "ix_callbacks_open_deadline",
        "callbacks",
        ["deadline_at", "status"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_callbacks_open_due",
        "callbacks",
        ["due_at", "created_at", "status"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )
    op.create_index(
        "ix_callbacks_failed_not_closed",
        "callbacks",
        ["status", "closed_at"],
        postgresql_where=sa.text(FAILED_NOT_CLOSED),
        sqlite_where=sa.text(FAILED_NOT_CLOSED),
    )


def downgrade() -> None:
    op.drop_index("ix_callbacks_failed_not_closed", table_name="callbacks")
    op.drop_index("ix_callbacks_open_due", table_name="callbacks")
    op.drop_index("ix_callbacks_open_deadline", table_name="callbacks")

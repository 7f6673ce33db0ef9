"""When each conference callback reached the inbox table, so a worker applies it only once the
other web processes have had time to add the callbacks they took in before it.

Each web process moves its spool into `conference_inbox` every quarter of a second. With two
of them, a helper's "left" taken in by one process could reach the table, and be applied, while
the caller's "left" taken in a moment earlier by the other still waited in its spool: read
alone, "the helper left" means "dial the next helper", and a second phone rang for a call that
was over. Rows written before this migration have no time and count as settled.

Revision ID: 0020_conference_inbox_inboxed_at
Revises: 0011_conference_inbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020_conference_inbox_inboxed_at"
down_revision = "0011_conference_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conference_inbox") as batch:
        batch.add_column(sa.Column("inboxed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conference_inbox") as batch:
        batch.drop_column("inboxed_at")

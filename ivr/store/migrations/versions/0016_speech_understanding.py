"""How a report's transcription went and whether screening made it urgent; QA tags on calls
and handoffs. Also joins the two 0015 branches into one line again.

Revision ID: 0016_speech_understanding
Revises: 0015_change_scan_indexes, 0015_live_call_language
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_speech_understanding"
down_revision = ("0015_change_scan_indexes", "0015_live_call_language")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_requests") as batch:
        batch.add_column(sa.Column("transcript_status", sa.String(16)))
        batch.add_column(sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "qa_tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject_ref", sa.String(64), nullable=False),
        sa.Column("tag", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("subject_kind", "subject_ref", "tag", name="uq_qa_tags_subject_tag"),
    )
    op.create_index("ix_qa_tags_tag", "qa_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_qa_tags_tag", table_name="qa_tags")
    op.drop_table("qa_tags")
    with op.batch_alter_table("service_requests") as batch:
        batch.drop_column("urgent")
        batch.drop_column("transcript_status")

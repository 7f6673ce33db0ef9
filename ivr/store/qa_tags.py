"""QA tags put on calls and handoffs from what was said (behavioral health, medical, ...).

Only the tag is stored, never the words that led to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa

from ivr.store.db import insert_skipping_duplicates
from ivr.store.tables import Timestamp, metadata

qa_tags = sa.Table(
    "qa_tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # What is tagged: a self-service call ("call", its CallSid) or a handoff ("handoff", its id),
    # the same subjects as qa_items.
    sa.Column("subject_kind", sa.String(16), nullable=False),
    sa.Column("subject_ref", sa.String(64), nullable=False),
    sa.Column("tag", sa.String(32), nullable=False),
    # Where the tag was heard: speech (a prompt), transcript (a report recording), reason.
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.UniqueConstraint("subject_kind", "subject_ref", "tag", name="uq_qa_tags_subject_tag"),
    sa.Index("ix_qa_tags_tag", "tag"),
)


def add_tags(
    engine: sa.Engine, subject_kind: str, subject_ref: str, tags: Iterable[str], *, source: str
) -> None:
    """Tag a subject; tags it already has are kept as they are."""
    now = datetime.now(UTC)
    rows = [
        {
            "subject_kind": subject_kind,
            "subject_ref": subject_ref[:64],
            "tag": tag[:32],
            "source": source[:16],
            "at": now,
        }
        for tag in dict.fromkeys(tags)
    ]
    if not rows:
        return
    with engine.begin() as conn:
        stmt = insert_skipping_duplicates(
            conn.dialect.name, qa_tags, unique=["subject_kind", "subject_ref", "tag"]
        )
        conn.execute(stmt, rows)


def tags_of(engine: sa.Engine, subject_kind: str, subject_ref: str) -> list[str]:
    """The tags of one subject, sorted."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(qa_tags.c.tag)
            .where(qa_tags.c.subject_kind == subject_kind, qa_tags.c.subject_ref == subject_ref)
            .order_by(qa_tags.c.tag)
        ).all()
    return [r[0] for r in rows]


def tagged(
    subject_kind_col: sa.ColumnElement[str], subject_ref_col: sa.ColumnElement[str], tag: str
) -> sa.ColumnElement[bool]:
    """A WHERE condition: the subject in these columns carries `tag`."""
    return sa.exists(
        sa.select(qa_tags.c.id).where(
            qa_tags.c.subject_kind == subject_kind_col,
            qa_tags.c.subject_ref == subject_ref_col,
            qa_tags.c.tag == tag,
        )
    )

"""Tags stored composed (Unicode NFC), as the domain's tag rule now makes them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

``é`` typed as one character and ``é`` typed as ``e`` and a combining accent were two tags that
look alike; the domain now composes every tag, and a filter's ``tag`` with it. A task stored
before with a tag not composed would no longer be found by that tag, so its tags are composed
here (duplicates collapsing, still in code point order). That is a change of the task: its
``version`` grows, ``updated_at`` is now, and the change feed carries it to every device. Rows
already composed (all of them, unless a client sent decomposed text) are not written.

The downgrade leaves the tags composed: they are valid tags for the previous code too.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 10_000

COMPOSE = (
    'UPDATE tasks SET tags = ARRAY(SELECT DISTINCT normalize(tag, NFC) COLLATE "C"'
    " FROM unnest(tasks.tags) AS tag ORDER BY 1), version = version + 1, updated_at = now()"
    " WHERE id > :start AND id <= :end"
    " AND NOT array_to_string(tags, ' ') IS NFC NORMALIZED"
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        # normalize() needs a UTF8 database; in any other encoding no tag can be decomposed.
        if bind.execute(text("SHOW server_encoding")).scalar_one() != "UTF8":
            return
        # A role that row-level security binds would see no rows and compose nothing: with
        # row_security off, its first read fails instead, before anything changes.
        bind.execute(text("SET row_security = off"))
        last = bind.execute(text("SELECT coalesce(max(id), 0) FROM tasks")).scalar_one()
        for start in range(0, last, BATCH):  # by id ranges: each batch a short transaction
            bind.execute(text(COMPOSE), {"start": start, "end": start + BATCH})
        bind.execute(text("RESET row_security"))


def downgrade() -> None:
    pass

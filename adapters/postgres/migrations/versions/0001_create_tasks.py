"""Create the tasks table.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen as first applied: a migration never reads live code, which may change after it ran.
TITLE_RULE = (
    "char_length(title) BETWEEN 1 AND 500 AND title = btrim(title) "
    "AND title !~ '[\\x01-\\x1f\\x7f-\\x9f]'"
)
DESCRIPTION_RULE = (
    "description IS NULL OR (char_length(description) <= 5000 "
    "AND description !~ '[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]')"
)
USER_ID_RULE = "char_length(user_id) BETWEEN 1 AND 255"
COMPLETION_RULE = "completed = (completed_at IS NOT NULL)"


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("completed", sa.Boolean, nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.CheckConstraint(TITLE_RULE, name="tasks_title_valid"),
        sa.CheckConstraint(DESCRIPTION_RULE, name="tasks_description_valid"),
        sa.CheckConstraint(USER_ID_RULE, name="tasks_user_id_valid"),
        sa.CheckConstraint(COMPLETION_RULE, name="tasks_completed_at_matches"),
        sa.CheckConstraint("version >= 1", name="tasks_version_positive"),
    )
    op.create_index("tasks_user_created_idx", "tasks", ["user_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("tasks_user_created_idx", table_name="tasks")
    op.drop_table("tasks")

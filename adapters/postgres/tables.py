"""The ``tasks`` table. Its class never leaves this package: rows become entities in ``mapper``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, DateTime, Identity, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from domain.text import DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH, USER_ID_MAX_LENGTH

# The database repeats the domain's rules (with the domain's limits), so no other writer (a
# script, a migration, a bug) can store what the API would refuse. Regexes list control characters
# by code point: the domain refuses C0, DEL and C1, allowing tab, line feed and carriage return in
# descriptions only. Migrations freeze their own copy of these texts.
TITLE_RULE = (
    f"char_length(title) BETWEEN 1 AND {TITLE_MAX_LENGTH} AND title = btrim(title) "
    "AND title !~ '[\\x01-\\x1f\\x7f-\\x9f]'"
)
DESCRIPTION_RULE = (
    f"description IS NULL OR (char_length(description) <= {DESCRIPTION_MAX_LENGTH} "
    "AND description !~ '[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]')"
)
USER_ID_RULE = f"char_length(user_id) BETWEEN 1 AND {USER_ID_MAX_LENGTH}"
COMPLETION_RULE = "completed = (completed_at IS NOT NULL)"


class TaskRow(SQLModel, table=True):
    """One task. SQLModel does not validate table models: the domain and the CHECKs do."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(TITLE_RULE, name="tasks_title_valid"),
        CheckConstraint(DESCRIPTION_RULE, name="tasks_description_valid"),
        CheckConstraint(USER_ID_RULE, name="tasks_user_id_valid"),
        CheckConstraint(COMPLETION_RULE, name="tasks_completed_at_matches"),
        CheckConstraint("version >= 1", name="tasks_version_positive"),
        # Serves "this user's tasks in creation order" (and its keyset continuation) from the index.
        Index("tasks_user_created_idx", "user_id", "created_at", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=True), primary_key=True),
    )
    user_id: str = Field(sa_column=Column(Text, nullable=False))
    title: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    completed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    completed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    version: int = Field(default=1, sa_column=Column(BigInteger, nullable=False))


IDEMPOTENCY_KEY_RULE = "char_length(key) BETWEEN 1 AND 255"


class IdempotencyKeyRow(SQLModel, table=True):
    """A client's ``Idempotency-Key`` for one creation, kept for 24 hours.

    Written in the same transaction as the task it created, with ``task`` holding that task as
    first returned, so a retry can be answered with the very same response.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint(IDEMPOTENCY_KEY_RULE, name="idempotency_keys_key_valid"),
        Index("idempotency_keys_created_idx", "created_at"),  # serves the purge
    )

    user_id: str = Field(sa_column=Column(Text, primary_key=True))
    key: str = Field(sa_column=Column(Text, primary_key=True))
    fingerprint: str = Field(sa_column=Column(Text, nullable=False))
    task: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


metadata = SQLModel.metadata

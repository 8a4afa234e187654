"""The ``tasks`` table. Its class never leaves this package: rows become entities in ``mapper``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from domain.task import Priority
from domain.text import DESCRIPTION_MAX_LENGTH, TAGS_MAX, TITLE_MAX_LENGTH, USER_ID_MAX_LENGTH

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
PRIORITY_RULE = f"priority BETWEEN 0 AND {len(Priority) - 1}"
# Each tag's own rule (trimmed, lower-cased, 1-50 characters) needs a subquery, which a CHECK
# cannot hold; the set's size, NULLs and control characters it can.
TAGS_RULE = (
    f"cardinality(tags) <= {TAGS_MAX} AND array_position(tags, NULL) IS NULL "
    "AND array_to_string(tags, ' ') !~ '[\\x01-\\x1f\\x7f-\\x9f]'"
)
# The title as the title sort compares it, kept by a trigger (migration 0007). A column, not an
# index on lower(title): row-level security keeps a non-leakproof function of a column (lower)
# out of index conditions, so only a stored key lets a page after a cursor start with a seek.
TITLE_KEY_RULE = "title_key IS NOT DISTINCT FROM lower(title)"


class TaskRow(SQLModel, table=True):
    """One task. SQLModel does not validate table models: the domain and the CHECKs do."""

    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint(TITLE_RULE, name="tasks_title_valid"),
        CheckConstraint(DESCRIPTION_RULE, name="tasks_description_valid"),
        CheckConstraint(USER_ID_RULE, name="tasks_user_id_valid"),
        CheckConstraint(COMPLETION_RULE, name="tasks_completed_at_matches"),
        CheckConstraint("version >= 1", name="tasks_version_positive"),
        CheckConstraint(PRIORITY_RULE, name="tasks_priority_valid"),
        CheckConstraint(TAGS_RULE, name="tasks_tags_valid"),
        CheckConstraint(TITLE_KEY_RULE, name="tasks_title_key_matches"),
        # One per sort order: each serves a user's page, first or after a cursor, in either
        # direction, as an index range scan (ties by id).
        Index("tasks_user_created_idx", "user_id", "created_at", "id"),
        Index("tasks_user_updated_idx", "user_id", "updated_at", "id"),
        Index("tasks_user_due_idx", "user_id", "due_at", "id"),
        # A sort by due date lists the undated tasks last, by id: an index of them alone serves
        # that part in order.
        Index("tasks_user_undated_idx", "user_id", "id", postgresql_where=text("due_at IS NULL")),
        Index("tasks_user_priority_idx", "user_id", "priority", "id"),
        Index("tasks_user_title_idx", "user_id", "title_key", "id"),
        # The change feed reads a user's tasks changed after a position (migration 0008).
        Index("tasks_user_change_idx", "user_id", "change_seq", "id"),
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
    due_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    priority: int = Field(
        default=0, sa_column=Column(SmallInteger, nullable=False, server_default=text("0"))
    )
    tags: list[str] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Text), nullable=False, server_default=text("'{}'")),
    )
    title_key: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Where the task's last change stands in its owner's change feed, set by a trigger from
    # CHANGE_SEQUENCE under the owner's lock, so a user's changes commit in this order. Tasks
    # stored before the feed existed share 0 (ordered by id).
    change_seq: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default=text("0"))
    )


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


CHANGE_SEQUENCE = "task_change_seq"
"""The sequence every change (a task written, a task deleted) takes its place in the feed from."""


class TaskTombstoneRow(SQLModel, table=True):
    """A deleted task, remembered so that the change feed can tell other devices (30 days)."""

    __tablename__ = "task_tombstones"
    __table_args__ = (
        Index("task_tombstones_user_change_idx", "user_id", "change_seq"),
        Index("task_tombstones_deleted_idx", "deleted_at"),  # serves the purge
    )

    task_id: int = Field(sa_column=Column(BigInteger, primary_key=True))
    user_id: str = Field(sa_column=Column(Text, nullable=False))
    deleted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    change_seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class ChangeHorizonRow(SQLModel, table=True):
    """One row: the place this feed started after (set when migration 0008 created the feed).

    A sync token below it comes from an earlier feed (before a downgrade, or before a restore and
    ``taskapi expire-sync-tokens``): it is answered 410.
    """

    __tablename__ = "task_change_horizon"

    id: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    starts_after: int = Field(sa_column=Column(BigInteger, nullable=False))


class TaskCountRow(SQLModel, table=True):
    """How many tasks an owner has, kept by the tasks' triggers (migration 0009).

    The task limit and an unfiltered listing's total read this one row instead of counting up to
    10,000 of the owner's tasks.
    """

    __tablename__ = "task_counts"

    user_id: str = Field(sa_column=Column(Text, primary_key=True))
    tasks: int = Field(sa_column=Column(Integer, nullable=False))


class TaskWatchRow(SQLModel, table=True):
    """Until when some process streams an owner's changes: only then do their writes NOTIFY.

    A NOTIFY serialises committing transactions on the notification queue, so writers of owners
    that nobody streams skip it (migration 0009).
    """

    __tablename__ = "task_watches"

    user_id: str = Field(sa_column=Column(Text, primary_key=True))
    until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class TaskStreamRow(SQLModel, table=True):
    """An open event stream of an owner, on any replica, until its lease lapses (migration 0011).

    The contract's limit of streams per user holds across replicas by counting these rows; the
    process holding a stream renews its lease, so a replica that dies frees its streams' places
    when their leases lapse.
    """

    __tablename__ = "task_streams"

    user_id: str = Field(sa_column=Column(Text, primary_key=True))
    stream_id: UUID = Field(sa_column=Column(Uuid, primary_key=True))
    until: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


metadata = SQLModel.metadata

"""The one place where rows of ``tasks`` become ``Task`` entities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from adapters.postgres.tables import TaskRow
from domain.task import Priority, Task, UserId

TASK_COLUMNS = tuple(TaskRow.__table__.c)  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time


def to_domain(row: asyncpg.Record | Mapping[str, Any]) -> Task:
    """Build the entity from a row holding all ``TASK_COLUMNS`` (as selected or returned)."""
    return Task(
        id=row["id"],
        owner=UserId(row["user_id"]),
        title=row["title"],
        description=row["description"],
        completed=row["completed"],
        completed_at=row["completed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        due_at=row["due_at"],
        # An idempotency key's task kept before tasks had these fields replays without them.
        priority=Priority.of_rank(row["priority"] or 0),
        tags=tuple(row["tags"] or ()),
    )

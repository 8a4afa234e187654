"""The one place where rows of ``tasks`` become ``Task`` entities."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from adapters.postgres.tables import TaskRow
from application.memory import Recent, task_text_size
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
        due_at=_instant(row["due_at"]),
        # An idempotency key's task kept before tasks had these fields replays without them.
        priority=Priority.of_rank(row["priority"] or 0),
        tags=tuple(row["tags"] or ()),
    )


def _instant(value: datetime | None) -> datetime | None:
    # asyncpg writes the calendar's first and last instants as PostgreSQL's -infinity and
    # infinity, and reads those back as naive datetime.min and max: the same instants, in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class TaskEntities:
    """Builds each stored version of a task once, then hands the same entity out again.

    A version names one content of a task (migration 0005's trigger refuses a change that does not
    raise it; the API's ETags promise as much), so a page showing a task unchanged since it was
    last read gets the entity built then, as well as its rendered JSON (``adapters.http``), and
    not a new one. The update time and owner are compared too: even an id reused after a restore
    of the database can never show one user another's task. Bounded like every memory of tasks.
    """

    def __init__(self, max_entries: int = 10_000, max_characters: int = 2_000_000) -> None:
        self._built: Recent[int, Task] = Recent(task_text_size, max_entries, max_characters)

    def to_domain(self, row: asyncpg.Record | Mapping[str, Any]) -> Task:
        """The entity of ``row``: the one built before for its version, else a new one."""
        known = self._built.get(row["id"])
        if (
            known is not None
            and known.version == row["version"]
            and known.updated_at == row["updated_at"]
            and known.owner == row["user_id"]
        ):
            return known
        task = to_domain(row)
        self._built.put(task.id, task)
        return task

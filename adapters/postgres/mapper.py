"""The one place where rows of ``tasks`` (and stored snapshots of them) become ``Task`` entities."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.postgres.tables import TaskRow
from domain.task import Task, UserId

TASK_COLUMNS = tuple(TaskRow.__table__.c)  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time


def to_domain(row: Mapping[str, Any]) -> Task:
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
    )


def to_snapshot(task: Task) -> dict[str, Any]:
    """The task as JSON-able data, to be stored (e.g. as the first response to a creation)."""

    def stamp(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": task.id,
        "user_id": task.owner,
        "title": task.title,
        "description": task.description,
        "completed": task.completed,
        "completed_at": stamp(task.completed_at),
        "created_at": stamp(task.created_at),
        "updated_at": stamp(task.updated_at),
        "version": task.version,
    }


def from_snapshot(data: dict[str, Any]) -> Task:
    """The task stored by ``to_snapshot``, exactly as it was."""

    def stamp(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    created_at = stamp(data["created_at"])
    updated_at = stamp(data["updated_at"])
    assert created_at is not None  # noqa: S101  # written by to_snapshot
    assert updated_at is not None  # noqa: S101  # written by to_snapshot
    return Task(
        id=data["id"],
        owner=UserId(data["user_id"]),
        title=data["title"],
        description=data["description"],
        completed=data["completed"],
        completed_at=stamp(data["completed_at"]),
        created_at=created_at,
        updated_at=updated_at,
        version=data["version"],
    )

"""The use cases on a user's tasks, one small class each.

Each takes the owner as an already authorised ``UserId``: the HTTP adapter checks that the token's
user is the user addressed (``domain.task.ensure_owner``) before any use case runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from application.ports import Clock, TaskRepository
from domain.errors import InvalidTask, TaskNotFound
from domain.task import NewTask, Task, TaskChanges, UserId

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000


class ListTasks:
    """List the owner's tasks in creation order, optionally only (in)complete ones."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository

    async def execute(
        self, owner: UserId, *, completed: bool | None = None, limit: int = DEFAULT_PAGE_SIZE
    ) -> Sequence[Task]:
        """Return up to ``limit`` (1-1000) tasks; raises ``InvalidTask`` for another limit."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidTask("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        return await self._repository.list(owner, completed=completed, limit=limit)


class CreateTask:
    """Create a new, incomplete task for its owner."""

    def __init__(self, repository: TaskRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def execute(self, owner: UserId, *, title: str, description: str | None = None) -> Task:
        """Validate and store the task; raises ``InvalidTask`` for a bad title or description."""
        draft = NewTask.create(owner=owner, title=title, description=description)
        return await self._repository.add(draft, at=self._clock.now())


class GetTask:
    """Fetch one of the owner's tasks."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository

    async def execute(self, owner: UserId, task_id: int) -> Task:
        """Return the task; raises ``TaskNotFound`` if the owner has no task with this id."""
        task = await self._repository.get(owner, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task


class UpdateTask:
    """Apply an edit (any of title, description, completed) to one of the owner's tasks."""

    def __init__(self, repository: TaskRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def execute(self, owner: UserId, task_id: int, changes: TaskChanges) -> Task:
        """Return the edited task; raises ``TaskNotFound`` if there is no such task."""
        task = await self._repository.edit(owner, task_id, changes, at=self._clock.now())
        if task is None:
            raise TaskNotFound(task_id)
        return task


class CompleteTask:
    """Mark one of the owner's tasks complete (idempotently)."""

    def __init__(self, repository: TaskRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def execute(self, owner: UserId, task_id: int) -> Task:
        """Return the completed task; raises ``TaskNotFound`` if there is no such task."""
        task = await self._repository.complete(owner, task_id, at=self._clock.now())
        if task is None:
            raise TaskNotFound(task_id)
        return task


class DeleteTask:
    """Delete one of the owner's tasks for good."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository

    async def execute(self, owner: UserId, task_id: int) -> None:
        """Delete the task; raises ``TaskNotFound`` if there is no such task."""
        if not await self._repository.delete(owner, task_id):
            raise TaskNotFound(task_id)

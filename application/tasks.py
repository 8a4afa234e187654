"""The use cases on a user's tasks, one small class each.

Each takes the owner as an already authorised ``UserId``: the HTTP adapter checks that the token's
user is the user addressed (``domain.task.ensure_owner``) before any use case runs.

A change is decided by the entity and stored by the repository: the use case loads the task, asks
the entity for the changed task, and saves it on condition that nobody saved another version in
between. A missed save is retried from a fresh load (the last write wins), unless the client
named the versions it expects (``If-Match``): then the fresh load answers ``StaleVersion``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Final

from application.errors import StorageUnavailable
from application.ports import (
    Clock,
    Creation,
    IdempotencyKey,
    ListPosition,
    TaskPage,
    TaskRepository,
)
from domain.errors import InvalidTask, StaleVersion, TaskNotFound
from domain.task import NewTask, Task, TaskChanges, UserId

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
SAVE_ATTEMPTS: Final = 8
"""Loads and saves a change may take while concurrent writers keep winning the race."""


class ListTasks:
    """List the owner's tasks in creation order, optionally only (in)complete ones."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository

    async def execute(
        self,
        owner: UserId,
        *,
        completed: bool | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        after: ListPosition | None = None,
    ) -> TaskPage:
        """Return a page of up to ``limit`` (1-1000) tasks, starting after ``after``.

        Raises ``InvalidTask`` for a limit out of range.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidTask("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        return await self._repository.list(owner, completed=completed, limit=limit, after=after)


class CreateTask:
    """Create a new, incomplete task for its owner."""

    def __init__(self, repository: TaskRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def execute(
        self,
        owner: UserId,
        *,
        title: str,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> Creation:
        """Validate and store the task; raises ``InvalidTask`` for a bad title or description.

        With an ``idempotency_key``, a retry of the same request returns the first creation
        (``replayed``) instead of creating another task; see ``TaskRepository.add``.
        """
        draft = NewTask.create(owner=owner, title=title, description=description)
        idempotency = None
        if idempotency_key is not None:
            idempotency = IdempotencyKey(idempotency_key, _fingerprint(title, description))
        return await self._repository.add(draft, at=self._clock.now(), idempotency=idempotency)


def _fingerprint(title: str, description: str | None) -> str:
    """What makes two creation requests "the same": the fields exactly as sent."""
    canonical = json.dumps([title, description], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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


async def _change(
    repository: TaskRepository,
    owner: UserId,
    task_id: int,
    change: Callable[[Task], Task],
    expected_versions: frozenset[int] | None,
) -> Task:
    """Load, let the entity decide, save on the loaded version; again if another save won."""
    for _ in range(SAVE_ATTEMPTS):
        task = await repository.get(owner, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        if expected_versions is not None and task.version not in expected_versions:
            raise StaleVersion(task.version)
        changed = change(task)
        if changed == task:
            return task
        saved = await repository.save(changed, expected_version=task.version)
        if saved is not None:
            return saved
    # Only a storm of writers on one task gets here; like an outage, it passes if retried.
    raise StorageUnavailable("the task kept changing while it was being saved")


class UpdateTask:
    """Apply an edit (any of title, description, completed) to one of the owner's tasks."""

    def __init__(self, repository: TaskRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def execute(
        self,
        owner: UserId,
        task_id: int,
        changes: TaskChanges,
        *,
        expected_versions: frozenset[int] | None = None,
    ) -> Task:
        """Return the edited task (one version more).

        Raises ``TaskNotFound`` if there is no such task, ``StaleVersion`` if its version is not
        one of ``expected_versions`` (when given).
        """
        return await _change(
            self._repository,
            owner,
            task_id,
            lambda task: task.edit(changes, at=self._clock.now()),
            expected_versions,
        )


class CompleteTask:
    """Mark one of the owner's tasks complete (idempotently: a complete task is not written)."""

    def __init__(self, repository: TaskRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def execute(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> Task:
        """Return the completed task.

        Raises ``TaskNotFound`` if there is no such task, ``StaleVersion`` if its version is not
        one of ``expected_versions`` (when given).
        """
        return await _change(
            self._repository,
            owner,
            task_id,
            lambda task: task.complete(at=self._clock.now()),
            expected_versions,
        )


class DeleteTask:
    """Delete one of the owner's tasks for good."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository

    async def execute(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> None:
        """Delete the task.

        Raises ``TaskNotFound`` if there is no such task, ``StaleVersion`` if its version is not
        one of ``expected_versions`` (when given).
        """
        if not await self._repository.delete(owner, task_id, expected_versions=expected_versions):
            raise TaskNotFound(task_id)

"""Ports: what the use cases need from the outside world, as protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.task import NewTask, Task, TaskChanges, UserId


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as proven by a verified token."""

    user_id: UserId


class TokenVerifier(Protocol):
    """Turns a bearer token into the caller it proves."""

    async def verify(self, token: str) -> Principal:
        """Return the token's principal.

        Raises ``AuthenticationFailed`` (``TokenExpired`` for an expired token) for any token that
        cannot be trusted: bad signature, unaccepted algorithm, missing or invalid claims.
        """
        ...


class TaskRepository(Protocol):
    """The store of tasks. Every method names the owner: no task is reachable without it.

    Implementations translate their own failures to ``StorageUnavailable`` when the store cannot
    be reached, and make each write atomic.
    """

    async def add(self, task: NewTask, *, at: datetime) -> Task:
        """Store a new task created at ``at`` (version 1, incomplete) and return it with its id."""
        ...

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        """Return the owner's task with this id, or ``None``."""
        ...

    async def list(
        self, owner: UserId, *, completed: bool | None = None, limit: int = 50
    ) -> Sequence[Task]:
        """Return up to ``limit`` of the owner's tasks, oldest first (ties by id).

        ``completed`` filters on the completion state when not ``None``.
        """
        ...

    async def edit(
        self, owner: UserId, task_id: int, changes: TaskChanges, *, at: datetime
    ) -> Task | None:
        """Apply ``changes`` as ``Task.edit`` does, atomically.

        Returns ``None`` if there is no such task.
        """
        ...

    async def complete(self, owner: UserId, task_id: int, *, at: datetime) -> Task | None:
        """Mark the task complete as ``Task.complete`` does; ``None`` if there is no such task."""
        ...

    async def delete(self, owner: UserId, task_id: int) -> bool:
        """Delete the task for good; ``False`` if there was no such task."""
        ...


class Clock(Protocol):
    """The source of the current time (UTC), replaceable in tests."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class HealthProbe(Protocol):
    """Tells whether a dependency (the database) answers right now."""

    async def is_ready(self) -> bool:
        """Return ``True`` if the dependency answered within its time limit."""
        ...

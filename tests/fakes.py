"""Hand-written fakes of the ports, for unit tests of the use cases (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from application.errors import AuthenticationFailed
from application.ports import Principal
from domain.task import NewTask, Task, TaskChanges, UserId


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 14, 9, 30, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float = 1.0) -> datetime:
        self.current += timedelta(seconds=seconds)
        return self.current


class FakeTaskRepository:
    """Tasks in a dict, applying the domain's own rules: the model the SQL must agree with."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self._next_id = 1

    async def add(self, task: NewTask, *, at: datetime) -> Task:
        stored = Task(
            id=self._next_id,
            owner=task.owner,
            title=task.title,
            description=task.description,
            completed=False,
            completed_at=None,
            created_at=at,
            updated_at=at,
            version=1,
        )
        self.tasks[stored.id] = stored
        self._next_id += 1
        return stored

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        task = self.tasks.get(task_id)
        return task if task is not None and task.owner == owner else None

    async def list(
        self, owner: UserId, *, completed: bool | None = None, limit: int = 50
    ) -> Sequence[Task]:
        mine = [
            task
            for task in self.tasks.values()
            if task.owner == owner and (completed is None or task.completed == completed)
        ]
        return sorted(mine, key=lambda task: (task.created_at, task.id))[:limit]

    async def edit(
        self, owner: UserId, task_id: int, changes: TaskChanges, *, at: datetime
    ) -> Task | None:
        task = await self.get(owner, task_id)
        if task is None:
            return None
        self.tasks[task_id] = task.edit(changes, at=at)
        return self.tasks[task_id]

    async def complete(self, owner: UserId, task_id: int, *, at: datetime) -> Task | None:
        task = await self.get(owner, task_id)
        if task is None:
            return None
        self.tasks[task_id] = task.complete(at=at)
        return self.tasks[task_id]

    async def delete(self, owner: UserId, task_id: int) -> bool:
        if await self.get(owner, task_id) is None:
            return False
        del self.tasks[task_id]
        return True

    def force(self, task_id: int, **fields: object) -> None:
        """Overwrite stored fields directly (to set up a scenario)."""
        self.tasks[task_id] = replace(self.tasks[task_id], **fields)  # type: ignore[arg-type]  # test set-up with known field names


class FakeTokenVerifier:
    """Accepts tokens of the form ``valid:<user>``; everything else is refused."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def verify(self, token: str) -> Principal:
        self.seen.append(token)
        kind, _, user = token.partition(":")
        if kind != "valid" or not user:
            raise AuthenticationFailed("fake verifier refuses it")
        return Principal(user_id=UserId(user))

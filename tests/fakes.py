"""Hand-written fakes of the ports, for unit tests of the use cases (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from application.errors import AuthenticationFailed, IdempotencyConflict
from application.ports import Creation, IdempotencyKey, ListPosition, Principal, TaskPage
from domain.errors import StaleVersion, TaskLimitReached
from domain.task import NewTask, Task, UserId


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
        self.keys: dict[tuple[UserId, str], tuple[str, Task]] = {}
        self._next_id = 1

    async def add(
        self,
        task: NewTask,
        *,
        at: datetime,
        max_tasks: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Creation:
        if idempotency is not None:
            seen = self.keys.get((task.owner, idempotency.key))
            if seen is not None:
                fingerprint, first = seen
                if fingerprint != idempotency.fingerprint:
                    raise IdempotencyConflict()
                return Creation(first, replayed=True)
        owned = sum(1 for stored in self.tasks.values() if stored.owner == task.owner)
        if max_tasks is not None and owned >= max_tasks:
            raise TaskLimitReached(max_tasks)
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
        if idempotency is not None:
            self.keys[(task.owner, idempotency.key)] = (idempotency.fingerprint, stored)
        return Creation(stored, replayed=False)

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        task = self.tasks.get(task_id)
        return task if task is not None and task.owner == owner else None

    async def list(
        self,
        owner: UserId,
        *,
        completed: bool | None = None,
        limit: int = 50,
        after: ListPosition | None = None,
    ) -> TaskPage:
        matching = sorted(
            (
                task
                for task in self.tasks.values()
                if task.owner == owner and (completed is None or task.completed == completed)
            ),
            key=lambda task: (task.created_at, task.id),
        )
        rest = [
            task
            for task in matching
            if after is None or (task.created_at, task.id) > (after.created_at, after.task_id)
        ]
        return TaskPage(tasks=rest[:limit], total=len(matching), has_more=len(rest) > limit)

    async def _current(
        self, owner: UserId, task_id: int, expected_versions: frozenset[int] | None
    ) -> Task | None:
        task = await self.get(owner, task_id)
        if task and expected_versions is not None and task.version not in expected_versions:
            raise StaleVersion(task.version)
        return task

    async def save(self, task: Task, *, expected_version: int) -> Task | None:
        stored = self.tasks.get(task.id)
        if stored is None or stored.owner != task.owner or stored.version != expected_version:
            return None
        self.tasks[task.id] = task
        return task

    async def delete(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> bool:
        if await self._current(owner, task_id, expected_versions) is None:
            return False
        del self.tasks[task_id]
        return True


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


class FakeHealthProbe:
    """Ready unless told otherwise."""

    def __init__(self) -> None:
        self.ready = True

    async def is_ready(self) -> bool:
        return self.ready

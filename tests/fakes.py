"""Hand-written fakes of the ports, for unit tests of the use cases (no I/O)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cmp_to_key
from typing import Any
from uuid import UUID

from application.errors import AuthenticationFailed, IdempotencyConflict
from application.listing import (
    EVERY_TASK,
    OLDEST_FIRST,
    ListPosition,
    SortField,
    SortOrder,
    SortValue,
    TagCount,
    TaskFilter,
    TaskPage,
)
from application.ports import Creation, IdempotencyKey, Principal
from application.sync import Change, ChangeBatch, Deletion, FeedPosition, Upsert, change_id
from domain.errors import StaleVersion, TaskLimitReached
from domain.task import NewTask, Priority, Task, UserId


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
        # The change feed: each task's place, each deletion, and the purge horizon.
        self.places: dict[int, int] = {}
        self.tombstones: dict[int, tuple[UserId, Deletion]] = {}
        self.horizon = 0
        self.erasures: dict[UserId, int] = {}  # each owner's last erasure: its place
        self._last_place = 0

    def erase(self, owner: UserId) -> None:
        """What ``taskapi delete-user`` does: the owner's rows go, the erasure takes a place."""
        self.tasks = {i: t for i, t in self.tasks.items() if t.owner != owner}
        self.tombstones = {i: d for i, d in self.tombstones.items() if d[0] != owner}
        self.erasures[owner] = self._place()

    def _place(self) -> int:
        self._last_place += 1
        return self._last_place

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
            due_at=task.due_at,
            priority=task.priority,
            tags=task.tags,
        )
        self.tasks[stored.id] = stored
        self.places[stored.id] = self._place()
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
        where: TaskFilter = EVERY_TASK,
        order: SortOrder = OLDEST_FIRST,
        limit: int = 50,
        after: ListPosition | None = None,
    ) -> TaskPage:
        matching = [t for t in self.tasks.values() if t.owner == owner and matches(t, where)]

        def compare(a: Task, b: Task) -> int:
            return -1 if comes_before(_key(order, a), _key(order, b), order) else 1

        ordered = sorted(matching, key=cmp_to_key(compare))
        if after is not None:
            mark = _sort_key(order.field, after.value, after.task_id)
            ordered = [t for t in ordered if comes_before(mark, _key(order, t), order)]
        return TaskPage(tasks=ordered[:limit], total=len(matching), has_more=len(ordered) > limit)

    async def tags(self, owner: UserId) -> Sequence[TagCount]:
        counts = Counter(tag for t in self.tasks.values() if t.owner == owner for tag in t.tags)
        return [TagCount(tag, count) for tag, count in sorted(counts.items())]

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
        self.places[task.id] = self._place()
        return task

    async def delete(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> bool:
        if await self._current(owner, task_id, expected_versions) is None:
            return False
        del self.tasks[task_id]
        self.tombstones[task_id] = (owner, Deletion(task_id, datetime.now(UTC), self._place()))
        return True

    async def changes(
        self, owner: UserId, *, after: FeedPosition | None, limit: int
    ) -> ChangeBatch:
        upserts = [Upsert(t, self.places[t.id]) for t in self.tasks.values() if t.owner == owner]
        deletions = [d for who, d in self.tombstones.values() if who == owner]
        feed: list[Change] = sorted([*upserts, *deletions], key=lambda c: (c.seq, change_id(c)))
        latest = max([c.seq for c in feed] + [self.erasures.get(owner, 0)])
        if after is None:
            feed = [c for c in feed if isinstance(c, Upsert)]
        else:
            feed = [
                c
                for c in feed
                if (c.seq, change_id(c)) > (after.seq, after.task_id)
                and (isinstance(c, Upsert) or c.seq > after.floor)
            ]
        erased = self.erasures.get(owner)
        if after is None or erased is None or erased <= after.seq:
            erased = None
        return ChangeBatch(feed[:limit], len(feed) > limit, latest, self.horizon, erased)


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


def matches(task: Task, where: TaskFilter) -> bool:
    """The filter's meaning, in Python: what the SQL must agree with."""
    text = f"{task.title}\n{task.description or ''}".lower()
    return (
        (where.completed is None or task.completed == where.completed)
        and (not where.priorities or task.priority in where.priorities)
        and set(where.tags) <= set(task.tags)
        and (
            where.due_before is None or (task.due_at is not None and task.due_at < where.due_before)
        )
        and (
            where.due_after is None or (task.due_at is not None and task.due_at >= where.due_after)
        )
        and all(word.lower() in text for word in where.words)
    )


def _sort_key(field: SortField, value: SortValue, task_id: int) -> tuple[bool, Any, int]:
    if isinstance(value, Priority):
        return False, value.rank, task_id
    if field is SortField.TITLE and isinstance(value, str):
        return False, value.lower(), task_id
    return value is None, value, task_id


def _key(order: SortOrder, task: Task) -> tuple[bool, Any, int]:
    return _sort_key(order.field, order.value_of(task), task.id)


def comes_before(a: tuple[bool, Any, int], b: tuple[bool, Any, int], order: SortOrder) -> bool:
    """Whether a task keyed ``a`` comes before one keyed ``b``: no due date last either way."""
    if a[0] != b[0]:
        return b[0]
    first, second = (b, a) if order.descending else (a, b)
    if a[0]:  # both without a due date: by id
        return first[2] < second[2]
    return (first[1], first[2]) < (second[1], second[2])


class FakeStreamSlots:
    """Places held in memory, as one database would hold them for every replica."""

    def __init__(self) -> None:
        self.held: dict[UUID, UserId] = {}
        self.kept: list[list[tuple[UserId, UUID]]] = []
        self.unreachable = False  # gives nothing back, as when the database is away

    async def take(self, owner: UserId, stream: UUID, *, most: int, lease_seconds: int) -> bool:
        assert lease_seconds > 0
        if list(self.held.values()).count(owner) >= most:
            return False
        self.held[stream] = owner
        return True

    async def keep(
        self, streams: Sequence[tuple[UserId, UUID]], *, lease_seconds: int
    ) -> list[UUID]:
        self.kept.append(list(streams))
        return [stream for _, stream in streams if stream not in self.held]

    async def give_back(self, owner: UserId, stream: UUID) -> bool:
        await asyncio.sleep(0)  # a round trip: a cancellation may land here
        if self.unreachable:
            return False
        assert self.held.pop(stream) == owner
        return True

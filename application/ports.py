"""Ports: what the use cases need from the outside world, as protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.listing import (
    EVERY_TASK,
    OLDEST_FIRST,
    ListPosition,
    SortOrder,
    TagCount,
    TaskFilter,
    TaskPage,
)
from application.sync import ChangeBatch, FeedPosition
from domain.task import NewTask, Task, UserId


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's key for one creation, with a fingerprint of the request it came with."""

    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Creation:
    """A created task, and whether it is the replay of an earlier request with the same key."""

    task: Task
    replayed: bool


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as proven by a verified token.

    ``expires_at`` (seconds since the epoch, leeway included) is when the proof stops holding,
    if the verifier knows it.
    """

    user_id: UserId
    expires_at: float | None = None


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
    be reached, and make each write atomic. The repository stores what the entity decided: it
    holds no rule of its own about what a change does.
    """

    async def add(
        self,
        task: NewTask,
        *,
        at: datetime,
        max_tasks: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Creation:
        """Store a new task created at ``at`` (version 1, incomplete) and return it with its id.

        Raises ``TaskLimitReached`` (and stores nothing) when the owner already holds
        ``max_tasks`` tasks (``None``: no limit), checked atomically with the insert. With
        ``idempotency``, the key is recorded in the same transaction as the task. A key already
        used (within 24 hours) with the same fingerprint returns the task as it was first created
        (``replayed``) and stores nothing, whatever the limit; with another fingerprint it raises
        ``IdempotencyConflict``. A request whose key is held by one still in flight waits for it
        (bounded) and then replays it, or raises ``IdempotencyInProgress``.
        """
        ...

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        """Return the owner's task with this id, or ``None``."""
        ...

    async def list(
        self,
        owner: UserId,
        *,
        where: TaskFilter = EVERY_TASK,
        order: SortOrder = OLDEST_FIRST,
        limit: int = 50,
        after: ListPosition | None = None,
    ) -> TaskPage:
        """Return up to ``limit`` of the owner's tasks matching ``where``, in ``order``.

        ``after`` starts the page after that position (keyset: no offset is scanned). ``total``
        counts every task matching the filter, not only those after the position.
        """
        ...

    async def tags(self, owner: UserId) -> Sequence[TagCount]:
        """The owner's tags, each with how many of their tasks carry it, sorted by tag."""
        ...

    async def changes(
        self, owner: UserId, *, after: FeedPosition | None, limit: int
    ) -> ChangeBatch:
        """Up to ``limit`` of the owner's changes after ``after``, in feed order, in one snapshot.

        A task appears once, in its latest state. Deletions at or below ``after.floor`` are left
        out; with no ``after`` (a first sync) every current task comes, and no deletion.
        """
        ...

    async def save(self, task: Task, *, expected_version: int) -> Task | None:
        """Store ``task`` as the entity made it, if the stored one is at ``expected_version``.

        The condition is checked atomically with the write. Returns the task as stored, or
        ``None`` when the save missed: the stored version moved on, or the task is gone.
        """
        ...

    async def delete(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> bool:
        """Delete the task for good; ``False`` if there was no such task.

        With ``expected_versions``, delete only if the current version is one of them, else
        raise ``StaleVersion`` with the current version.
        """
        ...


class StreamSlots(Protocol):
    """Each user's open event streams, counted wherever they are open (every replica).

    A place is leased: the process holding a stream keeps its lease, so the places of a process
    that died come free when their leases lapse.
    """

    async def take(self, owner: UserId, stream: UUID, *, most: int, lease_seconds: int) -> bool:
        """Take a place for ``stream``; ``False`` when ``owner`` holds ``most`` live ones."""
        ...

    async def keep(
        self, streams: Sequence[tuple[UserId, UUID]], *, lease_seconds: int
    ) -> Sequence[UUID]:
        """Renew the leases of these open streams; return those whose place is gone.

        A place is gone when its lease lapsed and another open took it over, or the user's data
        was erased. Never raises: leases it could not renew lapse on their own.
        """
        ...

    async def give_back(self, owner: UserId, stream: UUID) -> bool:
        """Free a closed stream's place; ``False`` (never raises) when that failed."""
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

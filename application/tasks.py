"""The use cases on a user's tasks, one small class each.

Each takes the owner as an already authorised ``UserId``: the HTTP adapter checks that the token's
user is the user addressed (``domain.task.ensure_owner``) before any use case runs.

A change is decided by the entity and stored by the repository: the use case loads the task, asks
the entity for the changed task, and saves it on condition that nobody saved another version in
between. A missed save is retried from a fresh load (the last write wins), unless the client
named the versions it expects (``If-Match``): then the fresh load answers ``StaleVersion``. The
task as this process last read or saved it stands in for the load while it is current
(``RecentTasks``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Final

from application.errors import WriteContention
from application.listing import (
    EVERY_TASK,
    OLDEST_FIRST,
    ListPosition,
    SortOrder,
    TagCount,
    TaskFilter,
    TaskPage,
)
from application.memory import Recent, task_text_size
from application.ports import Clock, Creation, IdempotencyKey, TaskRepository
from application.sync import (
    DEFAULT_CHANGES_PAGE,
    LAST_ID,
    MAX_CHANGES_PAGE,
    SYNC_TOKEN_LIFETIME,
    ChangePage,
    FeedPosition,
    SyncTokenExpired,
    position_after,
)
from domain.errors import InvalidTask, StaleVersion, TaskNotFound
from domain.task import NewTask, Priority, Task, TaskChanges, UserId

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 1000
SAVE_ATTEMPTS: Final = 16
"""Loads and saves a change may take while concurrent writers keep winning the race."""
FIRST_PAUSE_SECONDS: Final = 0.002
"""The longest pause after a first lost race; it doubles with each one, up to 128 ms."""
LONGEST_PAUSE_SECONDS: Final = 0.128


class ListTasks:
    """List the owner's tasks that match a filter, in a sort order, a page at a time."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository

    async def execute(
        self,
        owner: UserId,
        *,
        where: TaskFilter = EVERY_TASK,
        order: SortOrder = OLDEST_FIRST,
        limit: int = DEFAULT_PAGE_SIZE,
        after: ListPosition | None = None,
    ) -> TaskPage:
        """Return a page of up to ``limit`` (1-1000) tasks, starting after ``after``.

        Raises ``InvalidTask`` for a limit out of range.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidTask("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        return await self._repository.list(
            owner, where=where, order=order, limit=limit, after=after
        )


class ListTags:
    """The owner's tags with how many of their tasks carry each."""

    def __init__(self, repository: TaskRepository) -> None:
        self._repository = repository

    async def execute(self, owner: UserId) -> Sequence[TagCount]:
        """Every tag the owner uses, sorted."""
        return await self._repository.tags(owner)


DEFAULT_TASKS_PER_USER: Final = 10_000


class ListChanges:
    """What changed in the owner's tasks since a position in their feed, a page at a time."""

    def __init__(self, repository: TaskRepository, clock: Clock) -> None:
        self._repository = repository
        self._clock = clock

    async def execute(
        self, owner: UserId, *, since: FeedPosition | None, limit: int = DEFAULT_CHANGES_PAGE
    ) -> ChangePage:
        """Return up to ``limit`` (1-1000) changes after ``since`` (``None``: every task).

        Raises ``SyncTokenExpired`` for a position more than ``SYNC_TOKEN_LIFETIME`` old (a
        deletion after it may have been forgotten), from before this feed (its horizon: a
        downgrade, or a restore), or from before an erasure of the owner's rows, and
        ``InvalidTask`` for a limit out of range.
        """
        if not 1 <= limit <= MAX_CHANGES_PAGE:
            raise InvalidTask("limit", f"must be between 1 and {MAX_CHANGES_PAGE}")
        as_of = self._clock.now()  # before the read: the snapshot is no older than this
        if since is not None and since.as_of < as_of - SYNC_TOKEN_LIFETIME:
            raise SyncTokenExpired()
        batch = await self._repository.changes(owner, after=since, limit=limit)
        # Before the feed's start, or before an erasure of the owner's data: the deletions the
        # token needs can no longer be told. (Past the owner's last place is fine: the janitor
        # forgot a month-old deletion, and nothing came after.)
        if since is not None and (since.floor < batch.horizon or batch.erased is not None):
            raise SyncTokenExpired()
        # A first sync needs no deletion up to what its snapshot saw: those tasks were gone.
        floor = max(batch.latest, batch.horizon) if since is None else since.floor
        # Short of the end, the deletions still ahead may be as old as the sync this continues:
        # its positions keep that sync's age, so none outlives the deletions it still needs.
        kept = as_of if since is None else since.as_of
        if batch.has_more:
            end = position_after(batch.changes[-1], floor, kept)
        else:
            # Every change of the owner up to ``latest`` has been read; any later one lands after.
            seq = batch.latest if since is None else max(batch.latest, since.seq)
            end = FeedPosition(seq, LAST_ID, max(floor, seq), as_of)
        return ChangePage(
            changes=batch.changes, has_more=batch.has_more, floor=floor, as_of=kept, end=end
        )


class CreateTask:
    """Create a new, incomplete task for its owner, who may hold at most ``max_tasks``."""

    def __init__(
        self, repository: TaskRepository, clock: Clock, max_tasks: int = DEFAULT_TASKS_PER_USER
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._max_tasks = max_tasks

    async def execute(
        self,
        owner: UserId,
        *,
        title: str,
        description: str | None = None,
        due_at: datetime | None = None,
        priority: Priority = Priority.NONE,
        tags: Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> Creation:
        """Validate and store the task.

        Raises ``InvalidTask`` for an invalid field, ``TaskLimitReached`` when the owner already
        holds ``max_tasks``.

        With an ``idempotency_key``, a retry of the same request returns the first creation
        (``replayed``) instead of creating another task; see ``TaskRepository.add``.
        """
        tags = tuple(tags)
        draft = NewTask.create(
            owner=owner,
            title=title,
            description=description,
            due_at=due_at,
            priority=priority,
            tags=tags,
        )
        idempotency = None
        if idempotency_key is not None:
            fingerprint = _fingerprint(title, description, draft.due_at, priority, tags)
            idempotency = IdempotencyKey(idempotency_key, fingerprint)
        return await self._repository.add(
            draft, at=self._clock.now(), max_tasks=self._max_tasks, idempotency=idempotency
        )


def _fingerprint(
    title: str,
    description: str | None,
    due_at: datetime | None,
    priority: Priority,
    tags: tuple[str, ...],
) -> str:
    """What makes two creation requests "the same": the fields as sent, ``due_at`` as an instant.

    Fields left at their default are left out, so a key recorded before tasks had them still
    matches its retry.
    """
    fields: list[object] = [title, description]
    if due_at is not None or priority is not Priority.NONE or tags:
        fields += [None if due_at is None else due_at.isoformat(), priority.value, list(tags)]
    canonical = json.dumps(fields, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class GetTask:
    """Fetch one of the owner's tasks."""

    def __init__(self, repository: TaskRepository, recent_tasks: RecentTasks) -> None:
        self._repository = repository
        self._recent_tasks = recent_tasks

    async def execute(self, owner: UserId, task_id: int) -> Task:
        """Return the task; raises ``TaskNotFound`` if the owner has no task with this id."""
        task = await self._repository.get(owner, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        # A client reads a task, then changes it (with its ETag): that change needs no load.
        self._recent_tasks.remember(task)
        return task


class RecentTasks:
    """The tasks as this process last read or saved them: the first guess of their next change.

    A change must start from the task as stored, and loading it costs a round trip. The save is
    conditional on the version the change started from, so a guess that is no longer current
    (another replica wrote since) only makes the save miss, and the change starts again from a
    fresh load: a guess can cost a retry, never a lost update. Bounded in entries and in text
    (descriptions may be long), the oldest going first.
    """

    def __init__(self, max_entries: int = 10_000, max_characters: int = 2_000_000) -> None:
        self._tasks: Recent[tuple[UserId, int], Task] = Recent(
            task_text_size, max_entries, max_characters
        )

    def get(self, owner: UserId, task_id: int) -> Task | None:
        """The task as this process last read or saved it, if it still remembers it."""
        return self._tasks.get((owner, task_id))

    def remember(self, task: Task) -> None:
        """Keep ``task``, just read or saved, as the guess for its next change."""
        self._tasks.put((task.owner, task.id), task)

    def forget(self, owner: UserId, task_id: int) -> None:
        """Drop what is remembered of this task (it was deleted)."""
        self._tasks.discard((owner, task_id))


def _condition_holds(
    version: int, expected_versions: frozenset[int] | None, refused_versions: frozenset[int]
) -> bool:
    return (expected_versions is None or version in expected_versions) and (
        version not in refused_versions
    )


async def _change(
    repository: TaskRepository,
    recent_tasks: RecentTasks,
    owner: UserId,
    task_id: int,
    *,
    change: Callable[[Task], Task],
    expected_versions: frozenset[int] | None,
    refused_versions: frozenset[int],
) -> Task:
    """Let the entity decide, save on the version it started from; again if another save won.

    A change starts from the task as this process last read or saved it when it can; anything
    decided on that guess alone (a 412, or "nothing to change") is confirmed by a fresh load
    first, and a fresh load replaces the guess for the next change.
    """
    guess = recent_tasks.get(owner, task_id)
    for attempt in range(SAVE_ATTEMPTS):
        fresh = guess is None
        task = await repository.get(owner, task_id) if guess is None else guess
        guess = None
        if task is None:
            recent_tasks.forget(owner, task_id)
            raise TaskNotFound(task_id)
        if fresh:
            recent_tasks.remember(task)
        if not _condition_holds(task.version, expected_versions, refused_versions):
            if fresh:
                raise StaleVersion(task.version)
            continue
        changed = change(task)
        if changed == task:
            if fresh:
                return task
            continue
        saved = await repository.save(changed, expected_version=task.version)
        if saved is not None:
            recent_tasks.remember(saved)
            return saved
        await _pause(attempt)
    raise WriteContention()


async def _pause(attempt: int) -> None:
    """Wait a random while after another write won (exponential backoff, full jitter).

    So the writers of one task spread out and take turns instead of colliding again.
    """
    longest = min(LONGEST_PAUSE_SECONDS, FIRST_PAUSE_SECONDS * 2**attempt)
    await asyncio.sleep(random.uniform(0, longest))  # noqa: S311  # spreading, not secrecy


class UpdateTask:
    """Apply an edit (any of title, description, completed) to one of the owner's tasks."""

    def __init__(self, repository: TaskRepository, clock: Clock, recent_tasks: RecentTasks) -> None:
        self._repository = repository
        self._clock = clock
        self._recent_tasks = recent_tasks

    async def execute(
        self,
        owner: UserId,
        task_id: int,
        changes: TaskChanges,
        *,
        expected_versions: frozenset[int] | None = None,
        refused_versions: frozenset[int] = frozenset(),
    ) -> Task:
        """Return the edited task (one version more).

        Raises ``TaskNotFound`` if there is no such task, ``StaleVersion`` if its version is not
        one of ``expected_versions`` (when given) or is one of ``refused_versions``.
        """
        return await _change(
            self._repository,
            self._recent_tasks,
            owner,
            task_id,
            change=lambda task: task.edit(changes, at=self._clock.now()),
            expected_versions=expected_versions,
            refused_versions=refused_versions,
        )


class CompleteTask:
    """Mark one of the owner's tasks complete (idempotently: a complete task is not written)."""

    def __init__(self, repository: TaskRepository, clock: Clock, recent_tasks: RecentTasks) -> None:
        self._repository = repository
        self._clock = clock
        self._recent_tasks = recent_tasks

    async def execute(
        self,
        owner: UserId,
        task_id: int,
        *,
        expected_versions: frozenset[int] | None = None,
        refused_versions: frozenset[int] = frozenset(),
    ) -> Task:
        """Return the completed task.

        Raises ``TaskNotFound`` if there is no such task, ``StaleVersion`` if its version is not
        one of ``expected_versions`` (when given) or is one of ``refused_versions``.
        """
        return await _change(
            self._repository,
            self._recent_tasks,
            owner,
            task_id,
            change=lambda task: task.complete(at=self._clock.now()),
            expected_versions=expected_versions,
            refused_versions=refused_versions,
        )


class DeleteTask:
    """Delete one of the owner's tasks for good."""

    def __init__(self, repository: TaskRepository, recent_tasks: RecentTasks) -> None:
        self._repository = repository
        self._recent_tasks = recent_tasks

    async def execute(
        self,
        owner: UserId,
        task_id: int,
        *,
        expected_versions: frozenset[int] | None = None,
        refused_versions: frozenset[int] = frozenset(),
    ) -> None:
        """Delete the task.

        Raises ``TaskNotFound`` if there is no such task, ``StaleVersion`` if its version is not
        one of ``expected_versions`` (when given) or is one of ``refused_versions``.
        """
        if refused_versions:
            await self._delete_unless(owner, task_id, expected_versions, refused_versions)
            return
        deleted = await self._repository.delete(owner, task_id, expected_versions=expected_versions)
        self._recent_tasks.forget(owner, task_id)  # deleted is gone, from memory too
        if not deleted:
            raise TaskNotFound(task_id)

    async def _delete_unless(
        self,
        owner: UserId,
        task_id: int,
        expected_versions: frozenset[int] | None,
        refused_versions: frozenset[int],
    ) -> None:
        # "Any version but these" is no list the one-round-trip delete can check: the current
        # version is read, judged, and required of the delete; a write in between means again.
        for attempt in range(SAVE_ATTEMPTS):
            task = await self._repository.get(owner, task_id)
            if task is None:
                self._recent_tasks.forget(owner, task_id)
                raise TaskNotFound(task_id)
            if not _condition_holds(task.version, expected_versions, refused_versions):
                raise StaleVersion(task.version)
            try:
                deleted = await self._repository.delete(
                    owner, task_id, expected_versions=frozenset({task.version})
                )
            except StaleVersion:
                await _pause(attempt)
                continue
            self._recent_tasks.forget(owner, task_id)
            if not deleted:
                raise TaskNotFound(task_id)
            return
        raise WriteContention()

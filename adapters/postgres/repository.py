"""``SqlTaskRepository``: the ``TaskRepository`` port on PostgreSQL.

Every operation is one call of its SQL function (``adapters.postgres.functions``), run on its own
in autocommit: one statement, one transaction, one round trip. The function takes the API role and
sets the owner, so row-level security hides every other user's rows even from a statement whose
own ``user_id`` filter were missing; and every statement carries that filter too.

The repository stores what the entity decided and holds no rule of its own: ``save`` writes the
task's fields as given, on condition that the row is still at the version it was loaded at, so of
two racing writers exactly one wins and the other's save misses (``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import asyncpg
from sqlalchemy import (
    DateTime,
    Integer,
    Table,
    bindparam,
    delete,
    select,
    tuple_,
)

from adapters.postgres.database import Database
from adapters.postgres.functions import (
    CREATE_TASK_ONCE,
    DELETE_TASK,
    GET_TASK,
    INSERT_TASK,
    LIST_CHANGES,
    LIST_TAGS,
    LIST_TASKS,
    SAVE_TASK,
    TASK_LIMIT_SQLSTATE,
)
from adapters.postgres.mapper import TaskEntities
from adapters.postgres.row_security import BEGIN_AS_JANITOR, IDEMPOTENCY_KEY_LIFETIME
from adapters.postgres.sql import compile_sql
from adapters.postgres.tables import IdempotencyKeyRow, TaskTombstoneRow
from application.errors import IdempotencyConflict, IdempotencyInProgress
from application.listing import (
    EVERY_TASK,
    OLDEST_FIRST,
    ListPosition,
    SortOrder,
    TagCount,
    TaskFilter,
    TaskPage,
)
from application.ports import Creation, IdempotencyKey
from application.sync import (
    TOMBSTONE_LIFETIME,
    Change,
    ChangeBatch,
    Deletion,
    FeedPosition,
    Upsert,
)
from domain.errors import StaleVersion, TaskLimitReached
from domain.task import NewTask, Priority, Task, UserId

_keys: Table = IdempotencyKeyRow.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time
_PURGE_KEYS: Final = compile_sql(
    delete(_keys).where(
        tuple_(_keys.c.user_id, _keys.c.key).in_(
            select(_keys.c.user_id, _keys.c.key)
            .where(_keys.c.created_at < bindparam("expired_before", type_=DateTime(timezone=True)))
            .limit(bindparam("batch", type_=Integer))
        )
    )
)
_tombstones: Table = TaskTombstoneRow.__table__  # type: ignore[attr-defined]  # as above
_PURGE_TOMBSTONES: Final = compile_sql(
    delete(_tombstones).where(
        _tombstones.c.task_id.in_(
            select(_tombstones.c.task_id)
            .where(
                _tombstones.c.deleted_at
                < bindparam("expired_before", type_=DateTime(timezone=True))
            )
            .limit(bindparam("batch", type_=Integer))
        )
    )
)


class SqlTaskRepository:
    """Tasks in the ``tasks`` table, reached through the ``Database`` pool."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._entities = TaskEntities()

    async def add(
        self,
        task: NewTask,
        *,
        at: datetime,
        max_tasks: int | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Creation:
        try:
            if idempotency is None:
                rows = await self._database.fetch(INSERT_TASK.call, *_fields(task), at, max_tasks)
                return Creation(self._entities.to_domain(rows[0]), replayed=False)
            rows = await self._database.fetch(
                CREATE_TASK_ONCE.call,
                *_fields(task),
                idempotency.key,
                idempotency.fingerprint,
                at,
                at - IDEMPOTENCY_KEY_LIFETIME,
                max_tasks,
            )
        except asyncpg.exceptions.LockNotAvailableError:
            # The first request with this key is still in flight after the function's lock wait.
            raise IdempotencyInProgress() from None
        except asyncpg.PostgresError as error:
            if error.sqlstate == TASK_LIMIT_SQLSTATE and max_tasks is not None:
                raise TaskLimitReached(max_tasks) from None
            raise
        [row] = rows
        if row["claimed"]:
            return Creation(self._entities.to_domain(row), replayed=False)
        if row["fingerprint"] != idempotency.fingerprint:
            raise IdempotencyConflict()
        if row["id"] is None:  # committed without its task: cannot happen, never guess
            raise IdempotencyInProgress()
        return Creation(self._entities.to_domain(row), replayed=True)

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        rows = await self._database.fetch(GET_TASK.call, owner, task_id)
        return self._entities.to_domain(rows[0]) if rows else None

    async def list(
        self,
        owner: UserId,
        *,
        where: TaskFilter = EVERY_TASK,
        order: SortOrder = OLDEST_FIRST,
        limit: int = 50,
        after: ListPosition | None = None,
    ) -> TaskPage:
        value = None if after is None else after.value
        rows = await self._database.fetch(
            LIST_TASKS.call,
            owner,
            where.completed,
            sorted(p.rank for p in where.priorities) or None,
            list(where.tags) or None,
            where.due_before,
            where.due_after,
            [_like_escaped(word) for word in where.words] or None,
            str(order.field),
            order.descending,
            None if after is None else after.task_id,
            value if isinstance(value, datetime) else None,
            value.rank if isinstance(value, Priority) else None,
            value if isinstance(value, str) else None,
            limit + 1,  # one more than asked tells whether another page follows
        )
        # An empty page is one row without a task, carrying only the total.
        tasks = [self._entities.to_domain(row) for row in rows if row["id"] is not None]
        return TaskPage(
            tasks=tasks[:limit], total=int(rows[0]["total"]), has_more=len(tasks) > limit
        )

    async def tags(self, owner: UserId) -> Sequence[TagCount]:
        rows = await self._database.fetch(LIST_TAGS.call, owner)
        return [TagCount(row["tag"], row["count"]) for row in rows]

    async def changes(
        self, owner: UserId, *, after: FeedPosition | None, limit: int
    ) -> ChangeBatch:
        rows = await self._database.fetch(
            LIST_CHANGES.call,
            owner,
            -1 if after is None else after.seq,  # -1: before the tasks stored before the feed
            0 if after is None else after.task_id,
            None if after is None else after.floor,
            limit + 1,  # one more than asked tells whether another page follows
        )
        # No change is one row without a task, carrying only the feed's start and latest place.
        changes: list[Change] = [
            Upsert(self._entities.to_domain(row), row["change_seq"])
            if row["deleted_at"] is None
            else Deletion(row["id"], row["deleted_at"], row["change_seq"])
            for row in rows
            if row["id"] is not None and row["id"] > 0
        ]
        erasures = [row["change_seq"] for row in rows if row["id"] is not None and row["id"] < 0]
        return ChangeBatch(
            changes=changes[:limit],
            has_more=len(changes) > limit,
            latest=rows[0]["latest"],
            horizon=rows[0]["horizon"],
            erased=erasures[0] if erasures else None,
        )

    async def save(self, task: Task, *, expected_version: int) -> Task | None:
        rows = await self._database.fetch(
            SAVE_TASK.call,
            task.owner,
            task.id,
            expected_version,
            task.title,
            task.description,
            task.due_at,
            task.priority.rank,
            list(task.tags),
            task.completed,
            task.completed_at,
            task.updated_at,
            task.version,
        )
        return self._entities.to_domain(rows[0]) if rows else None

    async def delete(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> bool:
        versions = None if expected_versions is None else sorted(expected_versions)
        rows = await self._database.fetch(DELETE_TASK.call, owner, task_id, versions)
        if not rows:
            return False
        [row] = rows
        if not row["deleted"]:
            raise StaleVersion(row["version"])
        return True


def _fields(task: NewTask) -> tuple[object, ...]:
    """A new task's fields in the order the creating functions take them."""
    return (
        task.owner,
        task.title,
        task.description,
        task.due_at,
        task.priority.rank,
        list(task.tags),
    )


def _like_escaped(word: str) -> str:
    r"""``word`` matched literally by LIKE (whose wildcards are % and _, escaped by \\)."""
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlIdempotencyKeyJanitor:
    """Deletes idempotency keys past their 24 hours (they are ignored from then on anyway)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def purge(self, now: datetime, batch: int = 10_000) -> int:
        """Delete up to ``batch`` expired keys; return how many went."""
        async with self._database.transaction(BEGIN_AS_JANITOR) as conn:
            status = await conn.execute(
                _PURGE_KEYS.text,
                *_PURGE_KEYS.args(expired_before=now - IDEMPOTENCY_KEY_LIFETIME, batch=batch),
            )
        return int(status.rsplit(" ", 1)[-1])


class SqlTombstoneJanitor:
    """Deletes tombstones past ``TOMBSTONE_LIFETIME`` (the tokens that could need them are 410)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def purge(self, now: datetime, batch: int = 10_000) -> int:
        """Delete up to ``batch`` expired tombstones; return how many went."""
        async with self._database.transaction(BEGIN_AS_JANITOR) as conn:
            status = await conn.execute(
                _PURGE_TOMBSTONES.text,
                *_PURGE_TOMBSTONES.args(expired_before=now - TOMBSTONE_LIFETIME, batch=batch),
            )
        return int(status.rsplit(" ", 1)[-1])

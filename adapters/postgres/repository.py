"""``SqlTaskRepository``: the ``TaskRepository`` port on PostgreSQL.

Every statement filters on ``user_id`` in its own WHERE clause, and every write is a single
statement (``INSERT/UPDATE/DELETE … RETURNING``) in its own transaction: one round trip, never half
applied. The rules of ``Task.complete`` and ``Task.edit`` are repeated here in SQL so that they are
applied to the row as it is when the row lock is taken, with no read-modify-write race; the
integration tests check both versions of the rules against each other. ``If-Match`` conditions
are part of the same statement's WHERE clause, so exactly one of several racing writers wins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Table, case, delete, func, insert, literal, select, text, tuple_, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.dml import ReturningDelete, ReturningUpdate
from sqlalchemy.sql.expression import ColumnElement, Executable

from adapters.postgres.mapper import TASK_COLUMNS, from_snapshot, to_domain, to_snapshot
from adapters.postgres.tables import IdempotencyKeyRow, TaskRow
from application.errors import IdempotencyConflict, IdempotencyInProgress, StorageUnavailable
from application.ports import Creation, IdempotencyKey, ListPosition, TaskPage
from domain.errors import StaleVersion
from domain.task import UNSET, NewTask, Task, TaskChanges, UserId

_tasks: Table = TaskRow.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time
_keys: Table = IdempotencyKeyRow.__table__  # type: ignore[attr-defined]  # as above
_c = _tasks.c

IDEMPOTENCY_KEY_LIFETIME: Final = timedelta(hours=24)
# How long a retry waits for the first request with its key (holding the key's row lock).
IDEMPOTENCY_WAIT: Final = "5s"
_LOCK_NOT_AVAILABLE: Final = "55P03"

# Errors that mean "the database cannot be reached or did not answer in time", as opposed to a
# bug in a statement. Everything here is retried by nobody and answered with a 503.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection free within the acquire timeout
    OSError,
    TimeoutError,
)


def _sqlstate(error: sa_exc.DBAPIError) -> str | None:
    code = getattr(error.orig, "sqlstate", None)
    return code if isinstance(code, str) else None


class SqlTaskRepository:
    """Tasks in the ``tasks`` table, reached through one async engine (and its pool)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.begin() as connection:
                yield connection
        except sa_exc.DBAPIError as error:
            if _sqlstate(error) == _LOCK_NOT_AVAILABLE:
                raise IdempotencyInProgress() from error
            if error.connection_invalidated or isinstance(error, _UNAVAILABLE):
                raise StorageUnavailable(type(error).__name__) from error
            raise
        except _UNAVAILABLE as error:
            raise StorageUnavailable(type(error).__name__) from error

    async def _one(self, statement: Executable) -> Task | None:
        async with self._transaction() as connection:
            row = (await connection.execute(statement)).first()
        return None if row is None else to_domain(row)

    async def _conditional(
        self,
        statement: ReturningUpdate[Any] | ReturningDelete[Any],
        owner: UserId,
        task_id: int,
        expected_versions: frozenset[int] | None,
    ) -> Task | None:
        """Run a write whose WHERE may carry a version condition; tell stale from missing."""
        if expected_versions is not None:
            statement = statement.where(_c.version.in_(sorted(expected_versions)))
        async with self._transaction() as connection:
            row = (await connection.execute(statement)).first()
            if row is not None:
                return to_domain(row)
            if expected_versions is None:
                return None
            current = (
                await connection.execute(
                    select(_c.version).where(_c.id == task_id, _c.user_id == owner)
                )
            ).scalar_one_or_none()
        if current is None:
            return None
        raise StaleVersion(current)

    async def add(
        self, task: NewTask, *, at: datetime, idempotency: IdempotencyKey | None = None
    ) -> Creation:
        statement = (
            insert(_tasks)
            .values(
                user_id=task.owner,
                title=task.title,
                description=task.description,
                completed=False,
                completed_at=None,
                created_at=at,
                updated_at=at,
                version=1,
            )
            .returning(*TASK_COLUMNS)
        )
        if idempotency is None:
            stored = await self._one(statement)
            assert stored is not None  # noqa: S101  # INSERT … RETURNING always yields the row
            return Creation(stored, replayed=False)
        async with self._transaction() as connection:
            await connection.execute(text(f"SET LOCAL lock_timeout = '{IDEMPOTENCY_WAIT}'"))
            replayed = await self._claim(connection, task.owner, idempotency, at)
            if replayed is not None:
                return Creation(replayed, replayed=True)
            stored = to_domain((await connection.execute(statement)).one())
            await connection.execute(
                update(_keys)
                .where(_keys.c.user_id == task.owner, _keys.c.key == idempotency.key)
                .values(task=to_snapshot(stored))
            )
        return Creation(stored, replayed=False)

    async def _claim(
        self, connection: AsyncConnection, owner: UserId, key: IdempotencyKey, at: datetime
    ) -> Task | None:
        """Take the key for this request, or return the task it already created.

        A key row held by a transaction still in flight makes the INSERT wait for it (up to
        ``lock_timeout``); an expired key is taken over as if it were new.
        """
        new_key = pg_insert(_keys).values(
            user_id=owner, key=key.key, fingerprint=key.fingerprint, task=None, created_at=at
        )
        claim = new_key.on_conflict_do_update(
            index_elements=[_keys.c.user_id, _keys.c.key],
            set_={
                "fingerprint": new_key.excluded.fingerprint,
                "task": None,
                "created_at": new_key.excluded.created_at,
            },
            where=_keys.c.created_at < at - IDEMPOTENCY_KEY_LIFETIME,
        ).returning(_keys.c.key)
        if (await connection.execute(claim)).first() is not None:
            return None
        existing = (
            await connection.execute(
                select(_keys.c.fingerprint, _keys.c.task).where(
                    _keys.c.user_id == owner, _keys.c.key == key.key
                )
            )
        ).one()
        if existing.fingerprint != key.fingerprint:
            raise IdempotencyConflict()
        if existing.task is None:  # committed without its task: cannot happen, but never guess
            raise IdempotencyInProgress()
        return from_snapshot(existing.task)

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        statement = select(*TASK_COLUMNS).where(_c.id == task_id, _c.user_id == owner)
        return await self._one(statement)

    async def list(
        self,
        owner: UserId,
        *,
        completed: bool | None = None,
        limit: int = 50,
        after: ListPosition | None = None,
    ) -> TaskPage:
        matching: list[ColumnElement[bool]] = [_c.user_id == owner]
        if completed is not None:
            matching.append(_c.completed == completed)
        count = select(func.count()).select_from(_tasks).where(*matching)
        # One round trip: the count rides along as an uncorrelated subquery (run once).
        statement = select(*TASK_COLUMNS, count.scalar_subquery().label("total")).where(*matching)
        if after is not None:
            statement = statement.where(
                tuple_(_c.created_at, _c.id)
                > tuple_(literal(after.created_at), literal(after.task_id))
            )
        statement = statement.order_by(_c.created_at, _c.id).limit(limit + 1)
        async with self._transaction() as connection:
            rows = (await connection.execute(statement)).all()
            if rows:
                total = int(rows[0].total)
            elif after is None:
                total = 0
            else:
                total = int((await connection.execute(count)).scalar_one())
        tasks = [to_domain(row) for row in rows[:limit]]
        return TaskPage(tasks=tasks, total=total, has_more=len(rows) > limit)

    async def edit(
        self,
        owner: UserId,
        task_id: int,
        changes: TaskChanges,
        *,
        at: datetime,
        expected_versions: frozenset[int] | None = None,
    ) -> Task | None:
        values: dict[str, Any] = {"updated_at": at, "version": _c.version + 1}
        if changes.title is not UNSET:
            values["title"] = changes.title
        if changes.description is not UNSET:
            values["description"] = changes.description
        if changes.completed is not UNSET:
            values["completed"] = changes.completed
            # As Task.edit: reopening clears completed_at, completing keeps an existing one.
            values["completed_at"] = (
                case((_c.completed, _c.completed_at), else_=literal(at))
                if changes.completed
                else None
            )
        statement = (
            update(_tasks)
            .where(_c.id == task_id, _c.user_id == owner)
            .values(**values)
            .returning(*TASK_COLUMNS)
        )
        return await self._conditional(statement, owner, task_id, expected_versions)

    async def complete(
        self,
        owner: UserId,
        task_id: int,
        *,
        at: datetime,
        expected_versions: frozenset[int] | None = None,
    ) -> Task | None:
        # As Task.complete: an already complete task keeps its completed_at, updated_at and
        # version. The CASEs read the row as locked, so two racing calls cannot both count.
        statement = (
            update(_tasks)
            .where(_c.id == task_id, _c.user_id == owner)
            .values(
                completed=True,
                completed_at=case((_c.completed, _c.completed_at), else_=literal(at)),
                updated_at=case((_c.completed, _c.updated_at), else_=literal(at)),
                version=case((_c.completed, _c.version), else_=_c.version + 1),
            )
            .returning(*TASK_COLUMNS)
        )
        return await self._conditional(statement, owner, task_id, expected_versions)

    async def delete(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> bool:
        statement = (
            delete(_tasks).where(_c.id == task_id, _c.user_id == owner).returning(*TASK_COLUMNS)
        )
        return await self._conditional(statement, owner, task_id, expected_versions) is not None


class SqlIdempotencyKeyJanitor:
    """Deletes idempotency keys past their 24 hours (they are ignored from then on anyway)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def purge(self, now: datetime, batch: int = 10_000) -> int:
        """Delete up to ``batch`` expired keys; return how many went."""
        expired = (
            select(_keys.c.user_id, _keys.c.key)
            .where(_keys.c.created_at < now - IDEMPOTENCY_KEY_LIFETIME)
            .limit(batch)
        )
        statement = delete(_keys).where(tuple_(_keys.c.user_id, _keys.c.key).in_(expired))
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount)

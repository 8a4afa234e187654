"""``SqlTaskRepository``: the ``TaskRepository`` port on PostgreSQL.

Every statement filters on ``user_id`` in its own WHERE clause, and every write is a single
statement (``INSERT/UPDATE/DELETE … RETURNING``) in its own transaction: one round trip, never half
applied. The rules of ``Task.complete`` and ``Task.edit`` are repeated here in SQL so that they are
applied to the row as it is when the row lock is taken, with no read-modify-write race; the
integration tests check both versions of the rules against each other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, delete, insert, literal, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable

from adapters.postgres.mapper import TASK_COLUMNS, to_domain
from adapters.postgres.tables import TaskRow
from application.errors import StorageUnavailable
from domain.task import UNSET, NewTask, Task, TaskChanges, UserId

_tasks: Table = TaskRow.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time
_c = _tasks.c

# Errors that mean "the database cannot be reached or did not answer in time", as opposed to a
# bug in a statement. Everything here is retried by nobody and answered with a 503.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no pooled connection free within the acquire timeout
    OSError,
    TimeoutError,
)


class SqlTaskRepository:
    """Tasks in the ``tasks`` table, reached through one async engine (and its pool)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engine.begin() as connection:
                yield connection
        except _UNAVAILABLE as error:
            raise StorageUnavailable(type(error).__name__) from error
        except sa_exc.DBAPIError as error:
            if error.connection_invalidated:
                raise StorageUnavailable(type(error).__name__) from error
            raise

    async def _one(self, statement: Executable) -> Task | None:
        async with self._transaction() as connection:
            row = (await connection.execute(statement)).first()
        return None if row is None else to_domain(row)

    async def add(self, task: NewTask, *, at: datetime) -> Task:
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
        stored = await self._one(statement)
        assert stored is not None  # noqa: S101  # INSERT … RETURNING always yields the row
        return stored

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        statement = select(*TASK_COLUMNS).where(_c.id == task_id, _c.user_id == owner)
        return await self._one(statement)

    async def list(
        self, owner: UserId, *, completed: bool | None = None, limit: int = 50
    ) -> Sequence[Task]:
        statement = select(*TASK_COLUMNS).where(_c.user_id == owner)
        if completed is not None:
            statement = statement.where(_c.completed == completed)
        statement = statement.order_by(_c.created_at, _c.id).limit(limit)
        async with self._transaction() as connection:
            rows = (await connection.execute(statement)).all()
        return [to_domain(row) for row in rows]

    async def edit(
        self, owner: UserId, task_id: int, changes: TaskChanges, *, at: datetime
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
        return await self._one(statement)

    async def complete(self, owner: UserId, task_id: int, *, at: datetime) -> Task | None:
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
        return await self._one(statement)

    async def delete(self, owner: UserId, task_id: int) -> bool:
        statement = delete(_tasks).where(_c.id == task_id, _c.user_id == owner).returning(_c.id)
        async with self._transaction() as connection:
            row = (await connection.execute(statement)).first()
        return row is not None

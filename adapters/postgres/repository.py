"""``SqlTaskRepository``: the ``TaskRepository`` port on PostgreSQL.

Every statement filters on ``user_id`` in its own WHERE clause, and every write is a single
statement (``INSERT/UPDATE/DELETE … RETURNING``): atomic on its own, never half applied. The rules
of ``Task.complete`` and ``Task.edit`` are repeated here in SQL so that they are applied to the row
as it is when the row lock is taken, with no read-modify-write race; the integration tests check
both versions of the rules against each other. ``If-Match`` conditions are part of the same
statement's WHERE clause, so exactly one of several racing writers wins.

Each call is one transaction opened by ``row_security.begin_as_owner``: it runs as the API role
with the owner's id set, so row-level security hides every other user's rows even from a
statement whose own filter were missing. Three round trips: the set-up (one simple query), the
statement, ``COMMIT``.

The SQL is written by SQLAlchemy Core from the SQLModel tables (``adapters.postgres.sql``) and
run on an asyncpg pool.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any, Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Integer,
    Table,
    Text,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.dml import ReturningDelete, ReturningUpdate

from adapters.postgres.database import Database
from adapters.postgres.mapper import TASK_COLUMNS, from_snapshot, to_domain, to_snapshot
from adapters.postgres.row_security import (
    BEGIN_AS_JANITOR,
    IDEMPOTENCY_KEY_LIFETIME,
    begin_as_owner,
)
from adapters.postgres.sql import Sql, compile_sql
from adapters.postgres.tables import IdempotencyKeyRow, TaskRow
from application.errors import IdempotencyConflict, IdempotencyInProgress
from application.ports import Creation, IdempotencyKey, ListPosition, TaskPage
from domain.errors import StaleVersion
from domain.task import UNSET, NewTask, Task, TaskChanges, UserId

_tasks: Table = TaskRow.__table__  # type: ignore[attr-defined]  # SQLModel declares __table__ only at run time
_keys: Table = IdempotencyKeyRow.__table__  # type: ignore[attr-defined]  # as above
_c = _tasks.c

# How long a retry waits for the first request with its key (which holds the key's row lock)
# before it answers 409 idempotency_in_progress: below the default statement timeout (2.5 s),
# so that the lock timeout, not the client-side statement timeout, ends the wait.
IDEMPOTENCY_WAIT: Final = "2s"

# Typed parameters, so each statement is prepared with the column types it compares against.
_OWNER = bindparam("owner", type_=Text)
_TASK_ID = bindparam("task_id", type_=BigInteger)
_AT = bindparam("at", type_=DateTime(timezone=True))
_VERSIONS = bindparam("versions", type_=ARRAY(BigInteger))


def _select_by_id() -> Sql:
    return compile_sql(select(*TASK_COLUMNS).where(_c.id == _TASK_ID, _c.user_id == _OWNER))


def _conditional(statement: ReturningUpdate[Any] | ReturningDelete[Any], versions: bool) -> Sql:
    if versions:
        statement = statement.where(_c.version == any_(_VERSIONS))
    return compile_sql(statement)


_GET: Final = _select_by_id()
_CURRENT_VERSION: Final = compile_sql(
    select(_c.version).where(_c.id == _TASK_ID, _c.user_id == _OWNER)
)
_INSERT: Final = compile_sql(
    insert(_tasks)
    .values(
        user_id=_OWNER,
        title=bindparam("title", type_=Text),
        description=bindparam("description", type_=Text),
        completed=False,
        completed_at=None,
        created_at=_AT,
        updated_at=_AT,
        version=1,
    )
    .returning(*TASK_COLUMNS)
)
# As Task.complete: an already complete task keeps its completed_at, updated_at and version. The
# CASEs read the row as locked, so two racing calls cannot both count.
_COMPLETE: Final = {
    versions: _conditional(
        update(_tasks)
        .where(_c.id == _TASK_ID, _c.user_id == _OWNER)
        .values(
            completed=True,
            completed_at=case((_c.completed, _c.completed_at), else_=_AT),
            updated_at=case((_c.completed, _c.updated_at), else_=_AT),
            version=case((_c.completed, _c.version), else_=_c.version + 1),
        )
        .returning(*TASK_COLUMNS),
        versions,
    )
    for versions in (False, True)
}
_DELETE: Final = {
    versions: _conditional(
        delete(_tasks).where(_c.id == _TASK_ID, _c.user_id == _OWNER).returning(*TASK_COLUMNS),
        versions,
    )
    for versions in (False, True)
}


@cache
def _edit_sql(title: bool, description: bool, completed: bool | None, versions: bool) -> Sql:
    """The UPDATE for one shape of edit (a few dozen shapes at most, each compiled once)."""
    values: dict[str, Any] = {"updated_at": _AT, "version": _c.version + 1}
    if title:
        values["title"] = bindparam("title", type_=Text)
    if description:
        values["description"] = bindparam("description", type_=Text)
    if completed is not None:
        values["completed"] = completed
        # As Task.edit: reopening clears completed_at, completing keeps an existing one.
        values["completed_at"] = (
            case((_c.completed, _c.completed_at), else_=_AT) if completed else None
        )
    statement = (
        update(_tasks)
        .where(_c.id == _TASK_ID, _c.user_id == _OWNER)
        .values(**values)
        .returning(*TASK_COLUMNS)
    )
    return _conditional(statement, versions)


@cache
def _list_sql(filtered: bool, after: bool) -> Sql:
    """A page of the owner's tasks with, in the same round trip, how many match the filter."""
    matching = [_c.user_id == _OWNER]
    if filtered:
        matching.append(_c.completed == bindparam("completed", type_=Boolean))
    count = select(func.count()).select_from(_tasks).where(*matching).scalar_subquery()
    statement = select(*TASK_COLUMNS, count.label("total")).where(*matching)
    if after:
        statement = statement.where(
            tuple_(_c.created_at, _c.id)
            > tuple_(
                bindparam("after_at", type_=DateTime(timezone=True)),
                bindparam("after_id", type_=BigInteger),
            )
        )
    statement = statement.order_by(_c.created_at, _c.id).limit(bindparam("limit", type_=Integer))
    return compile_sql(statement)


@cache
def _count_sql(filtered: bool) -> Sql:
    matching = [_c.user_id == _OWNER]
    if filtered:
        matching.append(_c.completed == bindparam("completed", type_=Boolean))
    return compile_sql(select(func.count()).select_from(_tasks).where(*matching))


_CLAIM_KEY: Final = compile_sql(
    pg_insert(_keys)
    .values(
        user_id=_OWNER,
        key=bindparam("key", type_=Text),
        fingerprint=bindparam("fingerprint", type_=Text),
        task=None,
        created_at=_AT,
    )
    .on_conflict_do_update(
        index_elements=[_keys.c.user_id, _keys.c.key],
        set_={
            "fingerprint": bindparam("fingerprint", type_=Text),
            "task": None,
            "created_at": _AT,
        },
        # An expired key is taken over as if it were new.
        where=_keys.c.created_at < bindparam("expired_before", type_=DateTime(timezone=True)),
    )
    .returning(_keys.c.key)
)
_KEY_RECORD: Final = compile_sql(
    select(_keys.c.fingerprint, _keys.c.task).where(
        _keys.c.user_id == _OWNER, _keys.c.key == bindparam("key", type_=Text)
    )
)
_KEY_TASK: Final = compile_sql(
    update(_keys)
    .where(_keys.c.user_id == _OWNER, _keys.c.key == bindparam("key", type_=Text))
    .values(task=bindparam("task", type_=JSONB))
)
_PURGE_KEYS: Final = compile_sql(
    delete(_keys).where(
        tuple_(_keys.c.user_id, _keys.c.key).in_(
            select(_keys.c.user_id, _keys.c.key)
            .where(_keys.c.created_at < bindparam("expired_before", type_=DateTime(timezone=True)))
            .limit(bindparam("batch", type_=Integer))
        )
    )
)


class SqlTaskRepository:
    """Tasks in the ``tasks`` table, reached through the ``Database`` pool."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def _one(self, sql: Sql, owner: UserId, **values: Any) -> Task | None:  # noqa: ANN401  # bind values
        async with self._database.transaction(begin_as_owner(owner)) as conn:
            row = await conn.fetchrow(sql.text, *sql.args(owner=owner, **values))
        return None if row is None else to_domain(row)

    async def _write(
        self,
        statements: Callable[[bool], Sql],
        owner: UserId,
        task_id: int,
        expected_versions: frozenset[int] | None,
        **values: Any,  # noqa: ANN401  # bind values
    ) -> Task | None:
        """Run a write whose WHERE may carry a version condition; tell stale from missing."""
        conditional = expected_versions is not None
        sql = statements(conditional)
        async with self._database.transaction(begin_as_owner(owner)) as conn:
            row = await conn.fetchrow(
                sql.text,
                *sql.args(
                    owner=owner,
                    task_id=task_id,
                    versions=sorted(expected_versions or ()),
                    **values,
                ),
            )
            if row is not None:
                return to_domain(row)
            if not conditional:
                return None
            current = await conn.fetchval(
                _CURRENT_VERSION.text, *_CURRENT_VERSION.args(owner=owner, task_id=task_id)
            )
        if current is None:
            return None
        raise StaleVersion(current)

    async def add(
        self, task: NewTask, *, at: datetime, idempotency: IdempotencyKey | None = None
    ) -> Creation:
        values = {
            "title": task.title,
            "description": task.description,
            "at": at,
        }
        if idempotency is None:
            stored = await self._one(_INSERT, task.owner, **values)
            assert stored is not None  # noqa: S101  # INSERT … RETURNING always yields the row
            return Creation(stored, replayed=False)
        begin = begin_as_owner(task.owner, lock_timeout=IDEMPOTENCY_WAIT)
        async with self._database.transaction(begin) as conn:
            replayed = await self._claim(conn, task.owner, idempotency, at)
            if replayed is not None:
                return Creation(replayed, replayed=True)
            row = await conn.fetchrow(_INSERT.text, *_INSERT.args(owner=task.owner, **values))
            assert row is not None  # noqa: S101  # INSERT … RETURNING always yields the row
            stored = to_domain(row)
            await conn.execute(
                _KEY_TASK.text,
                *_KEY_TASK.args(
                    owner=task.owner, key=idempotency.key, task=json.dumps(to_snapshot(stored))
                ),
            )
        return Creation(stored, replayed=False)

    async def _claim(
        self,
        conn: PoolConnectionProxy[Any],
        owner: UserId,
        key: IdempotencyKey,
        at: datetime,
    ) -> Task | None:
        """Take the key for this request, or return the task it already created.

        A key row held by a transaction still in flight makes the INSERT wait for it (up to
        ``lock_timeout``), after which it sees the committed row (replay) or none (take it).
        """
        try:
            claimed = await conn.fetchval(
                _CLAIM_KEY.text,
                *_CLAIM_KEY.args(
                    owner=owner,
                    key=key.key,
                    fingerprint=key.fingerprint,
                    at=at,
                    expired_before=at - IDEMPOTENCY_KEY_LIFETIME,
                ),
            )
        except asyncpg.exceptions.LockNotAvailableError:
            raise IdempotencyInProgress() from None
        if claimed is not None:
            return None
        existing = await conn.fetchrow(
            _KEY_RECORD.text, *_KEY_RECORD.args(owner=owner, key=key.key)
        )
        assert existing is not None  # noqa: S101  # the claim saw the row; keys are never updated away
        if existing["fingerprint"] != key.fingerprint:
            raise IdempotencyConflict()
        if existing["task"] is None:  # committed without its task: cannot happen, never guess
            raise IdempotencyInProgress()
        return from_snapshot(json.loads(existing["task"]))

    async def get(self, owner: UserId, task_id: int) -> Task | None:
        return await self._one(_GET, owner, task_id=task_id)

    async def list(
        self,
        owner: UserId,
        *,
        completed: bool | None = None,
        limit: int = 50,
        after: ListPosition | None = None,
    ) -> TaskPage:
        filtered = completed is not None
        sql = _list_sql(filtered, after is not None)
        values: dict[str, Any] = {"owner": owner, "completed": completed, "limit": limit + 1}
        if after is not None:
            values |= {"after_at": after.created_at, "after_id": after.task_id}
        async with self._database.transaction(begin_as_owner(owner)) as conn:
            rows = await conn.fetch(sql.text, *sql.args(**values))
            if rows:
                total = int(rows[0]["total"])
            elif after is None:
                total = 0
            else:
                count = _count_sql(filtered)
                total = int(
                    await conn.fetchval(count.text, *count.args(owner=owner, completed=completed))
                )
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
        completed = None if changes.completed is UNSET else changes.completed

        def statements(versions: bool) -> Sql:
            return _edit_sql(
                changes.title is not UNSET, changes.description is not UNSET, completed, versions
            )

        return await self._write(
            statements,
            owner,
            task_id,
            expected_versions,
            at=at,
            title=None if changes.title is UNSET else changes.title,
            description=None if changes.description is UNSET else changes.description,
        )

    async def complete(
        self,
        owner: UserId,
        task_id: int,
        *,
        at: datetime,
        expected_versions: frozenset[int] | None = None,
    ) -> Task | None:
        return await self._write(_COMPLETE.__getitem__, owner, task_id, expected_versions, at=at)

    async def delete(
        self, owner: UserId, task_id: int, *, expected_versions: frozenset[int] | None = None
    ) -> bool:
        deleted = await self._write(_DELETE.__getitem__, owner, task_id, expected_versions)
        return deleted is not None


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

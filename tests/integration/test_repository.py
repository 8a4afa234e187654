"""``SqlTaskRepository`` against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import Database, PoolOptions
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.repository import (
    SqlTaskRepository,
    _list_sql,  # the statement under test
)
from application.errors import StorageUnavailable
from application.ports import ListPosition
from domain.task import NewTask, TaskChanges, UserId

pytestmark = pytest.mark.usefixtures("clean_tasks")

ALICE = UserId("alice")
BOB = UserId("bob")
T0 = datetime(2026, 1, 14, 9, 30, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def repository(database: Database) -> SqlTaskRepository:
    return SqlTaskRepository(database)


def draft(title: str = "Buy groceries", owner: UserId = ALICE) -> NewTask:
    return NewTask.create(owner=owner, title=title, description=None)


async def test_add_returns_the_stored_task(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    assert task.id >= 1
    assert (task.owner, task.title, task.completed, task.completed_at) == (
        ALICE,
        "Buy groceries",
        False,
        None,
    )
    assert task.created_at == task.updated_at == T0  # microseconds survive the round trip
    assert task.version == 1
    assert await repository.get(ALICE, task.id) == task


async def test_get_is_scoped_by_owner(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(owner=BOB), at=T0)).task
    assert await repository.get(ALICE, task.id) is None
    assert await repository.get(BOB, task.id) == task


async def test_list_is_scoped_ordered_filtered_and_limited(repository: SqlTaskRepository) -> None:
    # Created out of id order on purpose: creation time decides, then id.
    late = (await repository.add(draft("late"), at=at(10))).task
    early = (await repository.add(draft("early"), at=at(1))).task
    tie_a = (await repository.add(draft("tie a"), at=at(5))).task
    tie_b = (await repository.add(draft("tie b"), at=at(5))).task
    await repository.add(draft("bob's", owner=BOB), at=at(2))
    await repository.complete(ALICE, tie_a.id, at=at(20))

    listed = (await repository.list(ALICE)).tasks
    assert [t.id for t in listed] == [early.id, tie_a.id, tie_b.id, late.id]
    assert [t.id for t in (await repository.list(ALICE, completed=True)).tasks] == [tie_a.id]
    assert [t.id for t in (await repository.list(ALICE, completed=False)).tasks] == [
        early.id,
        tie_b.id,
        late.id,
    ]
    assert [t.id for t in (await repository.list(ALICE, limit=2)).tasks] == [early.id, tie_a.id]
    assert (await repository.list(UserId("nobody"))).tasks == []


@pytest.mark.parametrize(
    "changes",
    [
        TaskChanges.create(title="renamed"),
        TaskChanges.create(description="described"),
        TaskChanges.create(description=None),
        TaskChanges.create(completed=True),
        TaskChanges.create(completed=False),
        TaskChanges.create(title="all", description="of it", completed=True),
    ],
)
@pytest.mark.parametrize("start_completed", [False, True])
async def test_edit_in_sql_agrees_with_the_domain(
    repository: SqlTaskRepository, changes: TaskChanges, start_completed: bool
) -> None:
    task = (
        await repository.add(NewTask.create(owner=ALICE, title="t", description="d"), at=T0)
    ).task
    if start_completed:
        task = await repository.complete(ALICE, task.id, at=at(1)) or task
    edited = await repository.edit(ALICE, task.id, changes, at=at(2))
    assert edited == task.edit(changes, at=at(2))
    assert await repository.get(ALICE, task.id) == edited


@pytest.mark.parametrize("start_completed", [False, True])
async def test_complete_in_sql_agrees_with_the_domain(
    repository: SqlTaskRepository, start_completed: bool
) -> None:
    task = (await repository.add(draft(), at=T0)).task
    if start_completed:
        task = await repository.complete(ALICE, task.id, at=at(1)) or task
    completed = await repository.complete(ALICE, task.id, at=at(2))
    assert completed == task.complete(at=at(2))


async def test_writes_to_another_users_task_change_nothing(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(owner=BOB), at=T0)).task
    assert await repository.edit(ALICE, task.id, TaskChanges.create(title="x"), at=at(1)) is None
    assert await repository.complete(ALICE, task.id, at=at(1)) is None
    assert await repository.delete(ALICE, task.id) is False
    assert await repository.get(BOB, task.id) == task


async def test_delete_removes_the_row(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    assert await repository.delete(ALICE, task.id) is True
    assert await repository.get(ALICE, task.id) is None
    assert await repository.delete(ALICE, task.id) is False


async def test_racing_completes_count_once(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    results = await asyncio.gather(
        *(repository.complete(ALICE, task.id, at=at(n + 1)) for n in range(20))
    )
    versions = {result.version for result in results if result is not None}
    completed_ats = {result.completed_at for result in results if result is not None}
    assert versions == {2}
    assert len(completed_ats) == 1


async def test_racing_edits_each_count(repository: SqlTaskRepository) -> None:
    task = (await repository.add(draft(), at=T0)).task
    await asyncio.gather(
        *(
            repository.edit(ALICE, task.id, TaskChanges.create(title=f"t{n}"), at=at(n))
            for n in range(20)
        )
    )
    stored = await repository.get(ALICE, task.id)
    assert stored is not None
    assert stored.version == 21  # last write wins, but no write is lost to a read-modify race


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("title", ""),
        ("title", " padded "),
        ("title", "x" * 501),
        ("title", "tab\there"),
        ("title", "c1\u0085"),
        ("description", "d" * 5001),
        ("description", "bell\u0007"),
        ("user_id", ""),
    ],
)
async def test_the_table_refuses_what_the_domain_refuses(
    engine: AsyncEngine, column: str, value: str
) -> None:
    row = {"user_id": "alice", "title": "ok", "description": None, column: value}
    with pytest.raises(IntegrityError):
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO tasks (user_id, title, description, completed, created_at,"
                    " updated_at, version) VALUES (:user_id, :title, :description, false,"
                    " now(), now(), 1)"
                ),
                row,
            )


async def test_the_table_accepts_line_breaks_in_descriptions(
    repository: SqlTaskRepository,
) -> None:
    task = (
        await repository.add(
            NewTask.create(owner=ALICE, title="t", description="a\n\tb\r\nc"), at=T0
        )
    ).task
    assert task.description == "a\n\tb\r\nc"


async def test_an_unreachable_database_is_storage_unavailable_quickly() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    options = DatabaseOptions.from_url("postgresql://nobody@127.0.0.1:9/none", connect_timeout=1.0)
    database = Database(options, PoolOptions(acquire_timeout=1.0))
    await database.start()
    try:
        repository = SqlTaskRepository(database)
        async with asyncio.timeout(5):
            with pytest.raises(StorageUnavailable):
                await repository.get(ALICE, 1)
            with pytest.raises(StorageUnavailable):
                await repository.add(draft(), at=T0)
        assert await database.ping(1.0) is False
    finally:
        await database.close()


async def test_pages_are_keyset_not_offset_and_served_by_the_index(engine: AsyncEngine) -> None:
    sql = _list_sql(filtered=False, after=True).text
    assert "OFFSET" not in sql.upper()
    assert "(tasks.created_at, tasks.id) > ($" in sql
    async with engine.connect() as connection:
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        raw = await connection.get_raw_connection()
        plan = await raw.driver_connection.fetch(  # type: ignore[union-attr]  # asyncpg's connection
            "EXPLAIN " + sql, "alice", T0, 1, 51
        )
    plan_text = "\n".join(row[0] for row in plan)
    assert "tasks_user_created_idx" in plan_text
    assert "ROW(tasks.created_at, tasks.id) >" in plan_text or "created_at, id) >" in plan_text


async def test_a_page_past_the_end_still_counts(repository: SqlTaskRepository) -> None:
    for n in range(2):
        await repository.add(draft(f"t{n}"), at=at(n))
    first = await repository.list(ALICE, limit=2)
    last = first.tasks[-1]
    beyond = await repository.list(
        ALICE, after=ListPosition(created_at=last.created_at, task_id=last.id)
    )
    assert (beyond.tasks, beyond.total, beyond.has_more) == ([], 2, False)

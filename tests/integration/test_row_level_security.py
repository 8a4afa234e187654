"""Row-level security: a statement that forgets its owner filter still sees only the owner's rows.

The test database is reached as a superuser (which row-level security never binds); the service's
transactions take the ``taskapi_app`` role, which it does bind. The ``engine`` fixture, as the
superuser, sees and seeds every row, so each test can check what the database holds afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

import adapters.postgres.repository as repository_module
from adapters.postgres.database import Database, PoolOptions
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.health import DatabaseHealth
from adapters.postgres.mapper import TASK_COLUMNS
from adapters.postgres.migrate import upgrade
from adapters.postgres.repository import SqlIdempotencyKeyJanitor, SqlTaskRepository
from adapters.postgres.row_security import (
    API_ROLE,
    BEGIN_AS_API,
    IDEMPOTENCY_KEY_LIFETIME,
    OWNER_SETTING,
    begin_as_owner,
)
from adapters.postgres.sql import compile_sql
from adapters.postgres.tables import IdempotencyKeyRow, TaskRow
from application.errors import StorageUnavailable
from application.ports import IdempotencyKey
from domain.task import NewTask, TaskChanges, UserId
from tests.database import create_database, drop_database

pytestmark = pytest.mark.usefixtures("clean_tasks")

ALICE = UserId("alice")
BOB = UserId("bob")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
_tasks = TaskRow.__table__  # type: ignore[attr-defined]  # SQLModel declares it at run time
_c = _tasks.c
_keys = IdempotencyKeyRow.__table__  # type: ignore[attr-defined]  # as above


async def seed(engine: AsyncEngine, owner: str, *titles: str) -> list[int]:
    """Insert tasks as the superuser (no row-level security); return their ids."""
    ids = []
    async with engine.begin() as connection:
        for title in titles:
            ids.append(
                (
                    await connection.execute(
                        text(
                            "INSERT INTO tasks (user_id, title, completed, created_at,"
                            " updated_at, version) VALUES (:owner, :title, false, :at, :at, 1)"
                            " RETURNING id"
                        ),
                        {"owner": owner, "title": title, "at": T0},
                    )
                ).scalar_one()
            )
    return ids


async def table(engine: AsyncEngine) -> list[tuple[str, str, bool, int]]:
    """Every task as the superuser sees it: (owner, title, completed, version), in id order."""
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT user_id, title, completed, version FROM tasks ORDER BY id")
        )
        return [tuple(row) for row in result]


# --- Statements with the owner filter deliberately removed ------------------------------------


async def test_a_select_without_owner_filter_sees_only_the_callers_rows(
    engine: AsyncEngine, database: Database
) -> None:
    await seed(engine, "alice", "a1", "a2")
    await seed(engine, "bob", "b1")
    async with database.transaction(begin_as_owner(ALICE)) as conn:
        seen = await conn.fetch("SELECT user_id, title FROM tasks ORDER BY id")
        counted = await conn.fetchval("SELECT count(*) FROM tasks")
    assert [tuple(row) for row in seen] == [("alice", "a1"), ("alice", "a2")]
    assert counted == 2


async def test_writes_without_owner_filter_touch_only_the_callers_rows(
    engine: AsyncEngine, database: Database
) -> None:
    await seed(engine, "alice", "a1", "a2")
    await seed(engine, "bob", "b1", "b2")
    async with database.transaction(begin_as_owner(ALICE)) as conn:
        updated = await conn.execute("UPDATE tasks SET completed = true, completed_at = now()")
    assert updated == "UPDATE 2"
    async with database.transaction(begin_as_owner(BOB)) as conn:
        deleted = await conn.execute("DELETE FROM tasks WHERE title = 'b1' OR title = 'a1'")
    assert deleted == "DELETE 1"
    assert await table(engine) == [
        ("alice", "a1", True, 1),
        ("alice", "a2", True, 1),
        ("bob", "b2", False, 1),
    ]


# The repository's own statements, rebuilt without ``user_id = $owner``: what a regression that
# dropped the filter would run.
_GET_ANY = compile_sql(select(*TASK_COLUMNS).where(_c.id == bindparam("task_id")))
_LIST_ANY = compile_sql(
    select(*TASK_COLUMNS, select(func.count()).select_from(_tasks).scalar_subquery().label("total"))
    .order_by(_c.created_at, _c.id)
    .limit(bindparam("limit"))
)
_COMPLETE_ANY = compile_sql(
    update(_tasks)
    .where(_c.id == bindparam("task_id"))
    .values(completed=True, completed_at=bindparam("at"), version=_c.version + 1)
    .returning(*TASK_COLUMNS)
)
_EDIT_ANY = compile_sql(
    update(_tasks)
    .where(_c.id == bindparam("task_id"))
    .values(title=bindparam("title"), version=_c.version + 1)
    .returning(*TASK_COLUMNS)
)
_DELETE_ANY = compile_sql(
    delete(_tasks).where(_c.id == bindparam("task_id")).returning(*TASK_COLUMNS)
)
_CURRENT_VERSION_ANY = compile_sql(select(_c.version).where(_c.id == bindparam("task_id")))


@pytest.fixture
def unfiltered_repository(monkeypatch: pytest.MonkeyPatch, database: Database) -> SqlTaskRepository:
    """The real repository, its statements swapped for ones without the owner filter."""
    monkeypatch.setattr(repository_module, "_GET", _GET_ANY)
    monkeypatch.setattr(repository_module, "_CURRENT_VERSION", _CURRENT_VERSION_ANY)
    monkeypatch.setattr(repository_module, "_list_sql", lambda _filtered, _after: _LIST_ANY)
    monkeypatch.setattr(repository_module, "_COMPLETE", dict.fromkeys((False, True), _COMPLETE_ANY))
    monkeypatch.setattr(repository_module, "_DELETE", dict.fromkeys((False, True), _DELETE_ANY))
    monkeypatch.setattr(repository_module, "_edit_sql", lambda *_shape: _EDIT_ANY)
    return SqlTaskRepository(database)


async def test_the_repository_without_owner_filters_still_cannot_reach_another_user(
    engine: AsyncEngine, unfiltered_repository: SqlTaskRepository
) -> None:
    repository = unfiltered_repository
    [bobs] = await seed(engine, "bob", "b1")
    [alices] = await seed(engine, "alice", "a1")

    assert await repository.get(ALICE, bobs) is None
    page = await repository.list(ALICE)
    assert [(task.owner, task.title) for task in page.tasks] == [("alice", "a1")]
    assert page.total == 1
    assert await repository.complete(ALICE, bobs, at=T0) is None
    assert await repository.edit(ALICE, bobs, TaskChanges(title="mine now"), at=T0) is None
    assert await repository.delete(ALICE, bobs) is False
    assert await repository.delete(ALICE, bobs, expected_versions=frozenset({1})) is False

    assert await table(engine) == [("bob", "b1", False, 1), ("alice", "a1", False, 1)]
    # The swapped statements do work, on the caller's own rows.
    got = await repository.get(ALICE, alices)
    assert got is not None
    assert got.title == "a1"
    completed = await repository.complete(ALICE, alices, at=T0)
    assert completed is not None
    assert completed.completed


async def test_as_the_api_role_a_page_is_still_served_by_the_index(database: Database) -> None:
    sql = repository_module._list_sql(filtered=False, after=True)
    async with database.transaction(begin_as_owner(ALICE)) as conn:
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await conn.fetch(
            "EXPLAIN " + sql.text,
            *sql.args(owner=ALICE, after_at=T0, after_id=1, limit=51),
        )
    plan_text = "\n".join(row[0] for row in plan)
    assert "tasks_user_created_idx" in plan_text
    assert "current_setting" in plan_text  # the policy's condition is part of the plan


async def test_an_idempotent_create_without_owner_filters_never_replays_another_users_task(
    engine: AsyncEngine, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))
    repository = SqlTaskRepository(database)
    key = IdempotencyKey(key="same-key", fingerprint="same-body")
    bobs = await repository.add(NewTask.create(owner=BOB, title="bob's"), at=T0, idempotency=key)
    keys = _keys.c
    monkeypatch.setattr(
        repository_module,
        "_KEY_RECORD",
        compile_sql(select(keys.fingerprint, keys.task).where(keys.key == bindparam("key"))),
    )
    monkeypatch.setattr(
        repository_module,
        "_KEY_TASK",
        compile_sql(
            update(_keys).where(keys.key == bindparam("key")).values(task=bindparam("task"))
        ),
    )
    alices = await repository.add(
        NewTask.create(owner=ALICE, title="alice's"), at=T0, idempotency=key
    )
    assert not alices.replayed
    assert (alices.task.owner, alices.task.title) == ("alice", "alice's")
    again = await repository.add(NewTask.create(owner=BOB, title="bob's"), at=T0, idempotency=key)
    assert again.replayed
    assert again.task == bobs.task  # bob's stored response was not overwritten by alice's
    async with engine.begin() as connection:
        stored = (
            await connection.execute(
                text("SELECT user_id, task->>'title' FROM idempotency_keys ORDER BY user_id")
            )
        ).all()
        await connection.execute(text("TRUNCATE idempotency_keys"))
    assert [tuple(row) for row in stored] == [("alice", "alice's"), ("bob", "bob's")]


async def test_readiness_needs_the_migrated_tables_under_row_level_security(
    postgres_server_url: str,
) -> None:
    url = await create_database(postgres_server_url, prefix="taskapi_readiness")
    database = Database(DatabaseOptions.from_url(url), PoolOptions(size=2))
    await database.start()
    try:
        health = DatabaseHealth(database)
        assert await health.is_ready() is False  # no tables at all
        await asyncio.to_thread(upgrade, DatabaseOptions.from_url(url), "0002")
        assert await health.is_ready() is False  # tables, no grants, no row-level security
        await asyncio.to_thread(upgrade, DatabaseOptions.from_url(url))
        assert await health.is_ready() is True
    finally:
        await database.close()
        await drop_database(postgres_server_url, url)


# --- What the policies refuse, and when -------------------------------------------------------


async def test_a_row_cannot_be_written_for_or_moved_to_another_user(
    engine: AsyncEngine, database: Database
) -> None:
    [alices] = await seed(engine, "alice", "a1")
    # Refused by the policies' WITH CHECK; the pool reports it as the database refusing (a 503
    # whose log line carries PostgreSQL's message), never as a 500.
    with pytest.raises(StorageUnavailable, match="row-level security"):
        async with database.transaction(begin_as_owner(ALICE)) as conn:
            await conn.execute(
                "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
                " VALUES ('bob', 'planted', false, now(), now(), 1)"
            )
    with pytest.raises(StorageUnavailable, match="row-level security"):
        async with database.transaction(begin_as_owner(ALICE)) as conn:
            await conn.execute("UPDATE tasks SET user_id = 'bob' WHERE id = $1", alices)
    assert await table(engine) == [("alice", "a1", False, 1)]


async def raw_connection(url: str, **server_settings: str) -> asyncpg.Connection:
    """A connection of its own (not from the pool), as the session's superuser."""
    dsn = DatabaseOptions.from_url(url).url.set(drivername="postgresql")
    return await asyncpg.connect(
        dsn.render_as_string(hide_password=False), server_settings=server_settings
    )


async def test_without_an_owner_the_api_role_sees_no_row(
    engine: AsyncEngine, direct_database_url: str
) -> None:
    await seed(engine, "alice", "a1")
    conn = await raw_connection(direct_database_url)
    try:
        # Never set on this connection yet, then set by an ended transaction of the same one.
        for set_before in (False, True):
            if set_before:
                await conn.execute(begin_as_owner(ALICE))
                assert await conn.fetchval("SELECT count(*) FROM tasks") == 1
                await conn.execute("COMMIT")
            await conn.execute(BEGIN_AS_API)
            assert await conn.fetchval("SELECT count(*) FROM tasks") == 0
            assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0
            await conn.execute("COMMIT")
        # Both settings ended with their transactions.
        assert await conn.fetchval("SELECT current_setting($1, true)", OWNER_SETTING) in {"", None}
        assert await conn.fetchval("SELECT current_user") != API_ROLE
    finally:
        await conn.close()


async def test_the_owner_and_role_hold_for_the_whole_transaction(database: Database) -> None:
    async with database.transaction(begin_as_owner(ALICE)) as conn:
        assert await conn.fetchval("SELECT current_setting($1)", OWNER_SETTING) == "alice"
        assert await conn.fetchval("SELECT current_user") == API_ROLE
        await conn.fetchval("SELECT count(*) FROM tasks")
        assert await conn.fetchval("SELECT current_setting($1)", OWNER_SETTING) == "alice"


async def test_the_api_role_is_unprivileged_and_both_tables_are_forced(
    engine: AsyncEngine, database: Database
) -> None:
    async with engine.connect() as connection:
        role = (
            await connection.execute(
                text(
                    "SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb"
                    " FROM pg_roles WHERE rolname = :role"
                ),
                {"role": API_ROLE},
            )
        ).one()
        assert tuple(role) == (False, False, False, False, False)
        # Every table the API role may touch has forced row-level security.
        reachable = (
            await connection.execute(
                text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity"
                    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
                    " AND n.nspname = current_schema()"
                    " AND has_table_privilege(:role, c.oid, 'SELECT, INSERT, UPDATE, DELETE')"
                    " ORDER BY c.relname"
                ),
                {"role": API_ROLE},
            )
        ).all()
    assert [tuple(row) for row in reachable] == [
        ("idempotency_keys", True, True),
        ("tasks", True, True),
    ]
    # And it can do nothing else: no DDL, no migrations table.
    for statement in ("DROP TABLE tasks", "SELECT * FROM alembic_version", "TRUNCATE tasks"):
        with pytest.raises(StorageUnavailable, match=r"must be owner|permission denied"):
            async with database.transaction(BEGIN_AS_API) as conn:
                await conn.execute(statement)


# --- The janitor ------------------------------------------------------------------------------


@pytest.fixture
async def keys(engine: AsyncEngine) -> AsyncIterator[Callable[[str, str, timedelta], Any]]:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))

    async def add(owner: str, key: str, age: timedelta) -> None:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at)"
                    " VALUES (:owner, :key, 'f', now() - CAST(:age AS interval))"
                ),
                {"owner": owner, "key": key, "age": age},
            )

    yield add
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))


async def test_the_janitor_can_delete_only_expired_keys_even_when_asked_for_more(
    engine: AsyncEngine, database: Database, keys: Callable[[str, str, timedelta], Any]
) -> None:
    minute = timedelta(minutes=1)
    await keys("alice", "expired", IDEMPOTENCY_KEY_LIFETIME + minute)
    await keys("bob", "expired", IDEMPOTENCY_KEY_LIFETIME + minute)
    await keys("alice", "live", IDEMPOTENCY_KEY_LIFETIME - minute)
    # A janitor whose clock is a week fast thinks every key expired; the policy still holds.
    purged = await SqlIdempotencyKeyJanitor(database).purge(datetime.now(UTC) + timedelta(days=7))
    assert purged == 2
    async with engine.connect() as connection:
        left = (await connection.execute(text("SELECT user_id, key FROM idempotency_keys"))).all()
    assert [tuple(row) for row in left] == [("alice", "live")]


async def test_an_owner_cannot_see_another_users_keys(
    database: Database, keys: Callable[[str, str, timedelta], Any]
) -> None:
    await keys("bob", "k", timedelta(0))
    await keys("bob", "old", IDEMPOTENCY_KEY_LIFETIME * 2)  # the janitor's, not alice's
    async with database.transaction(begin_as_owner(ALICE)) as conn:
        assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0
        assert await conn.execute("DELETE FROM idempotency_keys") == "DELETE 0"


# --- The owner's id reaches PostgreSQL exactly, whatever it holds ------------------------------

HOSTILE_OWNERS = [
    "o'brien",
    "back\\slash",
    "\\'; DROP TABLE tasks; --",
    "'' OR ''=''",
    "E'x'",
    "$$",
    "名前 🙂",
    "x" * 255,
]


@pytest.mark.parametrize("conforming", ["on", "off"])
@pytest.mark.parametrize("owner", HOSTILE_OWNERS)
async def test_hostile_owner_ids_are_set_verbatim_whatever_the_string_settings(
    engine: AsyncEngine, direct_database_url: str, owner: str, conforming: str
) -> None:
    await seed(engine, owner, "theirs")
    await seed(engine, owner[:-1] or "other", "a near miss")
    conn = await raw_connection(direct_database_url, standard_conforming_strings=conforming)
    try:
        await conn.execute(begin_as_owner(owner))
        assert await conn.fetchval("SELECT current_setting($1)", OWNER_SETTING) == owner
        rows = await conn.fetch("SELECT user_id, title FROM tasks")
        assert [tuple(row) for row in rows] == [(owner, "theirs")]
        await conn.execute("COMMIT")
    finally:
        await conn.close()
    assert len(await table(engine)) == 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    owner=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1),
    conforming=st.sampled_from(["on", "off"]),
)
async def test_any_owner_id_is_set_verbatim(
    direct_database_url: str, owner: str, conforming: str
) -> None:
    conn = await raw_connection(direct_database_url, standard_conforming_strings=conforming)
    try:
        await conn.execute(begin_as_owner(owner))
        assert await conn.fetchval("SELECT current_setting($1)", OWNER_SETTING) == owner
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()


def test_a_nul_cannot_be_an_owner() -> None:
    with pytest.raises(ValueError, match="NUL"):
        begin_as_owner("a\x00b")


# --- A login role that may not take the API role ------------------------------------------------


async def test_a_login_role_without_the_api_role_is_unavailable_until_granted(
    engine: AsyncEngine, outsider: tuple[str, str]
) -> None:
    name, url = outsider
    database = Database(DatabaseOptions.from_url(url), PoolOptions(size=2))
    await database.start()
    try:
        repository = SqlTaskRepository(database)
        with pytest.raises(
            StorageUnavailable, match="the database refused: permission denied to set role"
        ):
            await repository.get(ALICE, 1)
        assert await database.ping(2.0, BEGIN_AS_API) is False
        async with engine.begin() as connection:
            await connection.execute(text(f"GRANT {API_ROLE} TO {name}"))
        # As the README says: granting the role is all it takes, no restart.
        assert await database.ping(2.0, BEGIN_AS_API) is True
        assert await repository.get(ALICE, 1) is None
    finally:
        await database.close()
        async with engine.begin() as connection:
            await connection.execute(text(f"REVOKE {API_ROLE} FROM {name}"))

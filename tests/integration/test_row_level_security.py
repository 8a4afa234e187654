"""Row-level security: a statement that forgets its owner filter still sees only the owner's rows.

The test database is reached as a superuser (which row-level security never binds); the service's
transactions take the ``taskapi_app`` role, which it does bind. The ``engine`` fixture, as the
superuser, sees and seeds every row, so each test can check what the database holds afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from asyncpg.pool import PoolConnectionProxy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import Database, PoolOptions
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.functions import FUNCTIONS, GET_TASK, LIST_TASKS
from adapters.postgres.health import DatabaseHealth
from adapters.postgres.migrate import upgrade
from adapters.postgres.repository import (
    SqlIdempotencyKeyJanitor,
    SqlTaskRepository,
    SqlTombstoneJanitor,
)
from adapters.postgres.row_security import (
    API_ROLE,
    BEGIN_AS_API,
    IDEMPOTENCY_KEY_LIFETIME,
    OWNER_SETTING,
)
from adapters.postgres.streams import SqlStreamSlots
from application.errors import StorageUnavailable
from application.listing import SortField, SortOrder, TaskFilter
from application.ports import IdempotencyKey
from application.sync import Deletion, FeedPosition, Upsert
from domain.task import NewTask, Priority, Task, UserId
from tests.database import create_database, drop_database
from tests.integration.test_repository import explain_nested, list_call

pytestmark = pytest.mark.usefixtures("clean_tasks")

ALICE = UserId("alice")
BOB = UserId("bob")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def as_owner(database: Database, owner: str) -> AsyncIterator[PoolConnectionProxy[Any]]:
    """A transaction as the API role with ``owner`` set, as the functions' bodies run."""
    async with database.transaction(BEGIN_AS_API) as conn:
        await conn.execute("SELECT set_config($1, $2, true)", OWNER_SETTING, owner)
        yield conn


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
    async with as_owner(database, ALICE) as conn:
        seen = await conn.fetch("SELECT user_id, title FROM tasks ORDER BY id")
        counted = await conn.fetchval("SELECT count(*) FROM tasks")
    assert [tuple(row) for row in seen] == [("alice", "a1"), ("alice", "a2")]
    assert counted == 2


async def test_writes_without_owner_filter_touch_only_the_callers_rows(
    engine: AsyncEngine, database: Database
) -> None:
    await seed(engine, "alice", "a1", "a2")
    await seed(engine, "bob", "b1", "b2")
    async with as_owner(database, ALICE) as conn:
        updated = await conn.execute(
            "UPDATE tasks SET completed = true, completed_at = now(), version = version + 1"
        )
    assert updated == "UPDATE 2"
    async with as_owner(database, BOB) as conn:
        deleted = await conn.execute("DELETE FROM tasks WHERE title = 'b1' OR title = 'a1'")
    assert deleted == "DELETE 1"
    assert await table(engine) == [
        ("alice", "a1", True, 2),
        ("alice", "a2", True, 2),
        ("bob", "b2", False, 1),
    ]


# The repository's own functions, recreated without ``user_id = p_owner`` in their statements:
# what a regression that dropped the filter would run. They live in a schema of their own, found
# first on the search path of a pool of their own.
UNFILTERED_SCHEMA = "taskapi_unfiltered"
_OWNER_FILTER = re.compile(r"\b(\w+\.)?user_id = (p_owner|\$1)\b")


def without_owner_filters(ddl: str) -> str:
    stripped = _OWNER_FILTER.sub("true", ddl)  # "WHERE true AND …": the same, unfiltered
    assert "user_id = p_owner" not in stripped
    return stripped


@pytest.fixture
async def unfiltered_database(
    engine: AsyncEngine, direct_database_url: str
) -> AsyncIterator[Database]:
    """A pool whose calls reach functions whose statements lack the owner filter."""
    # Every function filters by owner (the insert in its count of the owner's tasks; its INSERT
    # has no WHERE, and the policy checks the row).
    assert all(_OWNER_FILTER.search(function.ddl()) for function in FUNCTIONS)
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE SCHEMA {UNFILTERED_SCHEMA}"))
        await connection.execute(text(f"SET LOCAL search_path = {UNFILTERED_SCHEMA}, public"))
        for function in FUNCTIONS:
            await connection.execute(text(without_owner_filters(function.ddl())))
    options = DatabaseOptions.from_url(direct_database_url)
    connect_args = options.connect_args | {
        "server_settings": {"search_path": f"{UNFILTERED_SCHEMA}, public"}
    }
    database = Database(DatabaseOptions(url=options.url, connect_args=connect_args))
    await database.start()
    try:
        yield database
    finally:
        await database.close()
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP SCHEMA {UNFILTERED_SCHEMA} CASCADE"))
            await connection.execute(text("TRUNCATE idempotency_keys"))


@pytest.fixture
def unfiltered_repository(unfiltered_database: Database) -> SqlTaskRepository:
    """The real repository on that pool."""
    return SqlTaskRepository(unfiltered_database)


async def test_the_unfiltered_functions_are_the_ones_called(unfiltered_database: Database) -> None:
    for function in FUNCTIONS:
        [row] = await unfiltered_database.fetch(
            "SELECT pg_get_functiondef(to_regprocedure($1))", function.signature
        )
        assert f"{UNFILTERED_SCHEMA}.{function.name}" in row[0]
        assert "user_id = p_owner" not in row[0]


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
    bobs_task = await repository.get(BOB, bobs)
    assert bobs_task is not None
    hijacked = Task(
        id=bobs,
        owner=ALICE,
        title="mine now",
        description=None,
        completed=True,
        completed_at=T0,
        created_at=T0,
        updated_at=T0,
        version=2,
    )
    assert await repository.save(hijacked, expected_version=1) is None
    assert await repository.delete(ALICE, bobs) is False
    assert await repository.delete(ALICE, bobs, expected_versions=frozenset({1})) is False
    assert await repository.delete(ALICE, bobs, expected_versions=frozenset({7})) is False

    assert await table(engine) == [("bob", "b1", False, 1), ("alice", "a1", False, 1)]
    # The unfiltered functions do work, on the caller's own rows.
    got = await repository.get(ALICE, alices)
    assert got is not None
    assert got.title == "a1"
    completed = await repository.save(got.complete(at=T0), expected_version=1)
    assert completed is not None
    assert completed.completed
    assert await repository.get(BOB, bobs) == bobs_task


async def test_as_the_api_role_a_page_is_still_served_by_the_index(database_url: str) -> None:
    call = list_call(ALICE, after_id=1, after_at=T0)
    plans = await explain_nested(database_url, LIST_TASKS.call, *call)
    [page] = [p for p in plans.split("Query Text:") if "FROM tasks WHERE" in p and "ORDER BY" in p]
    assert "Index Scan using tasks_user_created_idx on tasks " in page
    assert "current_setting" in page  # the policy's condition is part of the plan


async def test_no_filter_search_sort_or_tag_count_reaches_another_user_without_owner_filters(
    engine: AsyncEngine, unfiltered_repository: SqlTaskRepository
) -> None:
    repository = unfiltered_repository
    due = datetime(2026, 12, 24, 16, tzinfo=UTC)
    for owner in (BOB, ALICE):  # bob's first: his rows would lead every order
        await repository.add(
            NewTask.create(
                owner=owner,
                title=f"milk for {owner}",
                description="organic",
                due_at=due,
                priority=Priority.HIGH,
                tags=["home", owner],
            ),
            at=T0,
        )
    wheres = [
        TaskFilter(),
        TaskFilter.create(completed=False, priorities=[Priority.HIGH], tags=["home"]),
        TaskFilter.create(due_before=due + timedelta(days=1), due_after=due, q="MILK organic"),
    ]
    for where, field, descending in itertools.product(wheres, SortField, (False, True)):
        page = await repository.list(ALICE, where=where, order=SortOrder(field, descending))
        assert [task.owner for task in page.tasks] == [ALICE], (where, field)
        assert page.total == 1
    assert [(t.tag, t.count) for t in await repository.tags(ALICE)] == [("alice", 1), ("home", 1)]


async def test_the_change_feed_without_owner_filters_shows_only_the_callers_changes(
    unfiltered_repository: SqlTaskRepository,
) -> None:
    repository = unfiltered_repository
    bobs = (await repository.add(NewTask.create(owner=BOB, title="bob's"), at=T0)).task
    start = await repository.changes(ALICE, after=None, limit=100)
    assert start.changes == []
    assert start.latest == 0  # bob's place is not alice's
    assert await repository.delete(BOB, bobs.id)
    await repository.add(NewTask.create(owner=BOB, title="bob's again"), at=T0)
    mine = (await repository.add(NewTask.create(owner=ALICE, title="mine"), at=T0)).task
    after = await repository.changes(ALICE, after=FeedPosition(-1, 0, 0, T0), limit=100)
    assert [c.task.id for c in after.changes if isinstance(c, Upsert)] == [mine.id]
    assert not any(isinstance(c, Deletion) for c in after.changes)  # nor bob's tombstone


async def test_an_idempotent_create_without_owner_filters_never_replays_another_users_task(
    engine: AsyncEngine, unfiltered_repository: SqlTaskRepository
) -> None:
    repository = unfiltered_repository
    key = IdempotencyKey(key="same-key", fingerprint="same-body")
    bobs = await repository.add(NewTask.create(owner=BOB, title="bob's"), at=T0, idempotency=key)
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
    assert [tuple(row) for row in stored] == [("alice", "alice's"), ("bob", "bob's")]


async def test_stream_places_without_owner_filters_count_and_free_only_the_callers(
    engine: AsyncEngine, unfiltered_database: Database
) -> None:
    slots = SqlStreamSlots(unfiltered_database)
    bobs = [uuid4(), uuid4()]
    for stream in bobs:
        assert await slots.take(BOB, stream, most=2, lease_seconds=30)
    alices = uuid4()
    assert await slots.take(ALICE, alices, most=2, lease_seconds=30)  # bob's two are not hers
    await slots.give_back(ALICE, bobs[0])  # no filter: still only her rows are reachable
    assert await slots.keep([(ALICE, bobs[1])], lease_seconds=300) == [bobs[1]]  # not hers
    async with engine.begin() as connection:
        leases = (
            await connection.execute(
                text(
                    "SELECT user_id, stream_id, until > now() + interval '1 minute'"
                    " FROM task_streams"
                )
            )
        ).all()
    assert sorted(tuple(row) for row in leases) == sorted(
        [
            ("alice", alices, False),
            ("bob", bobs[0], False),
            ("bob", bobs[1], False),
        ]
    )


async def test_readiness_needs_the_migrated_tables_under_row_level_security(
    postgres_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = await create_database(postgres_server_url, prefix="taskapi_readiness")
    database = Database(DatabaseOptions.from_url(url), PoolOptions(size=2))
    await database.start()
    try:
        health = DatabaseHealth(database)
        caplog.set_level(logging.INFO, logger="taskapi")

        def reasons() -> list[str | None]:
            said = [getattr(r, "reason", None) for r in caplog.records if r.name == "taskapi"]
            caplog.clear()
            return said

        assert await health.is_ready() is False  # no tables at all
        assert await health.is_ready() is False
        [reason] = reasons()  # said once, not on every probe
        assert reason is not None
        assert 'relation "tasks" does not exist' in reason
        assert reason.endswith("(not migrated? run `taskapi migrate`)")
        await asyncio.to_thread(upgrade, DatabaseOptions.from_url(url), "0002")
        assert await health.is_ready() is False  # tables, no grants, no row-level security
        assert reasons() == [
            "the API role cannot use the tables or the functions (run `taskapi migrate`)"
        ]
        await asyncio.to_thread(upgrade, DatabaseOptions.from_url(url), "0003")
        assert await health.is_ready() is False  # row-level security, no functions to call
        assert reasons() == []  # the same reason: not said again
        with pytest.raises(StorageUnavailable, match=r"(?s)does not exist.*run `taskapi migrate`"):
            await SqlTaskRepository(database).get(ALICE, 1)
        await asyncio.to_thread(upgrade, DatabaseOptions.from_url(url))
        assert await health.is_ready() is True
        assert [r.getMessage() for r in caplog.records if r.name == "taskapi"] == ["ready"]
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
        async with as_owner(database, ALICE) as conn:
            await conn.execute(
                "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
                " VALUES ('bob', 'planted', false, now(), now(), 1)"
            )
    with pytest.raises(StorageUnavailable, match="row-level security"):
        async with as_owner(database, ALICE) as conn:
            await conn.execute(
                "UPDATE tasks SET user_id = 'bob', version = version + 1 WHERE id = $1", alices
            )
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
    [alices] = await seed(engine, "alice", "a1")
    conn = await raw_connection(direct_database_url)
    try:
        # Never set on this connection yet, then set by a call (its own transaction) that ended.
        for set_before in (False, True):
            if set_before:
                assert len(await conn.fetch(GET_TASK.call, ALICE, alices)) == 1
            await conn.execute(BEGIN_AS_API)
            assert await conn.fetchval("SELECT count(*) FROM tasks") == 0
            assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0
            await conn.execute("COMMIT")
        # Both settings ended with their transactions.
        assert await conn.fetchval("SELECT current_setting($1, true)", OWNER_SETTING) in {"", None}
        assert await conn.fetchval("SELECT current_user") != API_ROLE
    finally:
        await conn.close()


async def test_a_call_takes_the_role_for_itself_and_the_owner_for_its_transaction(
    direct_database_url: str,
) -> None:
    conn = await raw_connection(direct_database_url)
    try:
        login = await conn.fetchval("SELECT current_user")
        await conn.execute("BEGIN")
        await conn.fetch(GET_TASK.call, ALICE, 1)
        # The role ended with the function; the owner lasts to the end of the transaction.
        assert await conn.fetchval("SELECT current_user") == login != API_ROLE
        assert await conn.fetchval("SELECT current_setting($1)", OWNER_SETTING) == "alice"
        await conn.execute("COMMIT")
        assert await conn.fetchval("SELECT current_setting($1, true)", OWNER_SETTING) in {"", None}
    finally:
        await conn.close()


async def test_the_api_role_is_unprivileged_and_every_table_is_forced(
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
        ("task_change_horizon", True, True),
        ("task_counts", True, True),
        ("task_streams", True, True),
        ("task_tombstones", True, True),
        ("task_watches", True, True),
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


async def test_the_janitor_purges_only_expired_tombstones_and_nothing_moves_the_horizon(
    engine: AsyncEngine, database: Database, clean_tasks: None
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO task_tombstones (task_id, user_id, deleted_at, change_seq) VALUES"
                " (1, 'alice', now() - interval '32 days', 10),"
                " (2, 'bob', now() - interval '32 days', 11),"
                " (3, 'alice', now() - interval '30 days', 12),"
                " (4, 'bob', now() - interval '1 day', 13)"
            )
        )
        horizon = await connection.scalar(text("SELECT starts_after FROM task_change_horizon"))
    # A janitor whose clock is a week fast thinks every tombstone expired; the policy still holds.
    purged = await SqlTombstoneJanitor(database).purge(datetime.now(UTC) + timedelta(days=7))
    assert purged == 2
    async with engine.connect() as connection:
        left = (await connection.execute(text("SELECT task_id FROM task_tombstones"))).all()
    assert sorted(tuple(row) for row in left) == [(3,), (4,)]
    async with as_owner(database, ALICE) as conn:
        assert await conn.fetchval("SELECT starts_after FROM task_change_horizon") == horizon
        # Erasing a user deletes their tombstones; never another user's.
        assert await conn.execute("DELETE FROM task_tombstones") == "DELETE 1"
    with pytest.raises(StorageUnavailable, match="permission denied"):
        async with as_owner(database, ALICE) as conn:
            await conn.execute("UPDATE task_change_horizon SET starts_after = 0")
    async with engine.connect() as connection:
        left = (await connection.execute(text("SELECT task_id FROM task_tombstones"))).all()
    assert [tuple(row) for row in left] == [(4,)]


async def test_an_owner_cannot_see_another_users_keys(
    database: Database, keys: Callable[[str, str, timedelta], Any]
) -> None:
    await keys("bob", "k", timedelta(0))
    await keys("bob", "old", IDEMPOTENCY_KEY_LIFETIME * 2)  # the janitor's, not alice's
    async with as_owner(database, ALICE) as conn:
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


@pytest.mark.parametrize("owner", HOSTILE_OWNERS)
async def test_hostile_owner_ids_reach_exactly_their_rows(
    engine: AsyncEngine, unfiltered_repository: SqlTaskRepository, owner: str
) -> None:
    await seed(engine, owner, "theirs")
    await seed(engine, owner[:-1] or "other", "a near miss")
    # No owner filter in the statement: only the owner set by the function decides.
    page = await unfiltered_repository.list(UserId(owner))
    assert [(task.owner, task.title) for task in page.tasks] == [(owner, "theirs")]
    assert len(await table(engine)) == 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(owner=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1))
async def test_any_owner_id_is_set_verbatim(direct_database_url: str, owner: str) -> None:
    conn = await raw_connection(direct_database_url)
    try:
        await conn.execute("BEGIN")
        await conn.fetch(GET_TASK.call, owner, 1)
        assert await conn.fetchval("SELECT current_setting($1)", OWNER_SETTING) == owner
        await conn.execute("ROLLBACK")
    finally:
        await conn.close()


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
        # As docs/architecture.md says: granting the role is all it takes, no restart.
        assert await database.ping(2.0, BEGIN_AS_API) is True
        assert await repository.get(ALICE, 1) is None
    finally:
        await database.close()
        async with engine.begin() as connection:
            await connection.execute(text(f"REVOKE {API_ROLE} FROM {name}"))

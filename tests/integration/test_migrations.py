"""The Alembic migrations, up and down, on a fresh database; and that they match the model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, make_url, text

from adapters.clock import SystemClock
from adapters.postgres.database import Database
from adapters.postgres.engine import DatabaseOptions, create_unpooled_engine
from adapters.postgres.functions import FUNCTIONS
from adapters.postgres.migrate import alembic_config, downgrade, upgrade
from adapters.postgres.repository import SqlTaskRepository
from adapters.postgres.tables import metadata
from application.sync import SyncTokenExpired
from application.tasks import ListChanges
from domain.task import NewTask, UserId
from tests.database import create_database, drop_database


@pytest.fixture
async def fresh_database(postgres_server_url: str) -> AsyncIterator[str]:
    url = await create_database(postgres_server_url, prefix="taskapi_migrations")
    yield url
    await drop_database(postgres_server_url, url)


async def _tables(url: str) -> set[str]:
    engine = create_unpooled_engine(DatabaseOptions.from_url(url))
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def _has_version_trigger(url: str) -> bool:
    engine = create_unpooled_engine(DatabaseOptions.from_url(url))
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT count(*) FROM pg_trigger WHERE tgname = 'tasks_version_grows'")
            )
            return bool(found)
    finally:
        await engine.dispose()


async def _functions(url: str) -> set[str]:
    """The repository's functions present in the database, by signature."""
    engine = create_unpooled_engine(DatabaseOptions.from_url(url))
    try:
        async with engine.connect() as connection:
            return {
                function.signature
                for function in FUNCTIONS
                if await connection.scalar(
                    text("SELECT to_regprocedure(:signature) IS NOT NULL"),
                    {"signature": function.signature},
                )
            }
    finally:
        await engine.dispose()


async def test_upgrade_downgrade_upgrade(fresh_database: str) -> None:
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options)
    assert {"tasks", "alembic_version"} <= await _tables(fresh_database)
    assert await _functions(fresh_database) == {function.signature for function in FUNCTIONS}
    assert await _has_version_trigger(fresh_database)
    await asyncio.to_thread(downgrade, options, "0004")
    assert not await _has_version_trigger(fresh_database)
    await asyncio.to_thread(downgrade, options, "0003")
    assert await _functions(fresh_database) == set()
    assert "tasks" in await _tables(fresh_database)
    await asyncio.to_thread(downgrade, options, "base")
    assert "tasks" not in await _tables(fresh_database)
    await asyncio.to_thread(upgrade, options)
    assert "tasks" in await _tables(fresh_database)
    assert await _functions(fresh_database) == {function.signature for function in FUNCTIONS}


async def test_tasks_stored_before_rich_tasks_survive_the_upgrade_and_the_downgrade(
    fresh_database: str,
) -> None:
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options, "0006")
    engine = create_unpooled_engine(options)
    insert = text(
        "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version)"
        " SELECT 'alice', 'Old Task ' || n, false, now(), now(), 3 FROM generate_series(1, 25) n"
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(insert)
        await asyncio.to_thread(upgrade, options)  # backfills title_key
        async with engine.connect() as connection:
            query = (
                "SELECT title, title_key, due_at, priority, tags, version, change_seq FROM tasks"
            )
            rows = (await connection.execute(text(query))).all()
            invalid = await connection.scalar(
                text("SELECT count(*) FROM pg_constraint WHERE NOT convalidated")
            )
        assert len(rows) == 25
        for title, title_key, due_at, priority, tags, version, change_seq in rows:
            assert (title_key, due_at, priority, tags) == (title.lower(), None, 0, [])
            assert change_seq == 0  # stored before the feed: first syncs list them by id
            assert version == 3  # filling in the sort key is not a change of the task
        assert invalid == 0
        async with engine.connect() as connection:
            counts = (await connection.execute(text("SELECT * FROM task_counts"))).all()
        assert [tuple(row) for row in counts] == [("alice", 25)]
        await asyncio.to_thread(downgrade, options, "0006")
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM tasks")) == 25
    finally:
        await engine.dispose()


def test_the_frozen_functions_are_what_the_statements_generate() -> None:
    # Migrations freeze the functions' DDL (0004 and 0006 to 0011 each replaced or added some); the
    # statements they came from live on in code. When they drift, print the new DDL (python -m
    # adapters.postgres.functions) and freeze it in a new migration, listed here.
    options = DatabaseOptions.from_url("postgresql://unused@localhost/unused")
    scripts = ScriptDirectory.from_config(alembic_config(options))
    ddl: dict[str, str] = {}
    signatures: dict[str, str] = {}
    for revision in ("0004", "0006", "0007", "0008", "0009", "0010", "0011"):
        script = scripts.get_revision(revision)
        assert script is not None
        for text_of in script.module.FUNCTIONS:
            ddl[text_of.split("(", 1)[0].rsplit(" ", 1)[-1]] = text_of
        for signature in script.module.SIGNATURES:
            signatures[signature.split("(", 1)[0]] = signature
    assert {function.name: function.ddl() for function in FUNCTIONS} == ddl
    assert {function.name: function.signature for function in FUNCTIONS} == signatures


async def test_the_check_constraints_are_the_models(database_url: str) -> None:
    # Alembic's comparison skips CHECK constraints: build the model's tables in a scratch schema
    # and compare PostgreSQL's own rendering of both sets.
    query = text(
        "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'c' AND n.nspname = :schema ORDER BY c.conname"
    )
    engine = create_unpooled_engine(DatabaseOptions.from_url(database_url))
    try:
        async with engine.connect() as connection:
            migrated = (await connection.execute(query, {"schema": "public"})).all()
            await connection.execute(text("CREATE SCHEMA model_check"))
            await connection.execute(text("SET LOCAL search_path = model_check"))
            await connection.run_sync(metadata.create_all)
            modelled = (await connection.execute(query, {"schema": "model_check"})).all()
            await connection.rollback()
    finally:
        await engine.dispose()
    assert migrated
    assert migrated == modelled


async def test_upgrade_twice_is_harmless(fresh_database: str) -> None:
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options)
    await asyncio.to_thread(upgrade, options)
    assert "tasks" in await _tables(fresh_database)


async def test_the_migrated_schema_matches_the_table_model(database_url: str) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    engine = create_unpooled_engine(DatabaseOptions.from_url(database_url))
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(diff) == []
    finally:
        await engine.dispose()


async def test_the_owners_listing_is_served_by_the_index(database_url: str) -> None:
    engine = create_unpooled_engine(DatabaseOptions.from_url(database_url))
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SET LOCAL enable_seqscan = off"))
            await connection.execute(text("SET LOCAL enable_sort = off"))
            plan = (
                await connection.execute(
                    text(
                        "EXPLAIN SELECT * FROM tasks WHERE user_id = 'alice'"
                        " ORDER BY created_at, id LIMIT 50"
                    )
                )
            ).scalars()
            assert "tasks_user_created_idx" in "\n".join(plan)
    finally:
        await engine.dispose()


async def test_migrations_run_without_the_apis_statement_timeout(database_url: str) -> None:
    # A backfill or an index build on a large table takes as long as it takes.
    options = DatabaseOptions.from_url(database_url, statement_timeout=0.2)
    engine = create_unpooled_engine(options)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT 1 FROM pg_sleep(0.5)")) == 1
    finally:
        await engine.dispose()


async def test_the_previous_versions_calls_keep_working_through_the_change_feed_migration(
    fresh_database: str,
) -> None:
    # Replicas of the previous version run on while 0008 is applied: the functions they call keep
    # their signatures, and statements they prepared before it are prepared again by the driver.
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options, "0007")
    database = Database(options)
    await database.start()
    try:
        repository = SqlTaskRepository(database)
        owner = UserId("alice")
        at = datetime(2026, 11, 30, tzinfo=UTC)
        before = (await repository.add(NewTask.create(owner=owner, title="before"), at=at)).task
        assert [t.title for t in (await repository.list(owner)).tasks] == ["before"]
        await asyncio.to_thread(upgrade, options)
        after = (await repository.add(NewTask.create(owner=owner, title="after"), at=at)).task
        assert [t.title for t in (await repository.list(owner)).tasks] == ["before", "after"]
        assert await repository.get(owner, before.id) == before
        done = await repository.save(before.complete(at=at), expected_version=1)
        assert done is not None
        assert await repository.delete(owner, after.id)
        feed = await repository.changes(owner, after=None, limit=10)
        assert [c.seq > 0 for c in feed.changes] == [True]  # completed after 0008: a place
    finally:
        await database.close()


async def test_a_sync_token_from_before_a_downgrade_expires_after_the_upgrade(
    fresh_database: str,
) -> None:
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options)
    database = Database(options)
    await database.start()
    try:
        feed = ListChanges(SqlTaskRepository(database), SystemClock())
        owner = UserId("alice")
        at = datetime(2026, 11, 30, tzinfo=UTC)
        await SqlTaskRepository(database).add(NewTask.create(owner=owner, title="a"), at=at)
        kept = (await feed.execute(owner, since=None)).end
        await asyncio.to_thread(downgrade, options, "0007")
        await asyncio.to_thread(upgrade, options)
        with pytest.raises(SyncTokenExpired):
            await feed.execute(owner, since=kept)
        assert len((await feed.execute(owner, since=None)).changes) == 1  # starting over works
    finally:
        await database.close()


async def test_the_change_feed_migration_runs_again_after_failing_at_its_index(
    fresh_database: str,
) -> None:
    # Its index is built CONCURRENTLY after the rest has committed: a failure there leaves
    # Alembic at 0007 with the rest in place, and an invalid index. Running it again must work.
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options)
    engine = create_unpooled_engine(options)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE alembic_version SET version_num = '0007'"))
            await connection.execute(  # what a failed CONCURRENTLY build leaves
                text(
                    "UPDATE pg_index SET indisvalid = false"
                    " WHERE indexrelid = 'tasks_user_change_idx'::regclass"
                )
            )
        await asyncio.to_thread(upgrade, options)
        async with engine.connect() as connection:
            valid = await connection.scalar(
                text(
                    "SELECT indisvalid FROM pg_index"
                    " WHERE indexrelid = 'tasks_user_change_idx'::regclass"
                )
            )
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()
    assert valid is True
    assert version == ScriptDirectory.from_config(alembic_config(options)).get_current_head()


async def test_the_rich_tasks_migration_stops_before_any_change_for_a_role_rls_binds(
    fresh_database: str,
) -> None:
    # Its backfill runs after its first statements have committed, and needs every row: as the
    # tables' owner without BYPASSRLS (row-level security is forced on tasks) it must fail
    # before changing anything, and then run (and run again) once a role that may is used.
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options, "0006")
    owner = "taskapi_migrations_bound_owner"
    engine = create_unpooled_engine(options)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f"DROP ROLE IF EXISTS {owner}"))
            await connection.execute(text(f"CREATE ROLE {owner} NOLOGIN NOBYPASSRLS"))
            for table in ("tasks", "alembic_version"):
                await connection.execute(text(f"ALTER TABLE {table} OWNER TO {owner}"))
        url = make_url(fresh_database).update_query_dict({"options": f"-c role={owner}"})
        bound = DatabaseOptions.from_url(url.render_as_string(hide_password=False))
        with pytest.raises(Exception, match="row-level security"):
            await asyncio.to_thread(upgrade, bound, "0007")
        async with engine.begin() as connection:
            columns = await connection.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns("tasks")}
            )
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            for table in ("tasks", "alembic_version"):
                await connection.execute(text(f"ALTER TABLE {table} OWNER TO current_user"))
            await connection.execute(text(f"DROP ROLE {owner}"))
        assert "due_at" not in columns
        assert version == "0006"
        await asyncio.to_thread(upgrade, options, "0007")
        async with engine.begin() as connection:  # as if it had failed at an index's build
            await connection.execute(text("UPDATE alembic_version SET version_num = '0006'"))
            await connection.execute(
                text(
                    "UPDATE pg_index SET indisvalid = false"
                    " WHERE indexrelid = 'tasks_user_due_idx'::regclass"
                )
            )
        await asyncio.to_thread(upgrade, options, "0007")
        async with engine.connect() as connection:
            version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            invalid = await connection.scalar(
                text("SELECT count(*) FROM pg_constraint WHERE NOT convalidated")
            )
            broken = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_index"
                    " WHERE indrelid = 'tasks'::regclass AND NOT indisvalid"
                )
            )
        assert (version, invalid, broken) == ("0007", 0, 0)
    finally:
        await engine.dispose()


async def test_tags_stored_decomposed_are_composed_as_a_change_of_their_task(
    fresh_database: str,
) -> None:
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options, "0011")
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    engine = create_unpooled_engine(options)
    insert = text(
        "INSERT INTO tasks (user_id, title, completed, created_at, updated_at, version, tags)"
        " VALUES ('alice', :title, false, :at, :at, 4, :tags)"
    )
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            for title, tags in [
                ("decomposed", ["zoo", decomposed, composed]),
                ("composed", [composed, "zoo"]),
                ("untagged", []),
            ]:
                await connection.execute(insert, {"title": title, "tags": tags, "at": long_ago})
            query = text("SELECT title, change_seq FROM tasks")
            before: dict[str, int] = dict((await connection.execute(query)).all())
        await asyncio.to_thread(upgrade, options)
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT title, tags, version, updated_at, change_seq FROM tasks")
            )
            after = {row.title: row for row in rows}
        changed = after["decomposed"]
        # Collapsed with its composed twin, in code point order; a change devices sync.
        assert (changed.tags, changed.version) == ([composed, "zoo"], 5)
        assert changed.updated_at > long_ago
        assert changed.change_seq > before["decomposed"]
        for title in ("composed", "untagged"):  # already composed: not written
            kept = after[title]
            assert (kept.version, kept.updated_at, kept.change_seq) == (
                4,
                long_ago,
                before[title],
            )
        assert after["composed"].tags == [composed, "zoo"]
        await asyncio.to_thread(downgrade, options, "0011")
        async with engine.connect() as connection:
            assert await connection.scalar(text("SELECT count(*) FROM tasks")) == 3
    finally:
        await engine.dispose()

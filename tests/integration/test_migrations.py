"""The Alembic migrations, up and down, on a fresh database; and that they match the model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from adapters.postgres.engine import DatabaseOptions, create_unpooled_engine
from adapters.postgres.migrate import downgrade, upgrade
from adapters.postgres.tables import metadata
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


async def test_upgrade_downgrade_upgrade(fresh_database: str) -> None:
    options = DatabaseOptions.from_url(fresh_database)
    await asyncio.to_thread(upgrade, options)
    assert {"tasks", "alembic_version"} <= await _tables(fresh_database)
    await asyncio.to_thread(downgrade, options, "base")
    assert "tasks" not in await _tables(fresh_database)
    await asyncio.to_thread(upgrade, options)
    assert "tasks" in await _tables(fresh_database)


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

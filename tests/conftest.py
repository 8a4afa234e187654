"""Fixtures shared by the integration and end-to-end tests: one real PostgreSQL per session.

Unit tests request none of these, so they run without any database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.engine import DatabaseOptions, create_engine
from adapters.postgres.migrate import upgrade
from tests.database import create_database, drop_database, postgres_server


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's PostgreSQL server (its maintenance database)."""
    with postgres_server(Path(tmp_path_factory.mktemp("pg"))) as (url, source):
        print(f"\ntests: PostgreSQL from {source}")  # noqa: T201  # shown with -s, says which path ran
        yield url


@pytest.fixture(scope="session")
async def database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh database, migrated to head, for this test session."""
    url = await create_database(postgres_server_url)
    # Alembic's env runs its own event loop: keep it off this one.
    await asyncio.to_thread(upgrade, DatabaseOptions.from_url(url))
    yield url
    await drop_database(postgres_server_url, url)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A pooled engine on the session database."""
    created = create_engine(DatabaseOptions.from_url(database_url))
    yield created
    await created.dispose()


@pytest.fixture
async def clean_tasks(engine: AsyncEngine) -> None:
    """Start each test on an empty ``tasks`` table."""
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE tasks RESTART IDENTITY"))

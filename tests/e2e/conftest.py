"""The HTTP API, built by the real ``create_app()``, on the session's PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bootstrap.app import create_app
from bootstrap.settings import Settings
from tests.tokens import SECRET


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings as the environment would give them, without reading the environment."""
    values: dict[str, Any] = {"database_url": database_url, "jwt_secret": SECRET, **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture
def app_factory(database_url: str) -> Callable[..., FastAPI]:
    """Build an app with settings overrides (e.g. ``jwt_audience="x"``)."""

    def build(**overrides: Any) -> FastAPI:
        url = overrides.pop("database_url", database_url)
        return create_app(make_settings(url, **overrides))

    return build


@pytest.fixture
async def app(app_factory: Callable[..., FastAPI], clean_tasks: None) -> AsyncIterator[FastAPI]:
    """The application with default settings, on an empty ``tasks`` table."""
    application = app_factory()
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``app`` in process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


class Rows:
    """Reads the ``tasks`` table directly, to check what a request left in the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def count(self, user_id: str | None = None) -> int:
        """How many tasks are stored (for one user, or all)."""
        query = text(
            "SELECT count(*) FROM tasks WHERE user_id = :u"
            if user_id is not None
            else "SELECT count(*) FROM tasks"
        )
        async with self._engine.connect() as connection:
            result = await connection.execute(query, {"u": user_id})
            return int(result.scalar_one())

    async def get(self, task_id: int) -> dict[str, Any] | None:
        """The stored row of a task, whoever owns it."""
        async with self._engine.connect() as connection:
            result = await connection.execute(
                text("SELECT * FROM tasks WHERE id = :id"), {"id": task_id}
            )
            row = result.mappings().first()
            return dict(row) if row else None


@pytest.fixture
def rows(engine: AsyncEngine) -> Rows:
    """Direct access to the stored rows."""
    return Rows(engine)

"""The HTTP API, built by the real ``create_app()``, on the session's PostgreSQL.

With ``TEST_THROUGH_PGBOUNCER=1`` (``make test-pgbouncer``) the service under test connects
through a real PgBouncer in transaction mode, in pooler mode: the in-process app (``app_factory``,
``app``) and every ``taskapi serve`` a test starts with ``database_url``. Migrations and the tests'
own reads (``engine``, ``rows``, ``database``) stay on the direct connection.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.engine import DatabaseOptions
from bootstrap.app import create_app
from bootstrap.settings import Settings
from tests.pgbouncer import PgBouncer
from tests.tokens import SECRET

THROUGH_PGBOUNCER: Final = os.environ.get("TEST_THROUGH_PGBOUNCER") == "1"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings as the environment would give them, without reading the environment."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": SECRET,
        "rate_limit_user_rps": 0,  # tested in tests/unit/http/test_rate_limits.py
        "rate_limit_ip_rps": 0,
        **overrides,
    }
    if THROUGH_PGBOUNCER:
        values.setdefault("database_pooler", "transaction")
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest, direct_database_url: str) -> str:
    """The URL the service under test connects with: through PgBouncer when asked to.

    Through PgBouncer it is the pooler's unix socket, in a directory named ``…-pooler``: like a
    Neon ``-pooler`` host, it turns pooler mode on by itself, so a ``taskapi serve`` given only
    ``DATABASE_URL`` runs exactly as it would behind Neon's pooled endpoint.
    """
    if not THROUGH_PGBOUNCER:
        return direct_database_url
    pgbouncer: PgBouncer = request.getfixturevalue("pgbouncer")
    pooled = pgbouncer.socket_url(make_url(direct_database_url).database)
    assert DatabaseOptions.from_url(pooled).transaction_pooler
    return pooled


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

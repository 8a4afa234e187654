"""The real application, on fakes of the repository and the clock: HTTP behaviour in milliseconds.

Everything else is real: routes, dependencies, error mapping, middleware, the JWT verifier with
real signed tokens. The database pool is never opened (its resource is overridden), so these
tests need no PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from fastapi import FastAPI

from bootstrap.app import create_app, create_container
from bootstrap.container import Container
from bootstrap.settings import Settings
from tests.fakes import FakeClock, FakeHealthProbe, FakeTaskRepository
from tests.tokens import SECRET

# Never connected to: the pool resource is overridden below.
UNUSED_DATABASE_URL = "postgresql://unit@127.0.0.1:9/unit"


def unit_settings(**overrides: Any) -> Settings:
    """Settings as the environment would give them, without reading the environment."""
    values: dict[str, Any] = {
        "database_url": UNUSED_DATABASE_URL,
        "jwt_secret": SECRET,
        # Rate limits are tested on their own (test_rate_limits); elsewhere they would only
        # make the many requests of one test user answer 429.
        "rate_limit_user_rps": 0,
        "rate_limit_ip_rps": 0,
        **overrides,
    }
    return Settings(_env_file=None, **values)


async def _no_pool() -> AsyncIterator[None]:
    yield None


def fake_container(settings: Settings, repository: FakeTaskRepository) -> Container:
    """The production container with the repository, clock, pool and probe overridden."""
    container = create_container(settings)
    container.repository.override(repository)
    container.clock.override(FakeClock())
    container.database_pool.override(providers.Resource(_no_pool))
    container.readiness.override(FakeHealthProbe())
    return container


class StoredTasks:
    """What the fake repository holds, read like the e2e suite reads the ``tasks`` table."""

    def __init__(self, repository: FakeTaskRepository) -> None:
        self._repository = repository

    async def count(self, user_id: str | None = None) -> int:
        """How many tasks are stored (for one user, or all)."""
        return sum(
            1
            for task in self._repository.tasks.values()
            if user_id is None or task.owner == user_id
        )

    async def get(self, task_id: int) -> dict[str, Any] | None:
        """The stored task as a row (``owner`` named ``user_id``), whoever owns it."""
        task = self._repository.tasks.get(task_id)
        if task is None:
            return None
        row = dataclasses.asdict(task)
        row["user_id"] = row.pop("owner")
        return row


@pytest.fixture
def repository() -> FakeTaskRepository:
    return FakeTaskRepository()


@pytest.fixture
def rows(repository: FakeTaskRepository) -> StoredTasks:
    """The stored tasks, to check what a request left behind."""
    return StoredTasks(repository)


@pytest.fixture(scope="session")
async def _shared_app() -> AsyncIterator[tuple[Container, FastAPI]]:
    """One application for the session: FastAPI builds each route's state on its first request,
    which costs more than the requests of a test. ``container`` gives it fresh fakes per test."""
    settings = unit_settings()
    container = fake_container(settings, FakeTaskRepository())
    application = create_app(settings, container)
    async with application.router.lifespan_context(application):
        yield container, application


@pytest.fixture
def container(_shared_app: tuple[Container, FastAPI], repository: FakeTaskRepository) -> Container:
    """The shared app's container, with this test's repository, a new clock and a ready probe.

    Every singleton (use cases, verifier, token cache) is rebuilt, so no state leaks between tests.
    """
    shared, _ = _shared_app
    for provider in (shared.repository, shared.clock, shared.readiness):
        provider.reset_override()
    shared.reset_singletons()
    shared.repository.override(repository)
    shared.clock.override(FakeClock())
    shared.readiness.override(FakeHealthProbe())
    return shared


@pytest.fixture
def clock(container: Container) -> FakeClock:
    """The app's clock: it moves only when a test advances it."""
    fake = container.clock()
    assert isinstance(fake, FakeClock)
    return fake


@pytest.fixture
def app_factory(repository: FakeTaskRepository) -> Callable[..., FastAPI]:
    """Build an app with settings overrides (e.g. ``jwt_audience="x"``) on the same fakes."""

    def build(**overrides: Any) -> FastAPI:
        settings = unit_settings(**overrides)
        return create_app(settings, fake_container(settings, repository))

    return build


@pytest.fixture
def app(_shared_app: tuple[Container, FastAPI], container: Container) -> FastAPI:
    """The real application (default settings) on ``container``'s fakes, its lifespan running."""
    _, application = _shared_app
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http

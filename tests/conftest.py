"""Fixtures shared by the integration and end-to-end tests: one real PostgreSQL per session.

Unit tests request none of these, so they run without any database.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from adapters.postgres.database import Database
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.migrate import upgrade
from tests.database import create_database, drop_database, postgres_server
from tests.pgbouncer import PgBouncer
from tests.pgbouncer import pgbouncer as run_pgbouncer

# No deadline on property tests: timing is the benchmarks' to measure, never the suite's to
# assert (a loaded machine once made one miss hypothesis' default 200 ms).
settings.register_profile("taskapi", deadline=None)
settings.load_profile("taskapi")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of the session's PostgreSQL server (its maintenance database)."""
    # Not under pytest's tmp_path: another pytest run on the machine prunes old numbered
    # directories there, and would delete a running server's data under this session.
    with (
        tempfile.TemporaryDirectory(prefix="taskapi-tests-") as directory,
        postgres_server(Path(directory)) as (url, source),
    ):
        _session["postgres"] = source
        yield url


@pytest.fixture(scope="session")
async def direct_database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A fresh database, migrated to head, for this test session: the direct connection."""
    url = await create_database(postgres_server_url)
    # Alembic's env runs its own event loop: keep it off this one.
    await asyncio.to_thread(upgrade, DatabaseOptions.from_url(url))
    yield url
    await drop_database(postgres_server_url, url)


@pytest.fixture(scope="session")
def database_url(direct_database_url: str) -> str:
    """The URL the service under test connects with (tests/e2e may route it through PgBouncer)."""
    return direct_database_url


@pytest.fixture(scope="session")
def pgbouncer(postgres_server_url: str) -> Iterator[PgBouncer]:
    """A real PgBouncer in transaction mode in front of the session's server (started on use).

    Tests that use it carry ``needs_pgbouncer`` (tests/pgbouncer.py); without the binary this
    fixture fails rather than skips.
    """
    with run_pgbouncer(postgres_server_url) as running:
        yield running


@pytest.fixture(scope="session")
async def engine(direct_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A SQLAlchemy engine on the session database, for tests to look at the rows directly."""
    options = DatabaseOptions.from_url(direct_database_url)
    created = create_async_engine(options.url, connect_args=options.connect_args)
    yield created
    await created.dispose()


@pytest.fixture(scope="session")
async def database(direct_database_url: str) -> AsyncIterator[Database]:
    """The service's own connection pool on the session database (direct connection)."""
    started = Database(DatabaseOptions.from_url(direct_database_url))
    await started.start()
    yield started
    await started.close()


@pytest.fixture
async def clean_tasks(engine: AsyncEngine) -> None:
    """Start each test with no task, idempotency key, tombstone or stream's place of anyone's.

    Watch leases stay: a server that the e2e tests share holds its own, as in production. (A
    stream still open there whose place went ends when the server next keeps its leases.)
    """
    async with engine.begin() as connection:
        await connection.execute(
            text("TRUNCATE tasks, task_tombstones, idempotency_keys, task_streams RESTART IDENTITY")
        )


@pytest.fixture
async def outsider(engine: AsyncEngine, direct_database_url: str) -> AsyncIterator[tuple[str, str]]:
    """A login role that is not a member of the API role; yields (its name, a URL as it).

    Roles belong to the whole server, so its name is unique and it is dropped afterwards.
    """
    name = f"taskapi_outsider_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex  # servers with password authentication (a container) need one
    async with engine.begin() as connection:
        await connection.execute(text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
    url = DatabaseOptions.from_url(direct_database_url).url.set(username=name, password=password)
    yield name, url.render_as_string(hide_password=False)
    async with engine.begin() as connection:
        await connection.execute(text(f"DROP ROLE {name}"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """With ``TASKAPI_REQUIRE_ALL=1`` (as CI sets it), a skipped test fails instead.

    A few tests skip themselves where a tool cannot be installed (Chromium, PgBouncer, a compose
    CLI): fine on a laptop, never acceptable in CI, where the project installs them.
    """
    report: pytest.TestReport = yield
    if report.skipped and os.environ.get("TASKAPI_REQUIRE_ALL") == "1":
        report.outcome = "failed"
        report.longrepr = (
            f"skipped, but TASKAPI_REQUIRE_ALL=1 requires every test: {report.longrepr}"
        )
    return report


_STAGES: Final = ("unit", "integration", "e2e", "containers")
_TESTS: Final = Path(__file__).parent


def _stage_of(path: Path) -> str:
    top = path.relative_to(_TESTS).parts[0]
    return top if top in _STAGES else "other"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fastest first: unit, then integration, then e2e (a stable sort keeps each file's order)."""
    order = {stage: index for index, stage in enumerate(_STAGES)}
    items.sort(key=lambda item: order.get(_stage_of(item.path), len(order)))


def pytest_configure(config: pytest.Config) -> None:
    _session["config"] = config


def pytest_runtest_logstart(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """A heading where each stage starts, so that a long run says where it is."""
    config = _session["config"]
    stage = _stage_of(config.rootpath / location[0])
    if stage == _session.get("stage"):
        return
    _session["stage"] = stage
    if stage == "e2e" and os.environ.get("TEST_THROUGH_PGBOUNCER") == "1":
        stage = "e2e through PgBouncer"
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # the progress line of the stage before may be unfinished
        reporter.write_sep("-", stage)


_session: dict[str, Any] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which PostgreSQL the run used, and why not a container where one was not used."""
    if "postgres" in _session:
        terminalreporter.write_line(f"PostgreSQL: {_session['postgres']}")

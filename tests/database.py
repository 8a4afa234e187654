"""Where the suite's real PostgreSQL comes from, in the order DESIGN.md sets.

1. ``TEST_DATABASE_URL``: that server (a local one, or one behind PgBouncer).
2. A Docker engine that answers: a throwaway container (testcontainers).
3. Otherwise: the embedded PostgreSQL that ``make run`` uses, in a temporary directory.

Each test session then works in a database of its own, created here and dropped afterwards.
``TEST_POSTGRES=testcontainers`` (as ``make test-containers`` sets it) makes the container path
required: the run fails rather than falls back. ``TASKAPI_POSTGRES_IMAGE`` names the image.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from adapters.postgres.engine import DatabaseOptions

_REQUIRED = os.environ.get("TEST_POSTGRES") == "testcontainers"
DEFAULT_POSTGRES_IMAGE = "postgres:18-alpine"  # containers/official.env's, a test keeps them equal


def _docker_engine_configured() -> bool:
    return bool(os.environ.get("DOCKER_HOST")) or Path("/var/run/docker.sock").exists()


@contextmanager
def _docker_postgres() -> Iterator[tuple[str | None, str]]:
    """Yield (URL of a throwaway container's server, or None and why there is none)."""
    if not _docker_engine_configured() and not _REQUIRED:
        yield None, "no Docker engine"
        return
    from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415

    image = os.environ.get("TASKAPI_POSTGRES_IMAGE", DEFAULT_POSTGRES_IMAGE)
    container = None
    try:
        # Without an engine this fails in the constructor, in well under a second; without a
        # registry that has the image, in start().
        container = PostgresContainer(image)
        run = os.environ.get("TASKAPI_TEST_RUN")
        if run:  # containers/stage.sh removes what carries its run's label, also after a crash
            container.with_kwargs(labels={"taskapi.test-run": run})
        container.start()
    except Exception as error:  # docker.errors.DockerException and its causes
        if container is not None:
            with suppress(Exception):
                container.stop()
        if _REQUIRED:
            raise
        yield None, f"a Docker engine answers, but {image} did not start: {error}"
        return
    try:
        yield container.get_connection_url(driver=None), f"testcontainers ({image})"
    finally:
        container.stop()


@contextmanager
def postgres_server(tmp_dir: Path) -> Iterator[tuple[str, str]]:
    """Yield (URL of a server's maintenance database, where it came from)."""
    given = os.environ.get("TEST_DATABASE_URL")
    if given and not _REQUIRED:
        yield given, "TEST_DATABASE_URL"
        return
    with _docker_postgres() as (url, source):
        if url is not None:
            yield url, source
            return
    from bootstrap.embedded_db import embedded_postgres_url  # noqa: PLC0415

    with embedded_postgres_url(tmp_dir / "embedded-pg") as url:
        yield url, f"the embedded PostgreSQL ({source})"


def _admin_target(server_url: str) -> tuple[str, dict[str, Any]]:
    """A plain libpq-style DSN for asyncpg and its connect arguments, from any supported URL."""
    options = DatabaseOptions.from_url(server_url)
    dsn = options.url.set(drivername="postgresql").render_as_string(hide_password=False)
    args = {k: v for k, v in options.connect_args.items() if k in ("ssl", "server_settings")}
    return dsn, args


async def create_database(server_url: str, prefix: str = "taskapi_test") -> str:
    """Create a fresh, empty database on the server; return its URL (same form as given)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    dsn, args = _admin_target(server_url)
    connection = await asyncpg.connect(dsn, **args)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, database_url: str) -> None:
    """Drop a database made by ``create_database``, ending any connection still open to it."""
    name = make_url(database_url).database
    dsn, args = _admin_target(server_url)
    connection = await asyncpg.connect(dsn, **args)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()

"""Alembic environment: runs migrations on an asyncpg connection.

The database comes from ``config.attributes["database"]`` (a ``DatabaseOptions``), set by
``adapters.postgres.migrate``; the Neon URL translation is therefore the same as the API's.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from adapters.postgres.engine import DatabaseOptions, create_unpooled_engine
from adapters.postgres.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(options: DatabaseOptions) -> None:
    engine = create_unpooled_engine(options)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    """Entry point Alembic calls when it loads this module."""
    options = context.config.attributes.get("database")
    if not isinstance(options, DatabaseOptions):
        raise TypeError("run migrations through `taskapi migrate`, which names the database")
    if context.is_offline_mode():
        context.configure(url=options.url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(_run_online(options))


main()

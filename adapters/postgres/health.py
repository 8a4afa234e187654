"""``DatabaseHealth``: the ``HealthProbe`` port on the ``Database`` pool."""

from __future__ import annotations

from adapters.postgres.database import Database


class DatabaseHealth:
    """Ready when a pooled connection answers ``SELECT 1`` within ``timeout`` seconds."""

    def __init__(self, database: Database, timeout: float = 2.0) -> None:
        self._database = database
        self._timeout = timeout

    async def is_ready(self) -> bool:
        return await self._database.ping(self._timeout)

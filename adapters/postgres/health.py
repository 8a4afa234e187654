"""``DatabaseHealth``: the ``HealthProbe`` port on the engine's pool."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


class DatabaseHealth:
    """Ready when a pooled connection answers ``SELECT 1`` within ``timeout`` seconds."""

    def __init__(self, engine: AsyncEngine, timeout: float = 2.0) -> None:
        self._engine = engine
        self._timeout = timeout

    async def is_ready(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout), self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001  # any failure to answer means "not ready"
            return False
        return True

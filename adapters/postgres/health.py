"""``DatabaseHealth``: the ``HealthProbe`` port on the ``Database`` pool."""

from __future__ import annotations

from adapters.postgres.database import Database
from adapters.postgres.row_security import BEGIN_AS_API


class DatabaseHealth:
    """Ready when the database answers as requests use it, within ``timeout`` seconds.

    The probe's transaction takes the API role, so a database that is up but not migrated, or
    whose login role was not granted ``taskapi_app``, is reported not ready rather than ready
    while every request fails.
    """

    def __init__(self, database: Database, timeout: float = 2.0) -> None:
        self._database = database
        self._timeout = timeout

    async def is_ready(self) -> bool:
        return await self._database.ping(self._timeout, BEGIN_AS_API)

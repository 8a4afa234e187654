"""``DatabaseHealth``: the ``HealthProbe`` port on the ``Database`` pool."""

from __future__ import annotations

import logging
from typing import Final

from adapters.postgres.database import Database
from adapters.postgres.functions import FUNCTIONS
from adapters.postgres.row_security import BEGIN_AS_API

log = logging.getLogger("taskapi")

# As the API role: both tables exist, it may use them, row-level security binds it there, and the
# repository's functions exist (a database migrated only part of the way serves no request).
_SERVES_REQUESTS: Final = " AND ".join(
    [
        f"has_table_privilege('{table}', 'SELECT, INSERT, UPDATE, DELETE')"
        f" AND row_security_active('{table}')"
        for table in ("tasks", "idempotency_keys")
    ]
    + [f"to_regprocedure('{function.signature}') IS NOT NULL" for function in FUNCTIONS]
)


class DatabaseHealth:
    """Ready when the database answers as requests use it, within ``timeout`` seconds.

    The probe's transaction takes the API role and checks that it may use both tables under
    row-level security and that the repository's functions exist: a database that is up but not
    migrated, or whose login role was not granted ``taskapi_app``, is not ready (each of its
    requests would be a 503).
    """

    def __init__(self, database: Database, timeout: float = 2.0) -> None:
        self._database = database
        self._timeout = timeout
        self._reason: str | None = None

    async def is_ready(self) -> bool:
        """Ready or not; why not is logged when it changes (probes come every few seconds)."""
        reason = await self._database.why_not(
            self._timeout,
            BEGIN_AS_API,
            "SELECT " + _SERVES_REQUESTS,
            unmet="the API role cannot use the tables or the functions (run `taskapi migrate`)",
        )
        if reason != self._reason:
            if reason is not None:
                log.warning("not ready", extra={"event": "not_ready", "reason": reason})
            else:
                log.info("ready", extra={"event": "ready"})
            self._reason = reason
        return reason is None

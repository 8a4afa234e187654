"""``SqlStreamSlots``: the ``StreamSlots`` port on PostgreSQL (``task_streams``, migration 0011)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final
from uuid import UUID

from adapters.postgres.database import Database
from adapters.postgres.errors import first_line
from adapters.postgres.functions import CLOSE_STREAM, KEEP_STREAMS, OPEN_STREAM
from application.errors import StorageUnavailable
from domain.task import UserId

# Leases renewed per call: each call is one transaction.
KEEP_BATCH: Final = 500

log = logging.getLogger("taskapi.events")


class SqlStreamSlots:
    """Event streams' places as leased rows, one call of its SQL function per operation."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def take(self, owner: UserId, stream: UUID, *, most: int, lease_seconds: int) -> bool:
        rows = await self._database.fetch(OPEN_STREAM.call, owner, stream, most, lease_seconds)
        return bool(rows[0][0])

    async def keep(self, streams: Sequence[tuple[UserId, UUID]], *, lease_seconds: int) -> None:
        for start in range(0, len(streams), KEEP_BATCH):
            batch = streams[start : start + KEEP_BATCH]
            try:
                await self._database.fetch(
                    KEEP_STREAMS.call,
                    "",
                    [owner for owner, _ in batch],
                    [stream for _, stream in batch],
                    lease_seconds,
                )
            except StorageUnavailable as error:
                log.warning("stream leases not renewed", extra={"error": first_line(error)})
                return

    async def give_back(self, owner: UserId, stream: UUID) -> bool:
        try:
            await self._database.fetch(CLOSE_STREAM.call, owner, stream)
        except StorageUnavailable as error:
            log.warning("stream place not given back yet", extra={"error": first_line(error)})
            return False
        return True

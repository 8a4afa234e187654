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

    async def keep(
        self, streams: Sequence[tuple[UserId, UUID]], *, lease_seconds: int
    ) -> list[UUID]:
        gone: list[UUID] = []
        for start in range(0, len(streams), KEEP_BATCH):
            batch = streams[start : start + KEEP_BATCH]
            try:
                rows = await self._database.fetch(
                    KEEP_STREAMS.call,
                    "",
                    [owner for owner, _ in batch],
                    [stream for _, stream in batch],
                    lease_seconds,
                )
            except Exception as error:  # renewal must go on; the leases lapse
                log.warning("stream leases not renewed", extra=_said(error), exc_info=_bug(error))
                break
            gone += [row["stream"] for row in rows]
        return gone

    async def give_back(self, owner: UserId, stream: UUID) -> bool:
        try:
            await self._database.fetch(CLOSE_STREAM.call, owner, stream)
        except Exception as error:  # owed, given back later
            log.warning("stream place not given back yet", extra=_said(error), exc_info=_bug(error))
            return False
        return True


def _said(error: Exception) -> dict[str, str]:
    return {"error": f"{type(error).__name__}: {first_line(error)}"}


def _bug(error: Exception) -> bool:
    # The database away is expected here; anything else is logged with its traceback.
    return not isinstance(error, StorageUnavailable)

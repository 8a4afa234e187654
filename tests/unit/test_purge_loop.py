"""The janitor's loop: purges on its interval, and not at all while the service is idle."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from bootstrap.app import purge_expired_forever
from tests.fakes import FakeClock


async def _purges_seen(*, busy: bool) -> list[datetime]:
    seen: list[datetime] = []

    async def purge(now: datetime) -> int:
        seen.append(now)
        return 0

    loop = asyncio.create_task(
        purge_expired_forever([("rows", purge)], FakeClock(), lambda: busy, interval=0.01)
    )
    await asyncio.sleep(0.1)
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    return seen


async def test_a_busy_service_purges_on_every_interval() -> None:
    assert len(await _purges_seen(busy=True)) >= 3


async def test_an_idle_service_does_not_wake_its_database_to_purge() -> None:
    # No connection open (no request for minutes): a scale-to-zero compute stays suspended.
    assert await _purges_seen(busy=False) == []

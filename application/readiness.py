"""Readiness answered from a recent check, so that a flood of probes opens no flood of checks."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Final

from application.ports import Clock, HealthProbe

MAX_AGE: Final = timedelta(seconds=1)


class RecentReadiness:
    """A ``HealthProbe`` that asks its inner probe at most once per ``max_age``.

    Callers that come while a check runs wait for it and share its answer.
    """

    def __init__(self, inner: HealthProbe, clock: Clock, max_age: timedelta = MAX_AGE) -> None:
        self._inner = inner
        self._clock = clock
        self._max_age = max_age
        self._checked_at: datetime | None = None
        self._ready = False
        self._checking = asyncio.Lock()

    async def is_ready(self) -> bool:
        """The last answer if it is recent enough, else a new one."""
        if self._fresh():
            return self._ready
        async with self._checking:
            if not self._fresh():  # nobody checked while this caller waited
                self._ready = await self._inner.is_ready()
                self._checked_at = self._clock.now()
        return self._ready

    def _fresh(self) -> bool:
        return self._checked_at is not None and self._clock.now() - self._checked_at < self._max_age

"""Fan-out of "this user's feed may have moved" to the open event streams of one process.

A source (PostgreSQL's LISTEN, or a poller where only a pooled connection exists) says which
user's feed may have moved, or that every feed may have (after a reconnection, when a signal may
have been lost). Each open stream then reads its own feed from its own position: a signal carries
no change, so a lost or repeated one costs a read, never a change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

MAX_STREAMS_PER_USER: Final = 5


class TooManyStreams(Exception):  # the contract's wording
    """The user already has the most open streams allowed in this process."""


class ChangeHub:
    """Who is waiting for which user's changes, in this process."""

    def __init__(self, max_streams_per_user: int = MAX_STREAMS_PER_USER) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._max = max_streams_per_user
        self._opened = asyncio.Event()
        self._joined = asyncio.Event()
        self.closing = False

    async def wait_for_streams(self) -> None:
        """Return once a stream is open."""
        while not self._waiting:
            self._opened.clear()
            await self._opened.wait()

    async def wait_for_new_owners(self, seconds: float) -> None:
        """Return once a user's first stream opens (since the last call), or after ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._joined.wait(), seconds)
        self._joined.clear()

    @contextmanager
    def subscribe(self, owner: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``owner``'s feed may have moved (and when the hub closes).

        Raises ``TooManyStreams`` when ``owner`` already holds the most streams.
        """
        waiting = self._waiting.setdefault(owner, set())
        if len(waiting) >= self._max:
            raise TooManyStreams()
        event = asyncio.Event()
        if self.closing:  # opened during shutdown: ends at once
            event.set()
        if not waiting:
            self._joined.set()
        waiting.add(event)
        self._opened.set()
        try:
            yield event
        finally:
            waiting.discard(event)
            if not waiting:
                del self._waiting[owner]

    def notify(self, owner: str) -> None:
        """``owner``'s feed may have moved."""
        for event in self._waiting.get(owner, ()):
            event.set()

    def notify_all(self) -> None:
        """Any feed may have moved (a signal may have been lost)."""
        for waiting in self._waiting.values():
            for event in waiting:
                event.set()

    def close(self) -> None:
        """The process is shutting down: every stream ends."""
        self.closing = True
        self.notify_all()

    def owners(self) -> list[str]:
        """The users with an open stream."""
        return list(self._waiting)

    @property
    def streams(self) -> int:
        """How many streams are open."""
        return sum(len(waiting) for waiting in self._waiting.values())

"""The event streams of one process: their places among their users', and who to wake when.

A source (PostgreSQL's LISTEN, or a poller where only a pooled connection exists) says which
user's feed may have moved, or that every feed may have (after a reconnection, when a signal may
have been lost). Each open stream then reads its own feed from its own position: a signal carries
no change, so a lost or repeated one costs a read, never a change.

How many streams a user holds is counted across every replica (``StreamSlots``), not here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Final
from uuid import UUID, uuid4

from application.ports import StreamSlots
from domain.task import UserId

MAX_STREAMS_PER_USER: Final = 5
STREAM_LEASE_SECONDS: Final = 30
KEEP_SECONDS: Final = 10.0
"""How often a process renews its streams' leases: a lease outlives two missed renewals."""


class TooManyStreams(Exception):  # the contract's wording
    """The user already has the most open streams allowed."""


class ChangeHub:
    """Who is waiting for which user's changes, in this process."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}
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
        """An event set whenever ``owner``'s feed may have moved (and when the hub closes)."""
        waiting = self._waiting.setdefault(owner, set())
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


@dataclass(slots=True)
class StreamPlace:
    """An open stream's place: ``wake`` is set when its feed may have moved or it must end."""

    wake: asyncio.Event
    lost: bool = False
    """The place is gone (taken over after its lease lapsed): the stream must end."""


class EventStreams:
    """Opens a user's event streams, at most ``most`` of them across every replica."""

    def __init__(
        self, hub: ChangeHub, slots: StreamSlots, most: int = MAX_STREAMS_PER_USER
    ) -> None:
        self._hub = hub
        self._slots = slots
        self._most = most
        self._open: dict[UUID, tuple[UserId, StreamPlace]] = {}
        # Places of closed streams not given back yet: the database was away (an outage ends
        # every stream at once, and their clients come back as soon as it returns).
        self._owed: dict[UUID, UserId] = {}
        self._giving_back: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def open(self, owner: UserId) -> AsyncIterator[StreamPlace]:
        """A place among the owner's streams, whose event wakes the stream.

        Raises ``TooManyStreams`` when the owner holds the most already.
        """
        await self._settle(owner)
        stream = uuid4()
        if not await self._slots.take(
            owner, stream, most=self._most, lease_seconds=STREAM_LEASE_SECONDS
        ):
            raise TooManyStreams()
        try:
            with self._hub.subscribe(owner) as wake:
                place = StreamPlace(wake)
                self._open[stream] = (owner, place)
                yield place
        finally:
            self._open.pop(stream, None)
            # A stream ends by cancellation when its client leaves: the place is given back
            # all the same, by a task of its own.
            giving_back = asyncio.create_task(self._give_back(owner, stream))
            self._giving_back.add(giving_back)
            giving_back.add_done_callback(self._giving_back.discard)
            await asyncio.shield(giving_back)

    async def keep_forever(self) -> None:
        """Every ``KEEP_SECONDS``: renew the leases of open streams, give back owed places.

        A stream whose place is gone ends; its client reconnects, under the limit again.
        """
        while True:
            if not self._owed:
                await self._hub.wait_for_streams()
            await asyncio.sleep(KEEP_SECONDS)
            await self._settle()
            streams = [(owner, stream) for stream, (owner, _) in self._open.items()]
            if not streams:
                continue
            for stream in await self._slots.keep(streams, lease_seconds=STREAM_LEASE_SECONDS):
                if stream in self._open:
                    _, place = self._open[stream]
                    place.lost = True
                    place.wake.set()

    async def _give_back(self, owner: UserId, stream: UUID) -> None:
        if not await self._slots.give_back(owner, stream):
            self._owed[stream] = owner

    async def _settle(self, owner: UserId | None = None) -> None:
        """Give back the places owed (``owner``'s only, when given), as far as possible now."""
        for stream, whose in list(self._owed.items()):
            if owner not in (None, whose):
                continue
            if not await self._slots.give_back(whose, stream):
                return  # still away: try again later
            self._owed.pop(stream, None)  # a racing open may have given it back too

"""Where the event streams learn that a user's feed may have moved: LISTEN, or a poll.

The tasks' triggers send ``NOTIFY taskapi_changes, '<user id>'`` in the writing transaction, so it
is delivered on commit only, and only for owners with a live lease in ``task_watches`` (a NOTIFY
serialises commits, so nobody else's writes pay for it). One connection per process listens, on
the direct (unpooled) URL: a transaction pooler cannot carry LISTEN; on it the process leases its
streaming owners, at once for a new one (then wakes its streams: whatever committed before the
lease is read then) and every few seconds for all; an owner whose lock a long transaction holds is
tried again shortly, never waited for. Where only a pooled URL exists, or while the direct one
cannot be used, the process asks twice a second which of its streaming owners have changes. Both
run only while a stream is open (a listening connection would keep a Neon compute awake), and
after (re)connecting they wake every stream, which then reads its feed: a signal lost with a
connection costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from typing import Any, Final

import asyncpg

from adapters.postgres.database import Database
from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.functions import CHANGED_OWNERS, WATCH_OWNERS
from application.events import ChangeHub

CHANNEL: Final = "taskapi_changes"
PING_SECONDS: Final = 5.0
# A lease outlives a few missed renewals; a process that died leaves its owners' writes NOTIFYing
# for at most this long. Each renewal writes a row per streamed owner, hence not every ping.
WATCH_SECONDS: Final = 60
RENEW_SECONDS: Final = 15.0
# How soon an owner whose lock a writer held is tried again.
BUSY_RETRY_SECONDS: Final = 0.2
# Owners leased per call: each lease taken holds its owner's lock to the end of the call.
WATCH_BATCH: Final = 100
RETRY_SECONDS: Final = 1.0
# Half the contract's second: a change reaches a polling process's streams within 1 s.
POLL_SECONDS: Final = 0.5
# How many polls back the places asked about start: a commit up to 5 s late after its place
# (the API's statements time out after 2.5 s) is still seen.
POLL_ECHOES: Final = 10

log = logging.getLogger("taskapi.events")


class ChangeListener:
    """LISTENs on one direct connection while streams are open, and wakes their owners.

    While it cannot listen (the direct URL unreachable or refused), ``fallback`` polls through
    the pool, so that changes still reach the streams within a second.
    """

    def __init__(
        self, options: DatabaseOptions, hub: ChangeHub, fallback: ChangePoller | None = None
    ) -> None:
        self._options = options
        self._hub = hub
        self._fallback = fallback
        self._polling: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after any failure (polling until it listens)."""
        try:
            while True:
                await self._hub.wait_for_streams()
                if self._fallback is not None and self._polling is None:
                    # Until it listens, however long connecting takes, the streams are polled.
                    self._polling = asyncio.create_task(self._fallback.run())
                try:
                    await self._listen()
                except Exception as error:  # noqa: BLE001  # whatever broke, listen again
                    log.warning("change listener lost", extra={"error": type(error).__name__})
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            self._stop_polling()

    def _stop_polling(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            self._polling = None

    async def _listen(self) -> None:
        connection = await asyncpg.connect(self._options.dsn, **self._options.asyncpg_arguments())
        try:
            await connection.add_listener(CHANNEL, self._on_notification)
            self._stop_polling()
            self._hub.notify_all()  # anything committed while not listening
            watched: set[str] = set()
            renewed_at = -math.inf
            while self._hub.streams:
                owners = set(self._hub.owners())
                now = asyncio.get_running_loop().time()
                due = owners if now - renewed_at >= RENEW_SECONDS else owners - watched
                if due == owners:
                    renewed_at = now
                if due:  # the call also tells that the connection is still there
                    taken, busy = await self._watch(connection, due)
                else:
                    taken, busy = set(), set()
                    await connection.fetchval("SELECT 1", timeout=PING_SECONDS)  # still there?
                # Their streams read again: whatever committed before the lease was taken.
                for owner in (owners - watched - busy) | taken:
                    self._hub.notify(owner)
                watched = owners - busy
                await self._hub.wait_for_new_owners(BUSY_RETRY_SECONDS if busy else PING_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), PING_SECONDS)
            if not connection.is_closed():
                connection.terminate()

    @staticmethod
    async def _watch(connection: asyncpg.Connection, owners: set[str]) -> tuple[set[str], set[str]]:
        """Lease ``owners``; return those whose lease was taken anew, and those to try again."""
        taken: set[str] = set()
        busy: set[str] = set()
        ordered = sorted(owners)
        for start in range(0, len(ordered), WATCH_BATCH):
            batch = ordered[start : start + WATCH_BATCH]
            for row in await connection.fetch(
                WATCH_OWNERS.call, "", batch, WATCH_SECONDS, timeout=PING_SECONDS
            ):
                if row["lease"] == "taken":
                    taken.add(row["owner"])
                elif row["lease"] == "busy":
                    busy.add(row["owner"])
        return taken, busy

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, owner: str) -> None:  # noqa: ANN401  # asyncpg's callback signature
        self._hub.notify(owner)


class ChangePoller:
    """Asks twice a second which streaming owners have changes (pooled URL only), and wakes them.

    A write takes its place before it commits, so each poll asks about the places after the one
    seen ``POLL_ECHOES`` polls ago: a commit that lagged behind its place is still seen. The price
    is that an owner is reported by every poll of that window, so each change wakes their streams
    up to ``POLL_ECHOES`` times, a read of the feed each. Until the window is full again (the
    first polls, and those after a failure) no place before it is known: every stream is woken
    on each of them. Only owners with open streams in this process are asked about, each as
    themselves (row-level security binds every probe).
    """

    def __init__(self, database: Database, hub: ChangeHub) -> None:
        self._database = database
        self._hub = hub

    async def run(self) -> None:
        """Poll until cancelled; after a failure, wake every stream once the database is back."""
        seen: deque[int] = deque(maxlen=POLL_ECHOES)
        while True:
            await self._hub.wait_for_streams()
            try:
                rows = await self._database.fetch(
                    CHANGED_OWNERS.call, "", self._hub.owners(), seen[0] if seen else None
                )
            except Exception as error:  # noqa: BLE001  # a poll must never stop polling
                log.warning("change poll failed", extra={"error": type(error).__name__})
                seen.clear()
            else:
                if len(seen) < POLL_ECHOES:  # a commit from before the first poll may still come
                    self._hub.notify_all()
                for row in rows:
                    if row["owner"] is None:
                        seen.append(row["place"])
                    else:
                        self._hub.notify(row["owner"])
            await asyncio.sleep(POLL_SECONDS)

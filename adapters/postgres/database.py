"""``Database``: the asyncpg connection pool the request path runs on, with bounded waits.

Connections are opened on demand (none at start, so the API starts while the database is down),
closed after ``recycle_seconds`` idle (below Neon's scale-to-zero delay, so none is left to die
under a suspended compute), and handed back without asyncpg's reset query: this service never
leaves session state behind (no SET, no LISTEN, no advisory lock; transaction-local settings end
with their transaction), so the reset would be a wasted round trip per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from adapters.postgres.engine import DatabaseOptions
from adapters.postgres.errors import first_line
from application.errors import StorageUnavailable

# Errors that mean "the database cannot be reached or did not answer in time", as opposed to a
# bug in a statement: answered with a 503, and the pool replaces the connection.
UNAVAILABLE: Final[tuple[type[BaseException], ...]] = (
    asyncpg.PostgresConnectionError,  # refused, lost, or "the database system is starting up"
    asyncpg.InterfaceError,  # the connection is closed or in an unusable state
    asyncpg.InternalClientError,  # a connection left mid-protocol by a lost server
    asyncpg.exceptions.OperatorInterventionError,  # admin or crash shutdown, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    # Refused at login (wrong password, no such database or role): the database is unusable
    # for this service until an operator acts; each such request is a logged 503.
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
    asyncpg.exceptions.InvalidCatalogNameError,
    OSError,
    TimeoutError,  # connect, pool-acquire or statement (command_timeout) timeout
)


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """Connection pool sizing and timing."""

    size: int = 20
    acquire_timeout: float = 2.0
    # Below Neon's default suspend-after-idle of 5 minutes.
    recycle_seconds: float = 240.0


# What PostgreSQL answers when this database is not set up for the API: the API role missing or
# not granted to the login role (set-up), or the tables or functions missing or not granted to it
# (migrations not run). Also what a row-level security violation raises. Either way no request
# can be served until someone acts: a logged 503, never a 500.
_REFUSED: Final = (
    asyncpg.exceptions.InvalidParameterValueError,  # SET ROLE: no such role
    asyncpg.exceptions.UndefinedObjectError,
    asyncpg.exceptions.InsufficientPrivilegeError,  # not a member; no grant; RLS violation
    asyncpg.exceptions.UndefinedTableError,  # not migrated
    asyncpg.exceptions.UndefinedFunctionError,  # not migrated (the repository's functions)
    # Nothing was committed, and the same request can succeed later: a standby after a
    # failover, or a database made read-only for maintenance; a deadlock's or serialization
    # failure's victim.
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.TransactionRollbackError,
)
_NOT_MIGRATED: Final = (
    asyncpg.exceptions.UndefinedTableError,
    asyncpg.exceptions.UndefinedFunctionError,
)


def _refused(error: Exception) -> StorageUnavailable:
    # What the log says, for an operator: with the likely remedy when tables or functions lack.
    hint = " (not migrated? run `taskapi migrate`)" if isinstance(error, _NOT_MIGRATED) else ""
    return StorageUnavailable(f"the database refused: {error}{hint}")


# Any error while a connection opens: no statement has run. Neon's proxy reports a compute it
# cannot wake as an ErrorResponse (SQLSTATE XX000), which asyncpg raises as a server error.
_OPENING: Final[tuple[type[BaseException], ...]] = (*UNAVAILABLE, asyncpg.PostgresError)


async def _roll_back(conn: PoolConnectionProxy[Any]) -> None:
    """End the connection's transaction, or terminate the connection when it cannot answer.

    After a statement's timeout or a cancelled call, asyncpg first waits for PostgreSQL to answer
    its cancel request; a connection that cannot answer is terminated, never handed on.
    """
    try:
        await conn.execute("ROLLBACK")
    except Exception:  # noqa: BLE001  # lost, mid-protocol or cancelling: it must not be reused
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.terminate()


def _said(error: BaseException) -> str:
    """An error in one line: its kind and first line (asyncpg appends DETAIL and HINT lines)."""
    said = first_line(error)
    return f"{type(error).__name__}: {said}" if said else type(error).__name__


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release without a reset query (asyncpg still rolls back an unfinished transaction)."""


class Database:
    """The pool, started and closed with the application."""

    def __init__(self, options: DatabaseOptions, pool: PoolOptions | None = None) -> None:
        self._options = options
        self._pool_options = pool or PoolOptions()
        self._pool: asyncpg.Pool | None = None
        # First come, first served: asyncpg's pool hands a released connection to whichever
        # task asks next, so under load a waiting request can be overtaken again and again (we
        # measured p90 at twice p50). asyncio.Semaphore hands each freed slot to the longest
        # waiter; holding a slot guarantees the pool has a connection (or room for one) free.
        self._slots = asyncio.Semaphore(self._pool_options.size)

    async def start(self) -> None:
        """Create the pool (no connection is opened until one is needed)."""
        if self._pool is not None:
            return
        self._pool = await asyncpg.create_pool(
            self._options.dsn,
            min_size=0,
            max_size=self._pool_options.size,
            max_inactive_connection_lifetime=self._pool_options.recycle_seconds,
            reset=_keep_session,
            **self._options.asyncpg_arguments(),
        )

    async def close(self) -> None:
        """Close every connection, waiting (bounded) for those in use."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except TimeoutError:
                pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool | None:
        """The pool, once started."""
        return self._pool

    def in_use(self) -> bool:
        """Whether any connection is open: none after ``recycle_seconds`` without a request."""
        return self._pool is not None and self._pool.get_size() > 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """A pooled connection, waited for at most the acquire timeout.

        Failing to reach the database, or to get a connection in time, raises
        ``StorageUnavailable``; so does losing the connection while it is in use.
        """
        pool = self._pool
        if pool is None:
            raise StorageUnavailable("the database pool is not started")
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self._pool_options.acquire_timeout):
                    await slots.acquire()
            except TimeoutError as error:
                raise StorageUnavailable("no database connection free in time") from error
        else:
            await slots.acquire()  # free: returns at once
        try:
            try:
                # Immediate with a slot held; opening a new connection is bounded by the
                # connect timeout.
                conn = await pool.acquire()
            except _OPENING as error:
                raise StorageUnavailable(type(error).__name__) from error
            try:
                yield conn
            except UNAVAILABLE as error:
                # A statement that ran out of time is one asyncpg has asked PostgreSQL to cancel:
                # the release below waits for the answer, so a write answered 503 cannot commit
                # afterwards (terminating now would drop the cancel request with the connection,
                # and the statement would run on); a cancel that fails terminates it there.
                # Any other connection is never handed to another request: the pool opens a
                # fresh one. (A connection lost outright is already back in the pool, closed.)
                if not isinstance(error, TimeoutError):
                    with contextlib.suppress(asyncpg.InterfaceError):
                        conn.terminate()
                raise StorageUnavailable(type(error).__name__) from error
            finally:
                await pool.release(conn)
        finally:
            slots.release()

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Run one statement on its own and return its rows.

        No ``BEGIN``/``COMMIT``: the statement is its own transaction (autocommit), so it costs a
        single round trip once prepared (two with the statement cache off, behind a transaction
        pooler, where asyncpg parses it anew each time), and nothing can be left half done or
        open on the connection. Errors map as in :meth:`transaction`.
        """
        async with self.connection() as conn:
            try:
                return await conn.fetch(query, *args)
            except _REFUSED as error:
                raise _refused(error) from error

    @asynccontextmanager
    async def transaction(self, begin: str) -> AsyncIterator[PoolConnectionProxy[Any]]:
        """A pooled connection inside a transaction opened by ``begin``, committed on success.

        ``begin`` is one simple-protocol query that starts the transaction and sets it up
        (``BEGIN; SET LOCAL …``): one round trip. Any exception rolls the transaction back (a
        connection that cannot roll back is terminated, never handed on). What the database
        refuses because it is not set up for the API (``_REFUSED``: role or grants missing,
        migrations not run) is ``StorageUnavailable`` too: nothing can be served until an
        operator acts, and the log says what PostgreSQL said.
        """
        async with self.connection() as conn:
            try:
                try:
                    await conn.execute(begin)
                    yield conn
                except _REFUSED as error:
                    raise _refused(error) from error
            except UNAVAILABLE as error:
                if isinstance(error, TimeoutError):
                    await _roll_back(conn)  # once the statement's cancellation is answered
                raise  # otherwise terminated below: no round trip to a lost server
            except BaseException:
                await _roll_back(conn)
                raise
            await conn.execute("COMMIT")

    async def ping(
        self,
        timeout: float,  # noqa: ASYNC109  # a deadline for a probe
        begin: str = "BEGIN",
        check: str = "SELECT true",
    ) -> bool:
        """Whether ``check``, in a transaction opened by ``begin``, is true within ``timeout``."""
        return await self.why_not(timeout, begin, check) is None

    async def why_not(
        self,
        timeout: float,  # noqa: ASYNC109  # a deadline for a probe
        begin: str = "BEGIN",
        check: str = "SELECT true",
        unmet: str = "the check was false",
    ) -> str | None:
        """``None`` when ``check`` is true within ``timeout``; else what stood in the way."""
        try:
            async with asyncio.timeout(timeout), self.transaction(begin) as conn:
                return None if await conn.fetchval(check) else unmet
        except StorageUnavailable as error:
            said, cause = first_line(error), error.__cause__
            if cause is None or first_line(cause) in said:
                return said
            return f"{said} ({_said(cause)})"
        except _OPENING as error:  # whatever the server says, it is not ready
            return _said(error)

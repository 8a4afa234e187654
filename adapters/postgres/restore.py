"""After the database is restored to an earlier point in time (``taskapi expire-sync-tokens``).

A sync token names a place in the feed. A restore rewinds the feed's sequence, so the places
handed out after the restore point are handed out again to new changes: a device holding a token
from that lost stretch would skip them, and keep tasks that no longer exist. Nothing in the
restored database tells those tokens apart, so every token from before is refused (410) and each
device syncs once from scratch.
"""

from __future__ import annotations

from adapters.postgres.engine import DatabaseOptions, operator_connection
from adapters.postgres.tables import CHANGE_SEQUENCE


async def expire_sync_tokens(options: DatabaseOptions) -> int:
    """Start the feed again past every place handed out; return the new horizon.

    Places are numbered from the clock in microseconds (migration 0008) and taken far slower than
    one a microsecond, so no place of the lost stretch lies past both the clock now and the
    restored sequence.
    """
    async with operator_connection(options) as connection, connection.transaction():
        # The horizon is the owner's to move; a role that row-level security binds is told so.
        await connection.execute("SET LOCAL row_security = off")
        await connection.execute("SET LOCAL lock_timeout = '3s'")
        # Writes in flight end first (a place taken before the horizon but committed after it
        # would be skipped by a device that synced in between); later ones wait for the commit.
        await connection.execute("LOCK TABLE tasks, task_tombstones IN SHARE MODE")
        horizon: int = await connection.fetchval(
            "UPDATE task_change_horizon SET starts_after = greatest("
            " (SELECT last_value FROM task_change_seq),"
            " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint) + 1"
            " RETURNING starts_after"
        )
        await connection.execute("SELECT setval($1, $2)", CHANGE_SEQUENCE, horizon)
        # Open streams read again and end (`sync_token_expired`) now, not at their next change.
        await connection.execute(
            "SELECT pg_notify('taskapi_changes', user_id) FROM task_watches WHERE until > now()"
        )
    return horizon

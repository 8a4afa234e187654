"""After the database is restored to an earlier point in time (``taskapi expire-sync-tokens``).

A restore rewinds the sequences. Places in the feed handed out after the restore point are handed
out again to new changes, so a device holding a sync token from that lost stretch would skip
them and keep tasks that no longer exist; nothing in the restored database tells such tokens
apart, so every token from before is refused (410) and each device syncs once from scratch. Task
ids are handed out again too, and a version is only a count: an offline device's
``If-Match: "1"`` on a lost task would change the new task that took its id.
"""

from __future__ import annotations

from typing import Final

from adapters.postgres.engine import DatabaseOptions, operator_connection

CLOCK_SLACK: Final = 86_400 * 1_000_000
"""A day of microseconds past the clock: the restored server's clock may lag the lost one's."""
ID_GAP: Final = 2**32
"""Task ids skipped: more than any lost stretch can have created, and far below 2**53."""


async def expire_sync_tokens(options: DatabaseOptions) -> int:
    """Start the feed and the task ids past all the lost stretch handed out; return the horizon.

    Places are numbered from the clock in microseconds (migration 0008) and taken far slower than
    one a microsecond, so none of the lost stretch lies past both the clock now and the restored
    sequence.
    """
    async with operator_connection(options) as connection, connection.transaction():
        # The horizon is the owner's to move; a role that row-level security binds is told so.
        await connection.execute("SET LOCAL row_security = off")
        await connection.execute("SET LOCAL lock_timeout = '3s'")
        # Writes in flight end first (a place taken before the horizon but committed after it
        # would be skipped by a device that synced in between); later ones wait for the commit.
        await connection.execute("LOCK TABLE tasks, task_tombstones IN SHARE MODE")
        horizon: int = await connection.fetchval(
            "INSERT INTO task_change_horizon (id, starts_after) SELECT 1, greatest(last_value,"
            " (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + $1) + 1"
            " FROM task_change_seq ON CONFLICT (id) DO UPDATE"
            " SET starts_after = excluded.starts_after RETURNING starts_after",
            CLOCK_SLACK,
        )
        await connection.execute("SELECT setval('task_change_seq', $1, true)", horizon)
        await connection.execute(
            "SELECT setval('tasks_id_seq', last_value + $1, true) FROM tasks_id_seq", ID_GAP
        )
    return horizon

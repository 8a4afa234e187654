"""Removing all of one user's data, for when their account is deleted (``taskapi delete-user``)."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.postgres.engine import DatabaseOptions, operator_connection
from adapters.postgres.row_security import API_ROLE


@dataclass(frozen=True, slots=True)
class ErasedRows:
    """How many rows went, by table."""

    tasks: int
    idempotency_keys: int


async def erase_user(options: DatabaseOptions, user_id: str) -> ErasedRows:
    """Delete every row of ``user_id`` in one transaction: all of it goes, or nothing does.

    It works as ``taskapi_app`` for that user, as a request does, so row-level security makes
    another user's rows unreachable whatever the statements say.
    """
    async with operator_connection(options) as connection, connection.transaction():
        await connection.execute(f"SET LOCAL ROLE {API_ROLE}")
        await connection.execute("SELECT set_config('taskapi.user_id', $1, true)", user_id)
        # The owner's lock, first, as every writer takes it: a write of the user's in flight
        # ends before the deletes read, so none survives them, and no lock order can deadlock.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", user_id)
        tasks = await connection.execute("DELETE FROM tasks WHERE user_id = $1", user_id)
        keys = await connection.execute("DELETE FROM idempotency_keys WHERE user_id = $1", user_id)
        # The deletions just recorded, and older ones, their count, any lease of their streams:
        # nothing of the user stays.
        deletions = await connection.execute(
            "DELETE FROM task_tombstones WHERE user_id = $1 AND task_id > 0", user_id
        )
        for table in ("task_counts", "task_watches", "task_streams"):
            await connection.execute(f"DELETE FROM {table} WHERE user_id = $1", user_id)  # noqa: S608  # our own table names
        if _count(tasks) or _count(deletions):
            # One tombstone of no task (a negative id) holds the erasure's place in the feed: a
            # token from before it is refused (410), whatever the user does next. It replaces an
            # earlier erasure's, which it lies after; the janitor forgets it after 31 days.
            await connection.execute(
                "DELETE FROM task_tombstones WHERE user_id = $1 AND task_id < 0", user_id
            )
            await connection.execute(
                "INSERT INTO task_tombstones (task_id, user_id, deleted_at, change_seq)"
                " SELECT -seq, $1, now(), seq FROM nextval('task_change_seq') AS seq",
                user_id,
            )
            # Open streams learn it at once (the triggers notify only while a lease is held).
            await connection.execute("SELECT pg_notify('taskapi_changes', $1)", user_id)
    return ErasedRows(tasks=_count(tasks), idempotency_keys=_count(keys))


def _count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 17".
    return int(status.rsplit(" ", 1)[-1])

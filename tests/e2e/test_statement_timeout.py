"""A write that runs past the statement timeout is answered 503 and never happens afterwards.

The statement is cancelled in PostgreSQL, not only abandoned by the client: a client that retries
after the 503 must not find its first attempt committed behind its back (a duplicate task, or a
412 caused by its own "failed" edit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.conftest import Rows
from tests.e2e.helpers import assert_problem, create, custom_client
from tests.tokens import bearer


async def test_writes_answered_503_after_the_timeout_are_cancelled_not_left_running(
    app_factory: Callable[..., FastAPI], engine: AsyncEngine, rows: Rows, clean_tasks: None
) -> None:
    async with (
        custom_client(app_factory, database_statement_timeout=0.5) as client,
        engine.connect() as writer,
    ):
        task = await create(client, title="original")
        path = f"/api/alice/tasks/{task['id']}"
        # Another writer of alice's holds her lock for longer than the statement timeout.
        transaction = await writer.begin()
        await writer.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('alice', 0))"))
        keyed = {**bearer(), "Idempotency-Key": "during-the-lock"}
        answers = [
            await client.post("/api/alice/tasks", json={"title": "late"}, headers=bearer()),
            await client.post("/api/alice/tasks", json={"title": "late, keyed"}, headers=keyed),
            await client.put(path, json={"title": "late"}, headers=bearer()),
            await client.patch(f"{path}/complete", headers=bearer()),
            await client.delete(path, headers=bearer()),
        ]
        for answer in answers:
            assert_problem(answer, 503, "database_unavailable")
        await transaction.rollback()
        await asyncio.sleep(1)  # a statement still waiting for the lock would commit by now
        assert await rows.count("alice") == 1
        stored = await rows.get(task["id"])
        assert stored is not None
        assert (stored["title"], stored["completed"], stored["version"]) == ("original", False, 1)
        # The key was never claimed: the retry creates the task, once.
        retry = await client.post("/api/alice/tasks", json={"title": "late, keyed"}, headers=keyed)
        assert retry.status_code == 201, retry.text
        assert "idempotent-replayed" not in retry.headers
        assert await rows.count("alice") == 2

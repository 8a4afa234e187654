"""Listing order as PostgreSQL sorts it: creation time, ties by id (the rest: tests/unit/http)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.tokens import bearer


async def test_list_ties_on_creation_time_are_ordered_by_id(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    same = datetime(2026, 1, 14, 9, 30, tzinfo=UTC)
    earlier = same - timedelta(hours=1)
    # Inserted out of id order; id 9 is the oldest by creation time despite its larger id.
    async with engine.begin() as connection:
        for task_id, created_at in ((3, same), (1, same), (9, earlier), (2, same)):
            await connection.execute(
                text(
                    "INSERT INTO tasks (id, user_id, title, description, completed, completed_at,"
                    " created_at, updated_at, version) OVERRIDING SYSTEM VALUE VALUES"
                    " (:id, 'alice', :title, NULL, false, NULL, :at, :at, 1)"
                ),
                {"id": task_id, "title": f"task {task_id}", "at": created_at},
            )

    response = await client.get("/api/alice/tasks", headers=bearer())

    assert response.status_code == 200
    assert [task["id"] for task in response.json()] == [9, 1, 2, 3]

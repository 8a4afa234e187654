from __future__ import annotations

import httpx

from tests.tokens import bearer


async def test_create_then_list(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/alice/tasks", json={"title": "one"}, headers=bearer())
    assert created.status_code == 201
    listed = await client.get("/api/alice/tasks", headers=bearer())
    assert listed.status_code == 200
    assert [task["title"] for task in listed.json()] == ["one"]

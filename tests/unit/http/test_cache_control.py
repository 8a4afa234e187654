"""A user's data is never kept by a shared cache, and a browser revalidates before reusing it."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import create
from tests.tokens import bearer

PRIVATE = "private, no-cache"


async def test_every_answer_about_a_users_tasks_is_private_and_revalidated(
    client: httpx.AsyncClient,
) -> None:
    task = await create(client, "alice")
    path = f"/api/alice/tasks/{task['id']}"
    created = await client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer())

    answers = [
        created,
        await client.get("/api/alice/tasks", headers=bearer()),
        await client.get(path, headers=bearer()),
        await client.get(path, headers={**bearer(), "If-None-Match": '"1"'}),  # 304
        await client.put(path, json={"title": "y"}, headers={**bearer(), "If-Match": '"9"'}),
        await client.get("/api/alice/tags", headers=bearer()),
        await client.get("/api/alice/tasks/changes", headers=bearer()),
        await client.get(path),  # 401
        await client.get("/api/bob/tasks", headers=bearer()),  # 403
        await client.get(f"{path}0", headers=bearer()),  # 404
    ]

    assert [a.status_code for a in answers] == [201, 200, 200, 304, 412, 200, 200, 401, 403, 404]
    for answer in answers:
        assert answer.headers.get_list("cache-control") == [PRIVATE], answer.status_code


async def test_the_service_endpoints_say_nothing_of_caching(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert "cache-control" not in (await client.get(path)).headers, path

"""A page stops before its JSON passes 4 MiB, and its Link continues where it stopped."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import httpx

from adapters.http.schemas import MAX_PAGE_BYTES
from tests.fakes import FakeClock, FakeTaskRepository
from tests.tokens import bearer


async def test_a_page_of_long_tasks_stops_at_the_cap_and_continues_by_link(
    client: httpx.AsyncClient, repository: FakeTaskRepository
) -> None:
    created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    first = repository.tasks[created.json()["id"]]
    start = FakeClock().now()
    for number in range(1, 1001):  # a thousand tasks of ~5.3 KB each: ~5.3 MB in all
        repository.tasks[number] = replace(
            first,
            id=number,
            title=f"task {number}",
            description="d" * 5000,
            created_at=start + timedelta(seconds=number),
        )

    seen: list[int] = []
    url = "/api/alice/tasks?limit=1000"
    pages = 0
    while url:
        response = await client.get(url, headers=bearer())
        assert response.status_code == 200
        assert len(response.content) <= MAX_PAGE_BYTES
        assert response.headers["x-total-count"] == "1000"
        seen += [task["id"] for task in json.loads(response.content)]
        link = response.headers.get("link")
        url = link.split(";")[0].strip("<>") if link else ""
        pages += 1
    assert pages == 2  # the first page stopped early
    assert seen == list(range(1, 1001))  # nothing repeated, nothing skipped

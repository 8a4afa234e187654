"""A page stops before its JSON passes 4 MiB, and its Link continues where it stopped."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest

from adapters.http.schemas import MAX_PAGE_BYTES, change_json
from application.sync import Upsert
from domain.task import Priority
from tests.fakes import FakeClock, FakeTaskRepository
from tests.tokens import bearer


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", list(range(1, 1001))),
        ("&sort=-created_at", list(range(1000, 0, -1))),
        # Priorities none/low/medium/high by id % 4, high first, ties by id descending.
        (
            "&sort=-priority",
            [n for rank in (3, 2, 1, 0) for n in range(1000, 0, -1) if n % 4 == rank],
        ),
        ("&sort=title&priority=high,low", sorted((n for n in range(1, 1001) if n % 2), key=str)),
    ],
)
async def test_a_page_of_long_tasks_stops_at_the_cap_and_continues_by_link(
    client: httpx.AsyncClient, repository: FakeTaskRepository, query: str, expected: list[int]
) -> None:
    created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    first = repository.tasks[created.json()["id"]]
    start = FakeClock().now()
    for number in range(1, 1001):  # a thousand tasks of ~5.3 KB each: ~5.3 MB in all
        repository.tasks[number] = replace(
            first,
            id=number,
            title=str(number),
            description="d" * 5000,
            priority=Priority.of_rank(number % 4),
            created_at=start + timedelta(seconds=number),
        )

    seen: list[int] = []
    url = f"/api/alice/tasks?limit=1000{query}"
    pages = 0
    while url:
        response = await client.get(url, headers=bearer())
        assert response.status_code == 200
        assert len(response.content) <= MAX_PAGE_BYTES
        assert response.headers["x-total-count"] == str(len(expected))
        seen += [task["id"] for task in json.loads(response.content)]
        link = response.headers.get("link")
        url = link.split(";")[0].strip("<>") if link else ""
        pages += 1
    assert pages == (2 if len(expected) == 1000 else 1)  # a full first page stopped early
    assert seen == expected  # in order, nothing repeated, nothing skipped


async def test_a_page_of_changes_stops_at_the_cap_and_next_continues(
    client: httpx.AsyncClient, repository: FakeTaskRepository
) -> None:
    created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    first = repository.tasks[created.json()["id"]]
    for number in range(1, 1001):  # ~5.3 MB of changes in all
        repository.tasks[number] = replace(first, id=number, description="d" * 5000)
        repository.places[number] = number

    seen: list[int] = []
    since: dict[str, str] = {}
    pages = 0
    while True:
        response = await client.get(
            "/api/alice/tasks/changes", params={"limit": 1000, **since}, headers=bearer()
        )
        assert response.status_code == 200
        assert len(response.content) <= MAX_PAGE_BYTES
        body = json.loads(response.content)
        seen += [change["task"]["id"] for change in body["changes"]]
        since = {"since": body["next"]}
        pages += 1
        if not body["has_more"]:
            break
    assert pages == 2  # the first page stopped early, and said that more follows
    assert seen == list(range(1, 1001))


@pytest.mark.parametrize("short_of_the_cap", [0, 40, 80, 120, 160, 200])
async def test_a_page_of_changes_that_nearly_fills_the_cap_stays_under_it_with_its_envelope(
    client: httpx.AsyncClient, repository: FakeTaskRepository, short_of_the_cap: int
) -> None:
    # The changes alone come to just under 4 MiB: with "next" (its token) and "has_more" around
    # them the page would pass it, so the last change waits for the next page.
    created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    first = repository.tasks[created.json()["id"]]

    def store(number: int, description: str) -> int:
        task = replace(first, id=number, description=description)
        repository.tasks[number] = task
        repository.places[number] = number
        return len(change_json(Upsert(task, number))) + 1  # and its comma

    filled = sum(store(number, "d" * 5000) for number in range(1, 781))
    last = MAX_PAGE_BYTES - short_of_the_cap - filled
    store(781, "d" * (5000 - store(781, "d" * 5000) + last))
    response = await client.get(
        "/api/alice/tasks/changes", params={"limit": 1000}, headers=bearer()
    )
    assert response.status_code == 200
    assert len(response.content) <= MAX_PAGE_BYTES
    body = json.loads(response.content)
    assert len(body["changes"]) == 780
    assert body["has_more"] is True

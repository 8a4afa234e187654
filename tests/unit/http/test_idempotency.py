"""Idempotency-Key on POST, as HTTP shows it: replayed on retry, 409 on reuse, 400 if invalid.

Races, expiry, the janitor and a key held in flight need PostgreSQL: tests/e2e/test_idempotency.py.
"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import assert_problem
from tests.fakes import FakeTaskRepository
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

REPLAYED_HEADERS = ("location", "etag", "content-type")


def keyed(key: str, user: str = "alice") -> dict[str, str]:
    return {**bearer(user), "Idempotency-Key": key}


async def test_a_retry_returns_the_first_response_and_creates_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    body = {"title": "Pay rent", "description": "before the 1st"}
    first = await client.post("/api/alice/tasks", json=body, headers=keyed("k-1"))
    retry = await client.post("/api/alice/tasks", json=body, headers=keyed("k-1"))
    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    for header in REPLAYED_HEADERS:
        assert retry.headers[header] == first.headers[header]
    assert "idempotent-replayed" not in first.headers
    assert retry.headers["idempotent-replayed"] == "true"
    assert await rows.count("alice") == 1


async def test_the_replay_is_the_first_response_even_after_the_task_changed(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    first = await client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed("k-2"))
    task_id = first.json()["id"]
    await client.put(f"/api/alice/tasks/{task_id}", json={"title": "b"}, headers=bearer())
    retry = await client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed("k-2"))
    assert retry.content == first.content
    assert await rows.count("alice") == 1


async def test_the_same_key_with_another_body_is_409(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    await client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed("k-3"))
    other = await client.post("/api/alice/tasks", json={"title": "b"}, headers=keyed("k-3"))
    assert_problem(other, 409, "idempotency_conflict")
    with_description = await client.post(
        "/api/alice/tasks", json={"title": "a", "description": "x"}, headers=keyed("k-3")
    )
    assert_problem(with_description, 409, "idempotency_conflict")
    assert await rows.count("alice") == 1


async def test_whitespace_around_a_key_is_not_part_of_it(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    first = await client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed("k-4 "))
    retry = await client.post("/api/alice/tasks", json={"title": "a"}, headers=keyed(" k-4"))
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.content == first.content
    assert await rows.count("alice") == 1


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "clé", "tab\there"])
async def test_an_invalid_key_is_400(
    client: httpx.AsyncClient, repository: FakeTaskRepository, rows: StoredTasks, key: str
) -> None:
    response = await client.post(
        "/api/alice/tasks",
        json={"title": "a"},
        headers=[
            (b"authorization", bearer()["Authorization"].encode()),
            (b"idempotency-key", key.encode()),
        ],
    )
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert await rows.count() == 0
    assert repository.keys == {}


async def test_a_refused_body_does_not_use_up_the_key(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    refused = await client.post("/api/alice/tasks", json={"title": ""}, headers=keyed("k-4"))
    assert_problem(refused, 400, "validation_error")
    fixed = await client.post("/api/alice/tasks", json={"title": "fixed"}, headers=keyed("k-4"))
    assert fixed.status_code == 201
    assert await rows.count("alice") == 1


async def test_without_a_key_every_post_creates(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    for _ in range(2):
        await client.post("/api/alice/tasks", json={"title": "same"}, headers=bearer())
    assert await rows.count("alice") == 2

"""US3: view a single task (GET /api/{user_id}/tasks/{task_id})."""

from __future__ import annotations

from dataclasses import replace

import httpx

from tests.e2e.helpers import assert_problem, assert_task_response, create
from tests.fakes import FakeTaskRepository
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks


async def test_us3_s1_get_returns_the_complete_task(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice", "Buy milk", "two litres")

    response = await client.get(f"/api/alice/tasks/{created['id']}", headers=bearer())

    task = assert_task_response(response, 200, user="alice")
    assert task == created
    assert response.headers["etag"] == '"1"'


async def test_a_task_is_shown_as_it_is_now_whatever_was_shown_before_under_its_id(
    client: httpx.AsyncClient, repository: FakeTaskRepository
) -> None:
    # The JSON last written for a task is reused only for that very entity: here another entity
    # comes under the same id and even the same version, and it is what the answer shows.
    created = await create(client, "alice", "Buy milk")
    path = f"/api/alice/tasks/{created['id']}"
    assert (await client.get(path, headers=bearer())).json() == created
    listed = await client.get("/api/alice/tasks", headers=bearer())
    assert listed.json() == [created]

    stored = repository.tasks[created["id"]]
    repository.tasks[created["id"]] = replace(stored, title="Buy oat milk", tags=("shop",))

    expected = {**created, "title": "Buy oat milk", "tags": ["shop"]}
    shown = await client.get(path, headers=bearer())
    assert assert_task_response(shown, 200, user="alice") == expected
    assert (await client.get("/api/alice/tasks", headers=bearer())).json() == [expected]


async def test_us3_s2_missing_task_is_404(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice")

    response = await client.get(f"/api/alice/tasks/{created['id'] + 1000}", headers=bearer())

    assert_problem(response, 404, "task_not_found")


async def test_us3_s3_path_naming_another_user_is_403(client: httpx.AsyncClient) -> None:
    bobs = await create(client, "bob", "bob's secret plan")

    response = await client.get(f"/api/bob/tasks/{bobs['id']}", headers=bearer("alice"))

    assert_problem(response, 403, "forbidden")
    assert "secret plan" not in response.text


async def test_us3_s3_another_users_task_under_my_path_is_404_like_a_missing_one(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    bobs = await create(client, "bob", "bob's secret plan")
    missing_id = bobs["id"] + 1000

    foreign = await client.get(f"/api/alice/tasks/{bobs['id']}", headers=bearer("alice"))
    missing = await client.get(f"/api/alice/tasks/{missing_id}", headers=bearer("alice"))

    foreign_body = assert_problem(foreign, 404, "task_not_found")
    missing_body = assert_problem(missing, 404, "task_not_found")
    assert "secret plan" not in foreign.text
    # Indistinguishable: same body apart from the request id, same headers that matter.
    del foreign_body["request_id"], missing_body["request_id"]
    assert foreign_body == missing_body
    assert foreign.headers.get("etag") is None
    assert missing.headers.get("etag") is None
    assert await rows.get(bobs["id"]) is not None


async def test_us3_s4_unauthenticated_get_is_401(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice", "private")

    response = await client.get(f"/api/alice/tasks/{created['id']}")

    assert_problem(response, 401, "unauthorized")
    assert "private" not in response.text


async def test_get_unauthenticated_for_a_missing_task_is_401_not_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/alice/tasks/999")

    assert_problem(response, 401, "unauthorized")

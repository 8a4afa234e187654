"""US5: mark a task complete (PATCH /api/{user_id}/tasks/{task_id}/complete)."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.e2e.helpers import assert_problem, assert_task_response, create
from tests.fakes import FakeClock
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks


async def test_us5_s1_completing_sets_status_and_completion_time(
    client: httpx.AsyncClient, rows: StoredTasks, clock: FakeClock
) -> None:
    created = await create(client, "alice", "finish me", "details")
    now = clock.advance(60.5)

    response = await client.patch(f"/api/alice/tasks/{created['id']}/complete", headers=bearer())

    task = assert_task_response(response, 200, user="alice")
    assert task["completed"] is True
    assert datetime.fromisoformat(task["completed_at"]) == now
    assert datetime.fromisoformat(task["updated_at"]) == now
    assert task["version"] == 2
    assert response.headers["etag"] == '"2"'
    # Nothing else about the task changes.
    assert task["title"] == "finish me"
    assert task["description"] == "details"
    assert task["created_at"] == created["created_at"]
    stored = await rows.get(created["id"])
    assert stored is not None
    assert stored["completed"] is True
    assert stored["completed_at"] == now
    fetched = await client.get(f"/api/alice/tasks/{created['id']}", headers=bearer())
    assert fetched.json() == task


async def test_us5_s2_completing_again_is_idempotent(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")
    first = await client.patch(f"/api/alice/tasks/{created['id']}/complete", headers=bearer())
    stored_first = await rows.get(created["id"])

    second = await client.patch(f"/api/alice/tasks/{created['id']}/complete", headers=bearer())

    first_task = assert_task_response(first, 200, user="alice")
    second_task = assert_task_response(second, 200, user="alice")
    assert second_task == first_task
    assert second_task["version"] == 2
    assert second.headers["etag"] == first.headers["etag"] == '"2"'
    assert second_task["completed_at"] == first_task["completed_at"]
    assert await rows.get(created["id"]) == stored_first


async def test_us5_s3_completing_via_another_users_path_is_403_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    bobs = await create(client, "bob", "bob's")
    before = await rows.get(bobs["id"])

    response = await client.patch(f"/api/bob/tasks/{bobs['id']}/complete", headers=bearer("alice"))

    assert_problem(response, 403, "forbidden")
    assert await rows.get(bobs["id"]) == before


async def test_us5_s3_completing_another_users_task_under_my_path_is_404_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    bobs = await create(client, "bob", "bob's")
    before = await rows.get(bobs["id"])

    response = await client.patch(
        f"/api/alice/tasks/{bobs['id']}/complete", headers=bearer("alice")
    )

    assert_problem(response, 404, "task_not_found")
    assert await rows.get(bobs["id"]) == before


async def test_us5_s4_completing_a_missing_task_is_404(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")

    response = await client.patch(
        f"/api/alice/tasks/{created['id'] + 1000}/complete", headers=bearer()
    )

    assert_problem(response, 404, "task_not_found")
    assert await rows.count() == 1


async def test_us5_s5_unauthenticated_complete_is_401_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")
    before = await rows.get(created["id"])

    response = await client.patch(f"/api/alice/tasks/{created['id']}/complete")

    assert_problem(response, 401, "unauthorized")
    assert await rows.get(created["id"]) == before


async def test_complete_after_reopen_sets_a_new_completion(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice")
    url = f"/api/alice/tasks/{created['id']}"
    await client.patch(f"{url}/complete", headers=bearer())
    await client.put(url, json={"completed": False}, headers=bearer())

    response = await client.patch(f"{url}/complete", headers=bearer())

    task = assert_task_response(response, 200, user="alice")
    assert task["completed"] is True
    assert task["completed_at"] is not None
    assert task["version"] == 4


async def test_complete_ignores_a_body(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice", "title")

    response = await client.patch(
        f"/api/alice/tasks/{created['id']}/complete", json={"title": "x"}, headers=bearer()
    )

    task = assert_task_response(response, 200, user="alice")
    assert task["completed"] is True
    assert task["title"] == "title"

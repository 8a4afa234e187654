"""US6: delete a task (DELETE /api/{user_id}/tasks/{task_id})."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import assert_problem, create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks


async def test_us6_s1_delete_is_204_with_empty_body_and_removes_the_row(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")
    kept = await create(client, "alice", "kept")

    response = await client.delete(f"/api/alice/tasks/{created['id']}", headers=bearer())

    assert response.status_code == 204
    assert response.content == b""
    assert await rows.get(created["id"]) is None
    assert await rows.get(kept["id"]) is not None
    listed = (await client.get("/api/alice/tasks", headers=bearer())).json()
    assert [task["id"] for task in listed] == [kept["id"]]


async def test_us6_s2_deleting_a_missing_task_is_404(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")

    response = await client.delete(f"/api/alice/tasks/{created['id'] + 1000}", headers=bearer())

    assert_problem(response, 404, "task_not_found")
    assert await rows.count() == 1


async def test_us6_s3_deleting_via_another_users_path_is_403_and_keeps_the_task(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    bobs = await create(client, "bob")
    before = await rows.get(bobs["id"])

    response = await client.delete(f"/api/bob/tasks/{bobs['id']}", headers=bearer("alice"))

    assert_problem(response, 403, "forbidden")
    assert await rows.get(bobs["id"]) == before


async def test_us6_s3_deleting_another_users_task_under_my_path_is_404_and_keeps_it(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    bobs = await create(client, "bob")
    before = await rows.get(bobs["id"])

    response = await client.delete(f"/api/alice/tasks/{bobs['id']}", headers=bearer("alice"))

    assert_problem(response, 404, "task_not_found")
    assert await rows.get(bobs["id"]) == before


async def test_us6_s4_unauthenticated_delete_is_401_and_keeps_the_task(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")

    response = await client.delete(f"/api/alice/tasks/{created['id']}")

    assert_problem(response, 401, "unauthorized")
    assert await rows.get(created["id"]) is not None


async def test_us6_s5_deleted_task_is_404_afterwards(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice")
    url = f"/api/alice/tasks/{created['id']}"
    deleted = await client.delete(url, headers=bearer())
    assert deleted.status_code == 204

    fetched = await client.get(url, headers=bearer())
    updated = await client.put(url, json={"title": "zombie"}, headers=bearer())
    completed = await client.patch(f"{url}/complete", headers=bearer())
    deleted_again = await client.delete(url, headers=bearer())

    assert_problem(fetched, 404, "task_not_found")
    assert_problem(updated, 404, "task_not_found")
    assert_problem(completed, 404, "task_not_found")
    assert_problem(deleted_again, 404, "task_not_found")


async def test_delete_ids_are_not_reused(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice")
    await client.delete(f"/api/alice/tasks/{created['id']}", headers=bearer())

    again = await create(client, "alice")

    assert again["id"] != created["id"]
    gone = await client.get(f"/api/alice/tasks/{created['id']}", headers=bearer())
    assert gone.status_code == 404

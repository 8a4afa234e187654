"""US1: view all personal tasks (GET /api/{user_id}/tasks), with limit and completed filter."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import assert_problem, assert_task, assert_validation_problem, create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks


async def test_us1_s1_lists_all_five_tasks_in_creation_order(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = [await create(client, "alice", f"task {n}") for n in range(5)]

    response = await client.get("/api/alice/tasks", headers=bearer("alice"))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    listed = response.json()
    assert listed == created
    for task in listed:
        assert_task(task, user="alice")
    assert [task["created_at"] for task in listed] == sorted(t["created_at"] for t in listed)
    assert await rows.count("alice") == 5


async def test_us1_s2_user_without_tasks_gets_an_empty_list(client: httpx.AsyncClient) -> None:
    await create(client, "bob", "bob's")

    response = await client.get("/api/alice/tasks", headers=bearer("alice"))

    assert response.status_code == 200
    assert response.json() == []


async def test_us1_s3_never_lists_other_users_tasks(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    mine = [await create(client, "alice", "mine 1"), await create(client, "alice", "mine 2")]
    await create(client, "bob", "bob's 1")
    await create(client, "bob", "bob's 2")
    await create(client, "alice-2", "similar name")

    response = await client.get("/api/alice/tasks", headers=bearer("alice"))

    assert response.status_code == 200
    assert response.json() == mine
    assert {task["user_id"] for task in response.json()} == {"alice"}
    assert await rows.count() == 5


async def test_us1_s4_unauthenticated_list_is_401(client: httpx.AsyncClient) -> None:
    await create(client, "alice", "secret")

    response = await client.get("/api/alice/tasks")

    assert_problem(response, 401, "unauthorized")
    assert "secret" not in response.text


async def test_us1_s5_listing_another_users_tasks_is_403(client: httpx.AsyncClient) -> None:
    await create(client, "bob", "bob's private task")

    response = await client.get("/api/bob/tasks", headers=bearer("alice"))

    assert_problem(response, 403, "forbidden")
    assert "private" not in response.text


async def test_list_stays_in_creation_order_after_updates(client: httpx.AsyncClient) -> None:
    first = await create(client, "alice", "first")
    second = await create(client, "alice", "second")
    updated = await client.put(
        f"/api/alice/tasks/{first['id']}", json={"title": "first, edited"}, headers=bearer()
    )
    assert updated.status_code == 200

    listed = (await client.get("/api/alice/tasks", headers=bearer())).json()

    assert [task["id"] for task in listed] == [first["id"], second["id"]]
    assert listed[0]["title"] == "first, edited"


async def test_list_default_limit_is_50(client: httpx.AsyncClient) -> None:
    created = [await create(client, "alice", f"task {n}") for n in range(51)]

    response = await client.get("/api/alice/tasks", headers=bearer())

    assert response.status_code == 200
    assert [task["id"] for task in response.json()] == [task["id"] for task in created[:50]]


@pytest.mark.parametrize(("limit", "expected"), [(1, 1), (2, 2), (3, 3), (1000, 3)])
async def test_list_limit_caps_the_number_of_tasks(
    client: httpx.AsyncClient, limit: int, expected: int
) -> None:
    created = [await create(client, "alice", f"task {n}") for n in range(3)]

    response = await client.get("/api/alice/tasks", params={"limit": limit}, headers=bearer())

    assert response.status_code == 200
    assert response.json() == created[:expected]


@pytest.mark.parametrize(
    "limit",
    ["0", "-1", "1001", "1000000", "abc", "", "1.5", "1e3", "ten", "5.0", "+5", " 5", "5 ", "1_0"],
)
async def test_list_invalid_limit_is_400(client: httpx.AsyncClient, limit: str) -> None:
    await create(client, "alice")

    response = await client.get("/api/alice/tasks", params={"limit": limit}, headers=bearer())

    assert_validation_problem(response, "limit")


async def test_list_completed_filter(client: httpx.AsyncClient) -> None:
    open_1 = await create(client, "alice", "open 1")
    done = await create(client, "alice", "done")
    open_2 = await create(client, "alice", "open 2")
    completed = await client.patch(f"/api/alice/tasks/{done['id']}/complete", headers=bearer())
    assert completed.status_code == 200

    only_done = await client.get("/api/alice/tasks?completed=true", headers=bearer())
    only_open = await client.get("/api/alice/tasks?completed=false", headers=bearer())
    everything = await client.get("/api/alice/tasks", headers=bearer())

    assert only_done.status_code == 200
    assert [task["id"] for task in only_done.json()] == [done["id"]]
    assert only_done.json()[0]["completed"] is True
    assert only_open.status_code == 200
    assert [task["id"] for task in only_open.json()] == [open_1["id"], open_2["id"]]
    assert [task["id"] for task in everything.json()] == [open_1["id"], done["id"], open_2["id"]]


async def test_list_completed_filter_with_limit(client: httpx.AsyncClient) -> None:
    tasks = [await create(client, "alice", f"task {n}") for n in range(4)]
    for task in tasks:
        await client.patch(f"/api/alice/tasks/{task['id']}/complete", headers=bearer())

    response = await client.get("/api/alice/tasks?completed=true&limit=2", headers=bearer())

    assert response.status_code == 200
    assert [task["id"] for task in response.json()] == [tasks[0]["id"], tasks[1]["id"]]


@pytest.mark.parametrize("value", ["maybe", "", "2", "null", "truee", "yes", "1", "0", "on"])
async def test_list_invalid_completed_filter_is_400(client: httpx.AsyncClient, value: str) -> None:
    await create(client, "alice")

    response = await client.get("/api/alice/tasks", params={"completed": value}, headers=bearer())

    assert_validation_problem(response, "completed")


async def test_list_query_is_validated_only_after_ownership(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/bob/tasks?limit=0&completed=maybe", headers=bearer("alice"))

    assert_problem(response, 403, "forbidden")


async def test_list_query_is_validated_only_after_authentication(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/alice/tasks?limit=0")

    assert_problem(response, 401, "unauthorized")

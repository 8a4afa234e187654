"""US4: update a task (PUT /api/{user_id}/tasks/{task_id})."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    assert_problem,
    assert_task_response,
    assert_validation_problem,
    create,
)
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks


async def test_us4_s1_update_title_returns_the_updated_task(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice", "Buy milk", "from the shop")

    response = await client.put(
        f"/api/alice/tasks/{created['id']}", json={"title": "New title"}, headers=bearer()
    )

    task = assert_task_response(response, 200, user="alice")
    assert task["title"] == "New title"
    assert task["description"] == "from the shop"
    assert task["completed"] is False
    assert task["id"] == created["id"]
    assert task["created_at"] == created["created_at"]
    assert task["updated_at"] >= created["updated_at"]
    assert task["version"] == 2
    assert response.headers["etag"] == '"2"'
    fetched = await client.get(f"/api/alice/tasks/{created['id']}", headers=bearer())
    assert fetched.json() == task
    stored = await rows.get(created["id"])
    assert stored is not None
    assert stored["title"] == "New title"
    assert stored["version"] == 2


@pytest.mark.parametrize("title", ["", "   ", "\t\n"])
async def test_us4_s2_update_with_empty_title_is_400_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks, title: str
) -> None:
    created = await create(client, "alice", "keep me")
    before = await rows.get(created["id"])

    response = await client.put(
        f"/api/alice/tasks/{created['id']}", json={"title": title}, headers=bearer()
    )

    assert_validation_problem(response, "title")
    assert await rows.get(created["id"]) == before


async def test_us4_s3_updating_via_another_users_path_is_403_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    bobs = await create(client, "bob", "bob's")
    before = await rows.get(bobs["id"])

    response = await client.put(
        f"/api/bob/tasks/{bobs['id']}", json={"title": "hijacked"}, headers=bearer("alice")
    )

    assert_problem(response, 403, "forbidden")
    assert await rows.get(bobs["id"]) == before


async def test_us4_s3_updating_another_users_task_under_my_path_is_404_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    bobs = await create(client, "bob", "bob's")
    before = await rows.get(bobs["id"])

    response = await client.put(
        f"/api/alice/tasks/{bobs['id']}", json={"title": "hijacked"}, headers=bearer("alice")
    )

    assert_problem(response, 404, "task_not_found")
    assert await rows.get(bobs["id"]) == before


async def test_us4_s4_updating_a_missing_task_is_404(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")

    response = await client.put(
        f"/api/alice/tasks/{created['id'] + 1000}", json={"title": "x"}, headers=bearer()
    )

    assert_problem(response, 404, "task_not_found")
    assert await rows.count() == 1


async def test_us4_s5_unauthenticated_update_is_401_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice", "original")
    before = await rows.get(created["id"])

    response = await client.put(f"/api/alice/tasks/{created['id']}", json={"title": "x"})

    assert_problem(response, 401, "unauthorized")
    assert await rows.get(created["id"]) == before


async def test_update_left_out_fields_keep_their_value(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice", "title", "description")

    described = await client.put(
        f"/api/alice/tasks/{created['id']}", json={"description": "new text"}, headers=bearer()
    )

    task = assert_task_response(described, 200, user="alice")
    assert task["title"] == "title"
    assert task["description"] == "new text"
    assert task["completed"] is False


async def test_update_description_null_removes_it(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice", "title", "description")

    response = await client.put(
        f"/api/alice/tasks/{created['id']}", json={"description": None}, headers=bearer()
    )

    task = assert_task_response(response, 200, user="alice")
    assert task["description"] is None
    assert task["title"] == "title"
    stored = await rows.get(created["id"])
    assert stored is not None
    assert stored["description"] is None


async def test_update_trims_the_title(client: httpx.AsyncClient, rows: StoredTasks) -> None:
    created = await create(client, "alice")

    response = await client.put(
        f"/api/alice/tasks/{created['id']}", json={"title": "  spaced  "}, headers=bearer()
    )

    assert assert_task_response(response, 200, user="alice")["title"] == "spaced"
    stored = await rows.get(created["id"])
    assert stored is not None
    assert stored["title"] == "spaced"


async def test_update_version_grows_by_one_per_put(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice", "v")
    assert created["version"] == 1

    bodies: list[dict[str, Any]] = [
        {"title": "v2"},
        {"title": "v2"},  # same value: still a PUT, still a new version
        {"description": "d"},
        {"completed": True},
        {"completed": False},
    ]
    for expected, body in enumerate(bodies, start=2):
        response = await client.put(
            f"/api/alice/tasks/{created['id']}", json=body, headers=bearer()
        )
        task = assert_task_response(response, 200, user="alice")
        assert task["version"] == expected
        assert response.headers["etag"] == f'"{expected}"'


async def test_update_completed_true_sets_completed_at(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")

    response = await client.put(
        f"/api/alice/tasks/{created['id']}", json={"completed": True}, headers=bearer()
    )

    task = assert_task_response(response, 200, user="alice")
    assert task["completed"] is True
    assert task["completed_at"] is not None
    stored = await rows.get(created["id"])
    assert stored is not None
    assert stored["completed"] is True
    assert stored["completed_at"] is not None


async def test_update_completed_false_reopens_and_clears_completed_at(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")
    done = await client.patch(f"/api/alice/tasks/{created['id']}/complete", headers=bearer())
    assert done.json()["completed_at"] is not None

    response = await client.put(
        f"/api/alice/tasks/{created['id']}", json={"completed": False}, headers=bearer()
    )

    task = assert_task_response(response, 200, user="alice")
    assert task["completed"] is False
    assert task["completed_at"] is None
    assert task["version"] == 3
    stored = await rows.get(created["id"])
    assert stored is not None
    assert stored["completed"] is False
    assert stored["completed_at"] is None


async def test_update_completed_true_on_a_complete_task_keeps_completed_at(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, "alice")
    done = (
        await client.patch(f"/api/alice/tasks/{created['id']}/complete", headers=bearer())
    ).json()

    response = await client.put(
        f"/api/alice/tasks/{created['id']}",
        json={"completed": True, "title": "renamed"},
        headers=bearer(),
    )

    task = assert_task_response(response, 200, user="alice")
    assert task["completed_at"] == done["completed_at"]
    assert task["version"] == done["version"] + 1


async def test_update_all_fields_at_once(client: httpx.AsyncClient) -> None:
    created = await create(client, "alice", "old", "old text")

    response = await client.put(
        f"/api/alice/tasks/{created['id']}",
        json={"title": "new", "description": "new text", "completed": True},
        headers=bearer(),
    )

    task = assert_task_response(response, 200, user="alice")
    assert (task["title"], task["description"], task["completed"]) == ("new", "new text", True)
    assert task["version"] == 2


async def test_update_with_no_fields_is_400_and_changes_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    created = await create(client, "alice")
    before = await rows.get(created["id"])

    response = await client.put(f"/api/alice/tasks/{created['id']}", json={}, headers=bearer())

    assert_validation_problem(response)
    assert await rows.get(created["id"]) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"completed": None}, "completed"),
        ({"title": None, "description": "d"}, "title"),
    ],
)
async def test_update_null_for_a_non_nullable_field_is_400(
    client: httpx.AsyncClient, rows: StoredTasks, body: dict[str, Any], field: str
) -> None:
    created = await create(client, "alice", "kept", "kept too")
    before = await rows.get(created["id"])

    response = await client.put(f"/api/alice/tasks/{created['id']}", json=body, headers=bearer())

    assert_validation_problem(response, field)
    assert await rows.get(created["id"]) == before


async def test_update_invalid_body_on_a_missing_task_is_400_before_404(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put("/api/alice/tasks/999", json={"title": ""}, headers=bearer())

    assert_validation_problem(response, "title")

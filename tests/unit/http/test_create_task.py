"""US2: create a new task (POST /api/{user_id}/tasks)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.helpers import assert_problem, assert_task_response, assert_validation_problem
from tests.fakes import FakeClock
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks


async def test_us2_s1_created_task_is_incomplete_and_mine(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    response = await client.post(
        "/api/alice/tasks", json={"title": "Buy groceries"}, headers=bearer("alice")
    )

    task = assert_task_response(response, 201, user="alice")
    assert task["title"] == "Buy groceries"
    assert task["completed"] is False
    assert task["completed_at"] is None
    assert task["description"] is None
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["user_id"] == "alice"
    assert stored["title"] == "Buy groceries"
    assert stored["completed"] is False
    assert stored["completed_at"] is None
    listed = (await client.get("/api/alice/tasks", headers=bearer("alice"))).json()
    assert listed == [task]


async def test_us2_s2_empty_title_is_400_with_validation_message(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    response = await client.post("/api/alice/tasks", json={"title": ""}, headers=bearer())

    body = assert_validation_problem(response, "title")
    assert "title" in body["detail"]
    assert await rows.count() == 0


async def test_us2_s3_unauthenticated_create_is_401_and_stores_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    response = await client.post("/api/alice/tasks", json={"title": "sneaky"})

    assert_problem(response, 401, "unauthorized")
    assert await rows.count() == 0


async def test_us2_s4_creating_for_another_user_is_403_and_stores_nothing(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    response = await client.post(
        "/api/bob/tasks", json={"title": "for bob"}, headers=bearer("alice")
    )

    assert_problem(response, 403, "forbidden")
    assert await rows.count() == 0


async def test_us2_s5_created_is_201_with_full_details_and_id(
    client: httpx.AsyncClient, rows: StoredTasks, clock: FakeClock
) -> None:
    now = clock.advance(0.25)
    response = await client.post(
        "/api/alice/tasks",
        json={"title": "Write report", "description": "Quarterly numbers"},
        headers=bearer(),
    )

    task = assert_task_response(response, 201, user="alice")
    assert task["title"] == "Write report"
    assert task["description"] == "Quarterly numbers"
    assert task["version"] == 1
    assert response.headers["etag"] == '"1"'
    assert task["created_at"] == task["updated_at"]
    assert datetime.fromisoformat(task["created_at"]) == now
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["description"] == "Quarterly numbers"
    assert stored["version"] == 1


async def test_create_sets_location_to_the_new_task(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/alice/tasks", json={"title": "located"}, headers=bearer())

    task = assert_task_response(response, 201, user="alice")
    location = response.headers["location"]
    assert urlsplit(location).path == f"/api/alice/tasks/{task['id']}"
    fetched = await client.get(location, headers=bearer())
    assert fetched.status_code == 200
    assert fetched.json() == task


async def test_create_ids_are_distinct(client: httpx.AsyncClient) -> None:
    ids = set()
    for n in range(3):
        response = await client.post("/api/alice/tasks", json={"title": f"t{n}"}, headers=bearer())
        ids.add(response.json()["id"])
    assert len(ids) == 3


async def test_create_trims_the_title(client: httpx.AsyncClient, rows: StoredTasks) -> None:
    response = await client.post(
        "/api/alice/tasks", json={"title": "  \t Buy groceries \n "}, headers=bearer()
    )

    task = assert_task_response(response, 201, user="alice")
    assert task["title"] == "Buy groceries"
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["title"] == "Buy groceries"


async def test_create_with_null_description(client: httpx.AsyncClient, rows: StoredTasks) -> None:
    response = await client.post(
        "/api/alice/tasks", json={"title": "x", "description": None}, headers=bearer()
    )

    task = assert_task_response(response, 201, user="alice")
    assert task["description"] is None
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["description"] is None


async def test_create_keeps_the_description_as_written(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    description = "  line one\n\tline two\r\n  "
    response = await client.post(
        "/api/alice/tasks", json={"title": "x", "description": description}, headers=bearer()
    )

    task = assert_task_response(response, 201, user="alice")
    assert task["description"] == description
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["description"] == description


async def test_create_for_a_user_id_that_needs_escaping(client: httpx.AsyncClient) -> None:
    user = "josé smith@example.com"
    response = await client.post(
        "/api/jos%C3%A9%20smith@example.com/tasks", json={"title": "hola"}, headers=bearer(user)
    )

    task = assert_task_response(response, 201, user=user)
    fetched = await client.get(response.headers["location"], headers=bearer(user))
    assert fetched.status_code == 200
    assert fetched.json() == task


@pytest.mark.parametrize("user", [".", ".."])
async def test_links_name_a_dot_user_in_a_segment_clients_keep(
    client: httpx.AsyncClient, user: str
) -> None:
    tasks = "/api/" + "%2E" * len(user) + "/tasks"
    response = await client.post(tasks, json={"title": "one"}, headers=bearer(user))

    task = assert_task_response(response, 201, user=user)
    assert response.headers["location"] == f"{tasks}/{task['id']}"
    await client.post(tasks, json={"title": "two"}, headers=bearer(user))
    page = await client.get(f"{tasks}?limit=1", headers=bearer(user))
    assert page.headers["link"].startswith(f"<{tasks}?")


async def test_create_path_user_must_match_exactly(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    for path_user in ("Alice", "alice%20", "%20alice", "alic"):
        response = await client.post(
            f"/api/{path_user}/tasks", json={"title": "x"}, headers=bearer("alice")
        )
        assert_problem(response, 403, "forbidden")
    assert await rows.count() == 0

"""The edges of a task id in the path (test_errors covers what is not one)."""

from __future__ import annotations

from dataclasses import replace

import httpx

from domain.task import TASK_ID_MAX
from tests.fakes import FakeTaskRepository
from tests.tokens import bearer


async def test_the_largest_task_id_is_a_task_id(
    client: httpx.AsyncClient, repository: FakeTaskRepository
) -> None:
    await client.post("/api/alice/tasks", json={"title": "one"}, headers=bearer("alice"))
    repository.tasks = {TASK_ID_MAX: replace(repository.tasks[1], id=TASK_ID_MAX)}
    response = await client.get(f"/api/alice/tasks/{TASK_ID_MAX}", headers=bearer("alice"))
    assert response.status_code == 200
    assert response.json()["id"] == TASK_ID_MAX


async def test_an_invalid_body_is_a_400_before_an_invalid_task_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put("/api/alice/tasks/abc", json={"title": " "}, headers=bearer())
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "title", "message": "must not be empty"}]

"""A user holds at most TASKS_PER_USER_MAX tasks: a POST beyond it is a 409 and creates nothing."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem
from tests.fakes import FakeTaskRepository
from tests.tokens import bearer
from tests.unit.http.test_rate_limits import limited_count


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_a_create_beyond_the_limit_is_409_and_creates_nothing(
    app_factory: Callable[..., FastAPI], repository: FakeTaskRepository
) -> None:
    async with client_of(app_factory(tasks_per_user_max=2)) as client:
        statuses = [
            (
                await client.post("/api/alice/tasks", json={"title": f"t{n}"}, headers=bearer())
            ).status_code
            for n in range(2)
        ]
        refused = await client.post("/api/alice/tasks", json={"title": "t2"}, headers=bearer())
        others = await client.post("/api/bob/tasks", json={"title": "b"}, headers=bearer("bob"))
        metrics = await client.get("/metrics")
    assert statuses == [201, 201]
    problem = assert_problem(refused, 409, "task_limit_reached")
    assert "2" in problem["detail"]
    assert sorted(task.title for task in repository.tasks.values() if task.owner == "alice") == [
        "t0",
        "t1",
    ]
    assert others.status_code == 201  # the limit is per user
    assert limited_count(metrics.text, "tasks_per_user") == 1


async def test_an_idempotent_replay_still_replays_at_the_limit_and_a_new_key_is_kept_for_later(
    app_factory: Callable[..., FastAPI], repository: FakeTaskRepository
) -> None:
    keyed = {**bearer(), "Idempotency-Key": "first"}
    async with client_of(app_factory(tasks_per_user_max=1)) as client:
        first = await client.post("/api/alice/tasks", json={"title": "one"}, headers=keyed)
        replay = await client.post("/api/alice/tasks", json={"title": "one"}, headers=keyed)
        second_key = {**bearer(), "Idempotency-Key": "second"}
        refused = await client.post("/api/alice/tasks", json={"title": "two"}, headers=second_key)
        await client.delete(f"/api/alice/tasks/{first.json()['id']}", headers=bearer())
        later = await client.post("/api/alice/tasks", json={"title": "two"}, headers=second_key)
    assert first.status_code == 201
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert_problem(refused, 409, "task_limit_reached")
    assert later.status_code == 201  # the refused request kept no key
    assert "idempotent-replayed" not in later.headers
    assert [task.title for task in repository.tasks.values()] == ["two"]

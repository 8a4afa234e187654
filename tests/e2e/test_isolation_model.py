"""A randomized multi-user run against a model of what each user should see.

Several users, each with a real token, perform a seeded random sequence of creates, reads,
paged listings, updates, completions and deletes, including attempts on other users' task ids
through their own path (404) and on other users' paths (403). After every response: it holds
no task of anyone else and agrees with the model; at the end the table equals the model.

``ISOLATION_SEED=<n>`` replays a run; the seed of a failing run is attached to its error.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import quote

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.helpers import assert_problem, assert_task, assert_task_response
from tests.tokens import bearer

USERS: Final = ["alice", "bob", "carol", "dave", "ünïcødé 用户"]
OPERATIONS: Final = int(os.environ.get("ISOLATION_OPERATIONS", "400"))
NEXT_LINK: Final = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True, slots=True)
class Expected:
    """What the model says a task is."""

    owner: str
    title: str
    description: str | None
    completed: bool
    version: int


class Run:
    """One seeded run: the users' clients, the model, and the checks made after each response."""

    def __init__(self, client: httpx.AsyncClient, seed: int) -> None:
        self.client = client
        self.rng = random.Random(seed)
        self.headers = {user: bearer(user) for user in USERS}
        self.model: dict[int, Expected] = {}
        self.deleted: set[int] = set()
        self.requests = 0

    def base(self, user: str) -> str:
        return f"/api/{quote(user, safe='')}/tasks"

    def owned(self, user: str) -> list[int]:
        return sorted(task_id for task_id, task in self.model.items() if task.owner == user)

    def foreign(self, user: str) -> list[int]:
        return sorted(task_id for task_id, task in self.model.items() if task.owner != user)

    async def send(self, user: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, url, headers=self.headers[user], **kwargs)
        self.requests += 1
        assert response.status_code < 500, response.text
        self.assert_nothing_foreign(user, response)
        return response

    def assert_nothing_foreign(self, user: str, response: httpx.Response) -> None:
        """No task, id or title of another user in the response."""
        if not response.content or not response.headers.get("content-type", "").startswith(
            "application/json"
        ):
            return
        body = response.json()
        for task in body if isinstance(body, list) else [body]:
            assert task["user_id"] == user, task
            expected = self.model.get(task["id"])
            assert expected is None or expected.owner == user, task

    def assert_matches(self, task: dict[str, Any], user: str) -> None:
        assert_task(task, user=user)
        expected = self.model[task["id"]]
        assert (task["title"], task["description"], task["completed"], task["version"]) == (
            expected.title,
            expected.description,
            expected.completed,
            expected.version,
        ), (task, expected)

    def pick(self, user: str) -> int | None:
        ids = self.owned(user)
        return self.rng.choice(ids) if ids else None

    def title(self) -> str:
        return self.rng.choice(["buy milk", "call mum", "  padded  ", "日本語", "😀", "x" * 500])

    # --- The operations ----------------------------------------------------------------------

    async def create(self, user: str) -> None:
        title = self.title()
        description = self.rng.choice([None, "", "details\nline two"])
        body: dict[str, Any] = {"title": title}
        if description is not None or self.rng.random() < 0.5:
            body["description"] = description
        response = await self.send(user, "POST", self.base(user), json=body)
        task = assert_task_response(response, 201, user=user)
        assert task["id"] not in self.model
        assert task["id"] not in self.deleted
        self.model[task["id"]] = Expected(user, title.strip(), description, False, 1)
        self.assert_matches(task, user)

    async def get(self, user: str) -> None:
        task_id = self.pick(user)
        if task_id is None:
            return
        response = await self.send(user, "GET", f"{self.base(user)}/{task_id}")
        self.assert_matches(assert_task_response(response, 200, user=user), user)

    async def list_all(self, user: str) -> None:
        completed = self.rng.choice([None, True, False])
        query = f"?limit={self.rng.randint(1, 7)}"
        if completed is not None:
            query += f"&completed={str(completed).lower()}"
        url: str | None = self.base(user) + query
        seen: list[int] = []
        while url is not None:
            response = await self.send(user, "GET", url)
            assert response.status_code == 200, response.text
            for task in response.json():
                self.assert_matches(task, user)
                seen.append(task["id"])
            match = NEXT_LINK.search(response.headers.get("link", ""))
            url = match.group(1) if match else None
        expected = [
            task_id
            for task_id in self.owned(user)
            if completed is None or self.model[task_id].completed == completed
        ]
        assert seen == expected, (user, completed, seen, expected)
        assert int(response.headers["x-total-count"]) == len(expected)

    async def update(self, user: str) -> None:
        task_id = self.pick(user)
        if task_id is None:
            return
        body: dict[str, Any] = {}
        while not body:
            if self.rng.random() < 0.5:
                body["title"] = self.title()
            if self.rng.random() < 0.4:
                body["description"] = self.rng.choice([None, "new description"])
            if self.rng.random() < 0.4:
                body["completed"] = self.rng.random() < 0.5
        response = await self.send(user, "PUT", f"{self.base(user)}/{task_id}", json=body)
        old = self.model[task_id]
        self.model[task_id] = replace(
            old,
            title=body["title"].strip() if "title" in body else old.title,
            description=body.get("description", old.description),
            completed=body.get("completed", old.completed),
            version=old.version + 1,
        )
        self.assert_matches(assert_task_response(response, 200, user=user), user)

    async def complete(self, user: str) -> None:
        task_id = self.pick(user)
        if task_id is None:
            return
        response = await self.send(user, "PATCH", f"{self.base(user)}/{task_id}/complete")
        old = self.model[task_id]
        if not old.completed:
            self.model[task_id] = replace(old, completed=True, version=old.version + 1)
        self.assert_matches(assert_task_response(response, 200, user=user), user)

    async def delete(self, user: str) -> None:
        task_id = self.pick(user)
        if task_id is None:
            return
        response = await self.send(user, "DELETE", f"{self.base(user)}/{task_id}")
        assert response.status_code == 204, response.text
        assert response.content == b""
        del self.model[task_id]
        self.deleted.add(task_id)
        gone = await self.send(user, "GET", f"{self.base(user)}/{task_id}")
        assert_problem(gone, 404, "task_not_found")

    async def foreign_id_via_own_path(self, user: str) -> None:
        """Another user's task, or a deleted one, named under my own path: 404 on every verb."""
        candidates = self.foreign(user) + sorted(self.deleted)
        if not candidates:
            return
        task_id = self.rng.choice(candidates)
        url = f"{self.base(user)}/{task_id}"
        method, suffix, body = self.rng.choice(
            [
                ("GET", "", None),
                ("PUT", "", {"title": "stolen"}),
                ("PATCH", "/complete", None),
                ("DELETE", "", None),
            ]
        )
        response = await self.send(user, method, url + suffix, json=body)
        assert_problem(response, 404, "task_not_found")

    async def other_users_path(self, user: str) -> None:
        """Any verb on another user's path: 403, whether the task exists or not."""
        other = self.rng.choice([name for name in USERS if name != user])
        task_id = self.pick(other) or self.rng.randint(1, 10_000)
        method, suffix, body = self.rng.choice(
            [
                ("GET", "", None),
                ("POST", "", {"title": "planted"}),
                ("GET", f"/{task_id}", None),
                ("PUT", f"/{task_id}", {"title": "stolen"}),
                ("PATCH", f"/{task_id}/complete", None),
                ("DELETE", f"/{task_id}", None),
            ]
        )
        response = await self.send(user, method, self.base(other) + suffix, json=body)
        assert_problem(response, 403, "forbidden")

    async def step(self) -> None:
        user = self.rng.choice(USERS)
        operation = self.rng.choices(
            [
                self.create,
                self.get,
                self.list_all,
                self.update,
                self.complete,
                self.delete,
                self.foreign_id_via_own_path,
                self.other_users_path,
            ],
            weights=[6, 3, 2, 3, 2, 2, 3, 3],
        )[0]
        await operation(user)


async def _stored(engine: AsyncEngine) -> dict[int, Expected]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT id, user_id, title, description, completed, version FROM tasks")
        )
        return {
            row.id: Expected(row.user_id, row.title, row.description, row.completed, row.version)
            for row in result
        }


async def test_random_operations_of_several_users_never_cross_and_match_the_model(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    seed = int(os.environ.get("ISOLATION_SEED", random.SystemRandom().randrange(2**32)))
    run = Run(client, seed)
    try:
        for _ in range(OPERATIONS):
            await run.step()
        for user in USERS:
            await run.list_all(user)
        assert await _stored(engine) == run.model
    except AssertionError as error:
        error.add_note(f"replay with ISOLATION_SEED={seed} (after {run.requests} requests)")
        raise
    assert run.requests >= OPERATIONS * 3 // 4
    assert run.model
    assert run.deleted

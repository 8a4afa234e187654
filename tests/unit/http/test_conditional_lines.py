"""A list of entity tags split over several header lines is one list (RFC 9110, 5.3)."""

from __future__ import annotations

import httpx

from tests.e2e.helpers import assert_problem, create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks


def _lines(name: str, *values: str) -> list[tuple[str, str]]:
    return [*bearer().items(), *((name, value) for value in values)]


async def test_if_none_match_on_two_lines_refuses_a_write_the_second_names(
    client: httpx.AsyncClient, rows: StoredTasks
) -> None:
    task = await create(client, "alice", "original")
    path = f"/api/alice/tasks/{task['id']}"

    put = await client.put(path, json={"title": "x"}, headers=_lines("If-None-Match", '"9"', '"1"'))
    delete = await client.delete(path, headers=_lines("If-None-Match", '"9"', "*"))

    assert_problem(put, 412, "precondition_failed")
    assert_problem(delete, 412, "precondition_failed")
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["title"] == "original"


async def test_if_match_on_two_lines_accepts_what_the_second_names(
    client: httpx.AsyncClient,
) -> None:
    task = await create(client, "alice", "original")
    path = f"/api/alice/tasks/{task['id']}"

    put = await client.put(path, json={"title": "x"}, headers=_lines("If-Match", '"9"', '"1"'))

    assert put.status_code == 200
    assert put.json()["title"] == "x"


async def test_if_none_match_on_two_lines_gives_304_for_what_the_second_names(
    client: httpx.AsyncClient,
) -> None:
    task = await create(client, "alice")

    got = await client.get(
        f"/api/alice/tasks/{task['id']}", headers=_lines("If-None-Match", '"9"', '"1"')
    )

    assert got.status_code == 304

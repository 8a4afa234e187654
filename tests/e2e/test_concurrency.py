"""Optimistic concurrency: ETag on single-task responses, If-Match (412), If-None-Match (304)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.conftest import Rows
from tests.e2e.helpers import assert_problem, create
from tests.tokens import bearer


def with_if_match(value: str) -> dict[str, str]:
    return {**bearer(), "If-Match": value}


async def test_every_single_task_response_carries_its_version_as_etag(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/api/alice/tasks", json={"title": "t"}, headers=bearer())
    task_id = created.json()["id"]
    assert created.headers["etag"] == '"1"'
    got = await client.get(f"/api/alice/tasks/{task_id}", headers=bearer())
    assert got.headers["etag"] == '"1"'
    put = await client.put(f"/api/alice/tasks/{task_id}", json={"title": "u"}, headers=bearer())
    assert put.headers["etag"] == '"2"'
    done = await client.patch(f"/api/alice/tasks/{task_id}/complete", headers=bearer())
    assert done.headers["etag"] == '"3"'


@pytest.mark.parametrize("if_match", ['"1"', '"7", "1"', "*", ' "1" '])
async def test_put_with_a_current_if_match_applies(
    client: httpx.AsyncClient, if_match: str
) -> None:
    task = await create(client)
    response = await client.put(
        f"/api/alice/tasks/{task['id']}", json={"title": "new"}, headers=with_if_match(if_match)
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2


@pytest.mark.parametrize(
    "if_match",
    [
        '"2"',
        'W/"1"',
        "1",
        '"01"',  # another tag than "1": tags compare as strings
        '"abc"',
        '""',
        '"9999999999999999999"',
        '"' + "9" * 5000 + '"',
    ],
)
async def test_put_with_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, rows: Rows, if_match: str
) -> None:
    task = await create(client, title="original")
    response = await client.put(
        f"/api/alice/tasks/{task['id']}", json={"title": "new"}, headers=with_if_match(if_match)
    )
    assert_problem(response, 412, "precondition_failed")
    assert response.headers["etag"] == '"1"'  # the current version, to re-read or retry with
    stored = await rows.get(task["id"])
    assert stored is not None
    assert (stored["title"], stored["version"]) == ("original", 1)


async def test_complete_honours_if_match(client: httpx.AsyncClient, rows: Rows) -> None:
    task = await create(client)
    stale = await client.patch(
        f"/api/alice/tasks/{task['id']}/complete", headers=with_if_match('"5"')
    )
    assert_problem(stale, 412, "precondition_failed")
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["completed"] is False
    fresh = await client.patch(
        f"/api/alice/tasks/{task['id']}/complete", headers=with_if_match('"1"')
    )
    assert fresh.status_code == 200
    assert fresh.json()["completed"] is True


async def test_delete_honours_if_match(client: httpx.AsyncClient, rows: Rows) -> None:
    task = await create(client)
    stale = await client.delete(f"/api/alice/tasks/{task['id']}", headers=with_if_match('"2"'))
    assert_problem(stale, 412, "precondition_failed")
    assert await rows.get(task["id"]) is not None
    fresh = await client.delete(f"/api/alice/tasks/{task['id']}", headers=with_if_match('"1"'))
    assert fresh.status_code == 204
    assert await rows.get(task["id"]) is None


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_404_comes_before_412(client: httpx.AsyncClient, method: str) -> None:
    other = await create(client, user="bob")
    path = f"/api/alice/tasks/{other['id']}" + ("/complete" if method == "PATCH" else "")
    body = {"title": "x"} if method == "PUT" else None
    response = await client.request(method, path, json=body, headers=with_if_match('"9"'))
    assert_problem(response, 404, "task_not_found")


async def test_twenty_racing_writers_with_one_if_match_exactly_one_wins(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    task = await create(client)
    responses = await asyncio.gather(
        *(
            client.put(
                f"/api/alice/tasks/{task['id']}",
                json={"title": f"writer {n}"},
                headers=with_if_match('"1"'),
            )
            for n in range(20)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 19
    winner = next(r for r in responses if r.status_code == 200).json()
    stored = await rows.get(task["id"])
    assert stored is not None
    assert (stored["version"], stored["title"]) == (2, winner["title"])


async def test_racing_writers_without_if_match_all_win_in_turn(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    # "Without If-Match the last write wins": forty at once on one task each get their turn
    # (a lost save waits a random while and tries again), none a 503.
    task = await create(client)
    for round_ in range(2):
        responses = await asyncio.gather(
            *(
                client.put(
                    f"/api/alice/tasks/{task['id']}",
                    json={"title": f"writer {n}", "completed": n % 2 == 0},
                    headers=bearer(),
                )
                for n in range(40)
            )
        )
        assert [r.status_code for r in responses] == [200] * 40, [r.text for r in responses]
        versions = sorted(r.json()["version"] for r in responses)
        assert versions == list(range(2 + 40 * round_, 42 + 40 * round_))  # one save each
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["version"] == 81


async def test_if_none_match_gives_304_while_unchanged(client: httpx.AsyncClient) -> None:
    task = await create(client)
    path = f"/api/alice/tasks/{task['id']}"
    unchanged = await client.get(path, headers={**bearer(), "If-None-Match": '"1"'})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == '"1"'
    weak = await client.get(path, headers={**bearer(), "If-None-Match": 'W/"1"'})
    assert weak.status_code == 304
    await client.put(path, json={"title": "changed"}, headers=bearer())
    changed = await client.get(path, headers={**bearer(), "If-None-Match": '"1"'})
    assert changed.status_code == 200
    assert changed.json()["title"] == "changed"


async def test_if_none_match_never_reveals_another_users_task(client: httpx.AsyncClient) -> None:
    other = await create(client, user="bob")
    response = await client.get(
        f"/api/alice/tasks/{other['id']}", headers={**bearer(), "If-None-Match": "*"}
    )
    assert_problem(response, 404, "task_not_found")


def _unless(value: str) -> dict[str, str]:
    return {**bearer(), "If-None-Match": value}


async def _write(
    client: httpx.AsyncClient, method: str, task_id: int, headers: dict[str, str]
) -> httpx.Response:
    path = f"/api/alice/tasks/{task_id}" + ("/complete" if method == "PATCH" else "")
    body = {"title": "overwritten"} if method == "PUT" else None
    return await client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("if_none_match", ["*", '"1"', 'W/"1"', '"7", "1"'])
async def test_a_write_refused_by_if_none_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, rows: Rows, method: str, if_none_match: str
) -> None:
    task = await create(client, title="original")

    response = await _write(client, method, task["id"], _unless(if_none_match))

    problem = assert_problem(response, 412, "precondition_failed")
    assert problem["detail"] == "The task is at a version If-None-Match names."
    assert response.headers["etag"] == '"1"'
    stored = await rows.get(task["id"])
    assert stored is not None
    assert (stored["title"], stored["completed"], stored["version"]) == ("original", False, 1)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_write_whose_version_if_none_match_does_not_name_goes_through(
    client: httpx.AsyncClient, rows: Rows, method: str
) -> None:
    task = await create(client, title="original")

    response = await _write(client, method, task["id"], _unless('"2", "3"'))

    assert response.status_code == (204 if method == "DELETE" else 200), response.text
    stored = await rows.get(task["id"])
    if method == "DELETE":
        assert stored is None
    else:
        assert stored is not None
        assert stored["version"] == 2


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_if_none_match_on_a_missing_task_is_404(
    client: httpx.AsyncClient, method: str
) -> None:
    other = await create(client, user="bob")

    response = await _write(client, method, other["id"], _unless('"2"'))

    assert_problem(response, 404, "task_not_found")


async def test_if_match_and_if_none_match_must_both_hold(
    client: httpx.AsyncClient, rows: Rows
) -> None:
    task = await create(client, title="original")
    both = {**bearer(), "If-Match": '"1"', "If-None-Match": '"1"'}

    response = await _write(client, "PUT", task["id"], both)

    assert_problem(response, 412, "precondition_failed")
    stored = await rows.get(task["id"])
    assert stored is not None
    assert stored["version"] == 1


async def test_get_with_if_match_naming_another_version_is_412(
    client: httpx.AsyncClient,
) -> None:
    task = await create(client)
    path = f"/api/alice/tasks/{task['id']}"

    stale = await client.get(path, headers={**with_if_match('"2"'), "If-None-Match": '"1"'})
    assert_problem(stale, 412, "precondition_failed")  # If-Match is judged before If-None-Match
    assert stale.headers["etag"] == '"1"'
    assert (await client.get(path, headers=with_if_match('"1"'))).status_code == 200
    assert (await client.get(path, headers=with_if_match("*"))).status_code == 200

"""Keyset pagination: opaque signed cursors, Link rel="next", X-Total-Count."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.helpers import assert_problem, create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


def next_link(response: httpx.Response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = NEXT.match(link)
    assert match, link
    return match.group(1)


async def walk(
    client: httpx.AsyncClient, url: str, user: str = "alice"
) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    """Follow Link headers from ``url`` to the end; return every task and every response."""
    tasks: list[dict[str, Any]] = []
    responses: list[httpx.Response] = []
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url, headers=bearer(user))
        assert response.status_code == 200, response.text
        responses.append(response)
        tasks.extend(response.json())
        next_url = next_link(response)
        assert len(responses) < 100, "pagination does not end"
    return tasks, responses


async def make_tasks(client: httpx.AsyncClient, count: int, user: str = "alice") -> list[int]:
    return [(await create(client, user, f"task {n}"))["id"] for n in range(count)]


async def test_pages_cover_every_task_once_in_creation_order(client: httpx.AsyncClient) -> None:
    ids = await make_tasks(client, 23)
    tasks, responses = await walk(client, "/api/alice/tasks?limit=5")
    assert [task["id"] for task in tasks] == ids
    assert [len(r.json()) for r in responses] == [5, 5, 5, 5, 3]
    assert {r.headers["x-total-count"] for r in responses} == {"23"}
    assert next_link(responses[-1]) is None


async def test_the_default_page_is_50_and_links_on(client: httpx.AsyncClient) -> None:
    await make_tasks(client, 51)
    first = await client.get("/api/alice/tasks", headers=bearer())
    assert len(first.json()) == 50
    assert first.headers["x-total-count"] == "51"
    link = next_link(first)
    assert link is not None
    assert link.startswith("/api/alice/tasks?")
    query = parse_qs(urlsplit(link).query)
    assert query["limit"] == ["50"]
    second = await client.get(link, headers=bearer())
    assert len(second.json()) == 1
    assert next_link(second) is None


async def test_an_exact_last_page_has_no_link(client: httpx.AsyncClient) -> None:
    await make_tasks(client, 4)
    response = await client.get("/api/alice/tasks?limit=4", headers=bearer())
    assert len(response.json()) == 4
    assert "link" not in response.headers
    assert response.headers["x-total-count"] == "4"


async def test_an_empty_list_counts_zero(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/alice/tasks", headers=bearer())
    assert response.json() == []
    assert response.headers["x-total-count"] == "0"
    assert "link" not in response.headers


async def test_the_filter_is_kept_across_pages_and_counted(client: httpx.AsyncClient) -> None:
    ids = await make_tasks(client, 12)
    done = ids[::3]
    for task_id in done:
        patched = await client.patch(f"/api/alice/tasks/{task_id}/complete", headers=bearer())
        assert patched.status_code == 200
    tasks, responses = await walk(client, "/api/alice/tasks?completed=true&limit=2")
    assert [task["id"] for task in tasks] == done
    assert {r.headers["x-total-count"] for r in responses} == {str(len(done))}
    link = next_link(responses[0])
    assert link is not None
    assert parse_qs(urlsplit(link).query)["completed"] == ["true"]
    open_tasks, _ = await walk(client, "/api/alice/tasks?completed=false&limit=5")
    assert [task["id"] for task in open_tasks] == [i for i in ids if i not in done]


async def test_pages_stay_correct_while_tasks_come_and_go(client: httpx.AsyncClient) -> None:
    ids = await make_tasks(client, 30)
    first = await client.get("/api/alice/tasks?limit=10", headers=bearer())
    seen = [task["id"] for task in first.json()]
    link = next_link(first)
    assert link is not None
    # Between requests: delete some already seen and some not yet seen, add new ones.
    deleted = {ids[2], ids[15], ids[25]}
    for task_id in deleted:
        assert (
            await client.delete(f"/api/alice/tasks/{task_id}", headers=bearer())
        ).status_code == 204
    added = await make_tasks(client, 3)
    rest, _ = await walk(client, link)
    seen += [task["id"] for task in rest]
    assert len(seen) == len(set(seen)), "a task was listed twice"
    throughout = [task_id for task_id in ids if task_id not in deleted]
    assert set(throughout) <= set(seen), "a task that existed throughout was skipped"
    assert set(added) <= set(seen)
    assert not (deleted - {ids[2]}) & set(seen)  # ids[2] was on page 1, before its deletion


async def _cursor(client: httpx.AsyncClient, user: str, query: str = "limit=1") -> str:
    await make_tasks(client, 2, user)
    response = await client.get(f"/api/{user}/tasks?{query}", headers=bearer(user))
    link = next_link(response)
    assert link is not None
    return parse_qs(urlsplit(link).query)["cursor"][0]


def _tamper(cursor: str) -> str:
    middle = len(cursor) // 2
    return cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(_tamper, id="one character changed"),
        pytest.param(lambda c: c[:-22] + "A" * 22, id="forged tag"),
        pytest.param(lambda c: c[:-8], id="truncated"),
        pytest.param(lambda c: "garbage", id="garbage"),
        pytest.param(lambda c: "%%%.***", id="not base64"),
        pytest.param(lambda c: c + "x" * 4096, id="oversized"),
        pytest.param(lambda c: "", id="empty"),
    ],
)
async def test_a_bad_cursor_is_400(
    client: httpx.AsyncClient, make_bad: Any, rows: StoredTasks
) -> None:
    cursor = await _cursor(client, "alice")
    response = await client.get(
        "/api/alice/tasks", params={"cursor": make_bad(cursor)}, headers=bearer()
    )
    body = assert_problem(response, 400, "validation_error")
    assert body["errors"][0]["field"] == "cursor"


async def test_another_users_cursor_is_400_never_their_page(client: httpx.AsyncClient) -> None:
    bobs = await _cursor(client, "bob")
    await make_tasks(client, 2, "alice")
    response = await client.get("/api/alice/tasks", params={"cursor": bobs}, headers=bearer())
    body = assert_problem(response, 400, "validation_error")
    assert "errors" in body
    assert "task " not in response.text  # nothing of bob's page


async def test_a_cursor_with_another_filter_is_400(client: httpx.AsyncClient) -> None:
    cursor = await _cursor(client, "alice", "limit=1&completed=false")
    response = await client.get(
        "/api/alice/tasks", params={"cursor": cursor, "completed": "true"}, headers=bearer()
    )
    assert_problem(response, 400, "validation_error")


async def test_a_cursor_is_checked_after_authentication(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/alice/tasks", params={"cursor": "garbage"})
    assert_problem(response, 401)

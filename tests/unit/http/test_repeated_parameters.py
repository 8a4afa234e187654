"""A single-valued query parameter given twice with different values is a 400 naming it."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import assert_problem, assert_validation_problem, create
from tests.tokens import bearer


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=2&limit=3", "limit"),
        ("completed=true&completed=false", "completed"),
        ("sort=title&sort=-title", "sort"),
        ("q=milk&q=bread", "q"),
        ("due_before=2026-12-01T00:00:00Z&due_before=2026-12-02T00:00:00Z", "due_before"),
        ("due_after=2026-12-01T00:00:00Z&due_after=2026-12-02T00:00:00Z", "due_after"),
        ("cursor=a&cursor=b", "cursor"),
    ],
)
async def test_a_listing_parameter_given_two_values_is_400(
    client: httpx.AsyncClient, query: str, parameter: str
) -> None:
    await create(client, "alice")

    response = await client.get(f"/api/alice/tasks?{query}", headers=bearer("alice"))

    body = assert_validation_problem(response, parameter)
    assert body["errors"] == [
        {"field": parameter, "message": "is given more than once, with different values"}
    ]


async def test_the_same_value_twice_is_no_ambiguity(client: httpx.AsyncClient) -> None:
    created = [await create(client, "alice", f"task {n}") for n in range(3)]

    response = await client.get(
        "/api/alice/tasks?limit=2&sort=-created_at&limit=2&sort=-created_at",
        headers=bearer("alice"),
    )

    assert response.status_code == 200
    assert response.json() == created[::-1][:2]


async def test_list_parameters_still_repeat(client: httpx.AsyncClient) -> None:
    made = []
    for title, tags, priority in [
        ("both", ["home", "work"], "high"),
        ("home only", ["home"], "low"),
        ("work only", ["work"], "none"),
    ]:
        body = {"title": title, "tags": tags, "priority": priority}
        response = await client.post("/api/alice/tasks", json=body, headers=bearer("alice"))
        assert response.status_code == 201
        made.append(response.json())
    both = made[0]

    tagged = await client.get("/api/alice/tasks?tag=home&tag=work", headers=bearer("alice"))
    prioritised = await client.get(
        "/api/alice/tasks?priority=high&priority=low", headers=bearer("alice")
    )

    assert tagged.status_code == 200
    assert tagged.json() == [both]
    assert prioritised.status_code == 200
    assert [task["title"] for task in prioritised.json()] == ["both", "home only"]


async def test_repeated_parameters_are_checked_after_the_caller(
    client: httpx.AsyncClient,
) -> None:
    unauthenticated = await client.get("/api/alice/tasks?limit=2&limit=3")
    forbidden = await client.get("/api/alice/tasks?limit=2&limit=3", headers=bearer("bob"))

    assert_problem(unauthenticated, 401, "unauthorized")
    assert_problem(forbidden, 403, "forbidden")


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/alice/tasks/changes?since=a&since=b", "since"),
        ("/api/alice/tasks/changes?limit=1&limit=2", "limit"),
        ("/api/alice/events?since=a&since=b", "since"),
    ],
)
async def test_a_sync_parameter_given_two_values_is_400(
    client: httpx.AsyncClient, path: str, parameter: str
) -> None:
    response = await client.get(path, headers=bearer("alice"))

    body = assert_validation_problem(response, parameter)
    assert body["errors"] == [
        {"field": parameter, "message": "is given more than once, with different values"}
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("HEAD", "/api/alice/tasks?limit=2&limit=3"),
        ("GET", "/api/alice/events?since=a&since=b"),
        ("GET", "/api/alice/tasks/changes?limit=1&limit=2"),
    ],
)
async def test_the_caller_comes_first_on_every_checked_route(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    unauthenticated = await client.request(method, path)
    forbidden = await client.request(method, path, headers=bearer("bob"))

    assert unauthenticated.status_code == 401
    assert forbidden.status_code == 403


async def test_a_head_request_checks_repeats_as_its_get_does(client: httpx.AsyncClient) -> None:
    response = await client.head("/api/alice/tasks?limit=2&limit=3", headers=bearer("alice"))

    assert response.status_code == 400

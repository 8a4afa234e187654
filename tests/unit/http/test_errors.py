"""Errors as problem+json: invalid task ids, unknown routes, wrong methods, request ids."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from adapters.http.schemas import PROBLEM_TITLES, ProblemCode
from tests.e2e.helpers import assert_problem, assert_validation_problem, create
from tests.tokens import bearer
from tests.unit.http.conftest import StoredTasks

INVALID_TASK_IDS = [
    "abc",
    "0",
    "-1",
    "1.5",
    "1e3",
    "+1",
    "1_0",
    "0x1",
    "%201",
    "1%20",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit, but not an id
    "9223372036854775808",
    "18446744073709551616",
    "9" * 100,
    "null",
    "true",
]

TASK_METHODS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/alice/tasks/{id}", None),
    ("PUT", "/api/alice/tasks/{id}", {"title": "changed"}),
    ("PATCH", "/api/alice/tasks/{id}/complete", None),
    ("DELETE", "/api/alice/tasks/{id}", None),
]


@pytest.mark.parametrize("task_id", INVALID_TASK_IDS)
@pytest.mark.parametrize("endpoint", TASK_METHODS, ids=[m for m, _, _ in TASK_METHODS])
async def test_invalid_task_id_is_404(
    client: httpx.AsyncClient,
    rows: StoredTasks,
    endpoint: tuple[str, str, dict[str, Any] | None],
    task_id: str,
) -> None:
    method, path, body = endpoint
    task = await create(client, "alice", "one")  # id 1: "+1", "1.5"... must not reach it
    before = await rows.get(task["id"])

    response = await client.request(
        method, path.format(id=task_id), json=body, headers=bearer("alice")
    )

    assert_problem(response, 404, "task_not_found")
    assert await rows.get(task["id"]) == before


async def test_largest_bigint_id_is_a_plain_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/alice/tasks/9223372036854775807", headers=bearer())

    assert_problem(response, 404, "task_not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/api"),
        ("GET", "/api/alice"),
        ("GET", "/api/alice/task"),
        ("GET", "/api/alice/tasks/1/extra"),
        ("GET", "/api/alice/tasks/1/complete/now"),
        ("POST", "/api/alice/things"),
    ],
)
async def test_unknown_route_is_problem_404(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await create(client, "alice")

    response = await client.request(method, path, headers=bearer())

    assert_problem(response, 404)


_TASKS = "GET, HEAD, POST"
_TASK = "DELETE, GET, HEAD, PUT"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/alice/tasks", _TASKS),
        ("PUT", "/api/alice/tasks", _TASKS),
        ("PATCH", "/api/alice/tasks", _TASKS),
        ("POST", "/api/alice/tasks/1", _TASK),
        ("PATCH", "/api/alice/tasks/1", _TASK),
        ("GET", "/api/alice/tasks/1/complete", "PATCH"),
        ("POST", "/api/alice/tasks/1/complete", "PATCH"),
        ("PUT", "/api/alice/tasks/1/complete", "PATCH"),
        ("DELETE", "/api/alice/tasks/1/complete", "PATCH"),
        ("POST", "/api/alice/tags", "GET, HEAD"),
        ("POST", "/healthz", "GET, HEAD"),
        ("PUT", "/readyz", "GET, HEAD"),
        ("POST", "/api/alice/tasks/changes", "DELETE, GET, HEAD, PUT"),
    ],
)
async def test_wrong_method_is_problem_405_allowing_every_method_of_the_path(
    client: httpx.AsyncClient, rows: StoredTasks, method: str, path: str, allow: str
) -> None:
    task = await create(client, "alice")
    before = await rows.get(task["id"])

    response = await client.request(method, path, headers=bearer(), json={"title": "x"})

    assert_problem(response, 405)
    assert response.headers["allow"] == allow
    assert await rows.get(task["id"]) == before
    assert await rows.count() == 1


@pytest.mark.parametrize(
    "response_of",
    ["401", "403", "400", "404", "413"],
)
async def test_every_error_is_a_complete_problem(
    client: httpx.AsyncClient, response_of: str
) -> None:
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "401": ("GET", "/api/alice/tasks", {}),
        "403": ("GET", "/api/bob/tasks", {"headers": bearer("alice")}),
        "400": ("POST", "/api/alice/tasks", {"json": {"title": ""}, "headers": bearer()}),
        "404": ("GET", "/api/alice/tasks/12345", {"headers": bearer()}),
        "413": (
            "POST",
            "/api/alice/tasks",
            {"content": b"x" * (64 * 1024 + 1), "headers": bearer()},
        ),
    }
    method, path, kwargs = requests[response_of]

    response = await client.request(method, path, **kwargs)

    body = assert_problem(response, int(response_of))
    assert set(body) <= {"type", "title", "status", "detail", "code", "request_id", "errors"}
    assert re.fullmatch(r"[a-z_]+", body["code"])


async def test_a_problem_type_has_one_title_whatever_the_occurrence(
    client: httpx.AsyncClient,
) -> None:
    # Two validation errors of different fields and places, two missing tasks of different ids:
    # RFC 9457's title summarises the type, so it must not vary with the occurrence.
    invalid = [
        await client.post("/api/alice/tasks", json={"title": ""}, headers=bearer()),
        await client.get("/api/alice/tasks?limit=0", headers=bearer()),
    ]
    missing = [
        await client.get(f"/api/alice/tasks/{task_id}", headers=bearer()) for task_id in (7, 8)
    ]
    bad_token = await client.get("/api/alice/tasks", headers={"Authorization": "Bearer x.y.z"})

    titles = {assert_validation_problem(response)["title"] for response in invalid}
    assert titles == {"Invalid request"}
    assert len({assert_problem(r, 404, "task_not_found")["title"] for r in missing}) == 1
    unauthorized = assert_problem(bad_token, 401, "unauthorized")
    assert unauthorized["title"] not in titles  # not the status phrase's one-size-fits-all


def test_every_problem_code_has_a_title() -> None:
    # A code without one would fail its own response with a KeyError.
    assert set(PROBLEM_TITLES) == set(ProblemCode)
    assert all(PROBLEM_TITLES.values())


# --- X-Request-ID ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_id",
    ["a", "abc-123", "A.b_c:d-e", "0" * 128, "f47ac10b-58cc-4372-a567-0e02b2c3d479"],
)
async def test_valid_request_id_is_echoed(client: httpx.AsyncClient, request_id: str) -> None:
    ok = await client.get("/api/alice/tasks", headers={**bearer(), "X-Request-ID": request_id})
    failed = await client.get(
        "/api/alice/tasks/999", headers={**bearer(), "X-Request-ID": request_id}
    )
    unauthenticated = await client.get("/api/alice/tasks", headers={"X-Request-ID": request_id})

    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == request_id
    assert assert_problem(failed, 404)["request_id"] == request_id
    assert assert_problem(unauthenticated, 401)["request_id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["", "0" * 129, "has space", "semi;colon", "slash/", 'quote"', "<script>", "a,b", "ü".encode()],
    ids=repr,
)
async def test_invalid_request_id_is_replaced(
    client: httpx.AsyncClient, request_id: str | bytes
) -> None:
    raw = request_id if isinstance(request_id, bytes) else request_id.encode()
    headers = [(b"authorization", bearer()["Authorization"].encode()), (b"x-request-id", raw)]
    response = await client.get("/api/alice/tasks/999", headers=headers)

    body = assert_problem(response, 404)
    generated = response.headers["x-request-id"]
    given = request_id.decode() if isinstance(request_id, bytes) else request_id
    assert generated != given
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", generated)
    assert body["request_id"] == generated


async def test_request_id_is_generated_when_absent_and_unique(client: httpx.AsyncClient) -> None:
    first = await client.get("/api/alice/tasks", headers=bearer())
    second = await client.get("/api/alice/tasks", headers=bearer())
    created = await client.post("/api/alice/tasks", json={"title": "x"}, headers=bearer())
    deleted = await client.delete(f"/api/alice/tasks/{created.json()['id']}", headers=bearer())

    ids = [r.headers.get("x-request-id") for r in (first, second, created, deleted)]
    for request_id in ids:
        assert request_id
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", request_id)
    assert len(set(ids)) == 4


async def test_service_endpoints_carry_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "health-1"})

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "health-1"
